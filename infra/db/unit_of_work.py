"""The port a use case writes through: one open transaction, the service's schema, its outbox.

Entry points (a Kafka batch handler, a CLI command, an HTTP handler) open the transaction and hand a
:class:`UnitOfWork` to the use case; the use case never opens or commits one itself, and never sees a Kafka record.
A task that opens its own transactions (a poller, a CLI command) gets a :class:`Database` (the engine and the
schema, from the composition root) and opens units of work with it.

A use case runs *load → plan → write*: it reads everything the plan needs through adapters that take this unit,
calls a pure planning function (unit-tested without a database), then writes set-based and publishes through
:meth:`UnitOfWork.publish` (the outbox rows commit with the state they announce).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from infra.db.rowsets import Writes
from infra.messaging.outbox import OutboundMessage, enqueue, stage


@dataclass(frozen=True, slots=True)
class UnitOfWork:
    """One transaction of one service: ``conn`` is inside it, ``schema`` names the service's tables."""

    conn: AsyncConnection
    schema: str

    def table(self, name: str) -> str:
        """The qualified name of one of the service's tables, for SQL text (``schema`` is configuration, not input)."""
        return f"{self.schema}.{name}"

    async def publish(self, messages: Sequence[OutboundMessage]) -> None:
        """Enqueue ``messages`` in the service's outbox, in this transaction, in order."""
        await enqueue(self.conn, self.schema, messages)

    def publish_with(self, writes: Writes, messages: Sequence[OutboundMessage]) -> None:
        """Add the outbox rows of ``messages`` (in order) to ``writes``: they are sent with the transaction's other
        set-based writes, in one statement, when the caller executes ``writes``."""
        stage(writes, self.schema, messages)


@dataclass(frozen=True, slots=True)
class Database:
    """A service's engine and schema, both from its composition root: opens units of work on its tables."""

    engine: AsyncEngine
    schema: str

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[UnitOfWork]:
        """A unit of work in a new transaction, committed when the block ends (rolled back if it raises)."""
        async with self.engine.begin() as conn:
            yield UnitOfWork(conn, self.schema)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[UnitOfWork]:
        """A unit of work for reads that commit at once (no transaction held open across the block's awaits)."""
        async with self.engine.connect() as conn:
            yield UnitOfWork(conn, self.schema)
