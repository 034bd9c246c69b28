"""The port a use case writes through: one open transaction, the service's schema, its outbox.

Entry points (a Kafka batch handler, a CLI command, an HTTP handler) open the transaction and hand a
:class:`UnitOfWork` to the use case; the use case never opens or commits one itself, and never sees a Kafka record.
A use case runs *load → plan → write*: it reads everything the plan needs through adapters that take this unit,
calls a pure planning function (unit-tested without a database), then writes set-based and publishes through
:meth:`UnitOfWork.publish` (the outbox rows commit with the state they announce).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from infra.messaging.outbox import OutboundMessage, enqueue


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
