"""The orders adapters' SQL, written with ``{schema}`` where the service's schema goes.

The schema is configuration (the composition root's, carried by :class:`infra.db.unit_of_work.UnitOfWork`), never
a literal in a statement. Each statement is built once per schema and reused, so a batch pays no parsing for it
and :class:`infra.db.rowsets.Writes` keeps recognising it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Generic, TypeVar

from sqlalchemy import TextClause, text

from infra.db.rowsets import KeyedQuery, RowSet
from infra.db.unit_of_work import UnitOfWork

__all__ = ["Keyed", "PerSchema", "Rows", "Sql", "instant"]

T = TypeVar("T")


def _in(schema: str, template: str) -> str:
    return template.replace("{schema}", schema)


class PerSchema(Generic[T]):
    """A statement built on first use in each schema, then reused."""

    __slots__ = ("_build", "_built")

    def __init__(self, build: Callable[[str], T]) -> None:
        """``build``: the statement for a schema name."""
        self._build = build
        self._built: dict[str, T] = {}

    def on(self, uow: UnitOfWork) -> T:
        """The statement in ``uow``'s schema."""
        built = self._built.get(uow.schema)
        if built is None:
            built = self._built[uow.schema] = self._build(uow.schema)
        return built


class Sql(PerSchema[TextClause]):
    """A plain statement."""

    __slots__ = ()

    def __init__(self, template: str) -> None:
        """``template``: the statement's text with ``{schema}``."""
        super().__init__(lambda schema: text(_in(schema, template)))


class Rows(PerSchema[RowSet]):
    """A set-based statement over rows (:class:`RowSet`; ``{rows}`` is where the rows go)."""

    __slots__ = ()

    def __init__(self, template: str, columns: Sequence[tuple[str, str]]) -> None:
        """``template`` with ``{schema}`` and ``{rows}``; ``columns``: (name, SQL type) of the rows."""
        fixed = tuple(columns)
        super().__init__(lambda schema: RowSet(_in(schema, template), fixed))


class Keyed(PerSchema[KeyedQuery]):
    """A statement filtered by ``= ANY({keys})`` (:class:`KeyedQuery`)."""

    __slots__ = ()

    def __init__(self, template: str) -> None:
        """``template`` with ``{schema}`` and ``{keys}``."""
        super().__init__(lambda schema: KeyedQuery(_in(schema, template)))


def instant(value: str | None) -> datetime | None:
    """A timestamptz as JSON carries it (ISO 8601 in the session's zone) → the UTC datetime asyncpg would give."""
    return None if value is None else datetime.fromisoformat(value).astimezone(UTC)
