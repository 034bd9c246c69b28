"""The orders adapters' SQL, written with ``{schema}`` where the service's schema goes.

The schema is configuration (the composition root's, carried by :class:`infra.db.unit_of_work.UnitOfWork`), never
a literal in a statement. Each statement is built once per schema and reused, so a batch pays no parsing for it
and :class:`infra.db.rowsets.Writes` keeps recognising it.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import TextClause, text

from infra.db.rowsets import KeyedQuery, RowSet
from infra.db.unit_of_work import UnitOfWork

__all__ = ["Keyed", "Rows", "Sql"]


def _in(schema: str, template: str) -> str:
    return template.replace("{schema}", schema)


class Sql:
    """A plain statement."""

    __slots__ = ("_built", "template")

    def __init__(self, template: str) -> None:
        self.template = template
        self._built: dict[str, TextClause] = {}

    def on(self, uow: UnitOfWork) -> TextClause:
        """The statement in ``uow``'s schema."""
        built = self._built.get(uow.schema)
        if built is None:
            built = self._built[uow.schema] = text(_in(uow.schema, self.template))
        return built


class Rows:
    """A set-based statement over rows (:class:`RowSet`; ``{rows}`` is where the rows go)."""

    __slots__ = ("_built", "columns", "template")

    def __init__(self, template: str, columns: Sequence[tuple[str, str]]) -> None:
        self.template = template
        self.columns = tuple(columns)
        self._built: dict[str, RowSet] = {}

    def on(self, uow: UnitOfWork) -> RowSet:
        """The row set in ``uow``'s schema."""
        built = self._built.get(uow.schema)
        if built is None:
            built = self._built[uow.schema] = RowSet(_in(uow.schema, self.template), self.columns)
        return built


class Keyed:
    """A statement filtered by ``= ANY({keys})`` (:class:`KeyedQuery`)."""

    __slots__ = ("_built", "template")

    def __init__(self, template: str) -> None:
        self.template = template
        self._built: dict[str, KeyedQuery] = {}

    def on(self, uow: UnitOfWork) -> KeyedQuery:
        """The query in ``uow``'s schema."""
        built = self._built.get(uow.schema)
        if built is None:
            built = self._built[uow.schema] = KeyedQuery(_in(uow.schema, self.template))
        return built
