"""Per-lapas scope of the finance workspace, enforced by PostgreSQL row-level security (migration ``finance_0002``).

The workspace connects as ``karya_finance``. Every transaction it reads the ledger in first runs
``set_config('karya.lapas_scope', <scope>, true)`` (``SET LOCAL``: it ends with the transaction, so a pooled
connection never carries one user's scope into another's request). The policies read
``current_setting('karya.lapas_scope', true)``: ``'*'`` sees every lapas (``auditor_pusat``, ``admin``), a lapas id
sees that lapas' rows only, and no scope (or an empty one) sees nothing. Python adds no filter of its own: a query
that forgets the lapas still returns only the viewer's rows.

:class:`Viewer` is what the scope needs of the signed-in user (``services.finance.auth.User`` satisfies it);
:func:`read_model` is the FastAPI dependency the read API's routes take: a connection in a transaction already in
the viewer's scope, and the schemas its SQL names.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Protocol

from fastapi import Depends, Request
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from infra.db.roles import FINANCE, FINANCE_URL_ENV
from services.finance.auth import current_user

ALL_LAPAS = "*"
"""The scope that sees every lapas."""
SCOPE_SETTING = "karya.lapas_scope"
"""The transaction-local setting the row-level-security policies read."""


class Viewer(Protocol):
    """Who reads: a name and role for the record, and the one lapas they may see (None: every lapas)."""

    @property
    def name(self) -> str:
        """The user's name."""
        ...

    @property
    def role(self) -> str:
        """The user's role (``auditor_pusat``, ``auditor_lapas``, ``bendahara``, ``admin``)."""
        ...

    @property
    def lapas_scope(self) -> str | None:
        """The one lapas this user sees; None for every lapas."""
        ...


@dataclass(frozen=True, slots=True)
class StaticViewer:
    """A :class:`Viewer` given by value (commands, tests)."""

    name: str
    role: str
    lapas_scope: str | None


class ScopeError(ValueError):
    """A lapas scope that would not mean one lapas."""


def scope_of(viewer: Viewer) -> str:
    """The value of ``karya.lapas_scope`` for ``viewer``: its lapas, or ``'*'`` for every lapas.

    A lapas id that is empty or ``'*'`` is refused: it would mean nothing, or everything."""
    lapas = viewer.lapas_scope
    if lapas is None:
        return ALL_LAPAS
    if not lapas.strip() or lapas == ALL_LAPAS:
        raise ScopeError(f"{viewer.name}: {lapas!r} is not a lapas")
    return lapas


async def enter_scope(conn: AsyncConnection, viewer: Viewer) -> str:
    """Put the open transaction of ``conn`` in ``viewer``'s scope (until it ends); the role ``conn`` reads as."""
    row = await conn.execute(
        text("SELECT set_config(:name, :scope, true) AS scope, CAST(current_user AS text) AS role"),
        {"name": SCOPE_SETTING, "scope": scope_of(viewer)},
    )
    return str(row.one().role)


@dataclass(frozen=True, slots=True)
class ReadSchemas:
    """The schemas the read model names: the ledger's as the composition root hands it (``app.state.schemas``),
    the workspace's own (``app.state.db.schema``)."""

    ledger: str = "ledger"
    finance: str = "finance"


@dataclass(frozen=True, slots=True)
class ReadModel:
    """One scoped read transaction: the connection and the schemas to qualify table names with."""

    conn: AsyncConnection
    schemas: ReadSchemas
    viewer: Viewer

    def ledger(self, table: str) -> str:
        """A ledger table's qualified name."""
        return f"{self.schemas.ledger}.{table}"

    def finance(self, name: str) -> str:
        """A finance relation's qualified name (the redacted deliveries view)."""
        return f"{self.schemas.finance}.{name}"


async def scoped_read(engine: AsyncEngine, viewer: Viewer, schemas: ReadSchemas) -> AsyncIterator[ReadModel]:
    """A REPEATABLE READ, READ ONLY transaction on ``engine`` in ``viewer``'s scope (rolled back at the end: it
    writes nothing). Every statement of it reads one snapshot, so a page's figures and the chain heads stamped on it
    are of one moment, whatever is posted meanwhile (the journal has one chain per segment: no single head row to
    bound a read by).

    Refused unless ``engine`` connects as ``karya_finance``: the policies scope only that role, so a workspace
    wired to another role fails closed instead of showing every lapas."""
    async with engine.connect() as conn, conn.begin() as transaction:
        await conn.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"))
        role = await enter_scope(conn, viewer)
        if role != FINANCE:  # another role is not under the lapas policies: it would show every lapas
            raise ScopeError(f"the finance workspace reads as {FINANCE}, not {role} ({FINANCE_URL_ENV})")
        try:
            yield ReadModel(conn, schemas, viewer)
        finally:
            await transaction.rollback()


async def read_model(request: Request, user: Annotated[Viewer, Depends(current_user)]) -> AsyncIterator[ReadModel]:
    """FastAPI dependency: a :class:`ReadModel` in the signed-in user's scope, on the app's engine."""
    named: dict[str, str] = getattr(request.app.state, "schemas", {})
    schemas = ReadSchemas(ledger=named.get("ledger", "ledger"), finance=request.app.state.db.schema)
    async for model in scoped_read(request.app.state.db.engine, user, schemas):
        yield model


Reads = Annotated[ReadModel, Depends(read_model)]
"""What a read route takes: ``reads: Reads``."""
