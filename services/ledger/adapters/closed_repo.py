"""Events closed without posting (``ledger.closed_without_posting``, append-only): the refunds of orders that ended
returned or cancelled before completion, and the ending events that tell the ledger so."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from sqlalchemy import text

from infra.db.rowsets import Writes
from infra.db.unit_of_work import UnitOfWork
from infra.messaging.envelope import Envelope


async def close(uow: UnitOfWork, closed: Sequence[tuple[Envelope, str]]) -> None:
    """Record ``closed`` (event, reason) in one statement; an event closed before stays as it was (redelivery)."""
    writes = Writes()
    add_closed(writes, uow, closed)
    await writes.execute(uow.conn)


def add_closed(writes: Writes, uow: UnitOfWork, closed: Sequence[tuple[Envelope, str]]) -> None:
    """Add the recording of ``closed`` (event, reason) to ``writes``; an event closed before stays as it was."""
    if closed:
        writes.add_statement(
            f"INSERT INTO {uow.table('closed_without_posting')} (event_id, order_key, event_type, reason) "
            "SELECT i, k, t, r FROM unnest(CAST(:{p}i AS uuid[]), CAST(:{p}k AS text[]), CAST(:{p}t AS text[]), "
            "CAST(:{p}r AS text[])) AS u(i, k, t, r) ON CONFLICT (event_id) DO NOTHING",
            {
                "i": [e.event_id for e, _ in closed],
                "k": [e.subject for e, _ in closed],
                "t": [e.type for e, _ in closed],
                "r": [r for _, r in closed],
            },
        )


@dataclass(frozen=True)
class ClosedEvent:
    """An event the ledger closed without posting, and why."""

    event_id: UUID
    order_key: str
    event_type: str
    reason: str
    closed_at: datetime


async def closed_events(uow: UnitOfWork) -> list[ClosedEvent]:
    """Every event closed without posting, oldest first."""
    rows = await uow.conn.execute(
        text(
            "SELECT event_id, order_key, event_type, reason, closed_at "
            f"FROM {uow.table('closed_without_posting')} ORDER BY closed_at, order_key, event_id"
        )
    )
    return [ClosedEvent(r.event_id, r.order_key, r.event_type, r.reason, r.closed_at) for r in rows]
