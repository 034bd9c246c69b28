"""Events closed without posting (``ledger.closed_without_posting``, append-only): the refunds of orders that ended
returned or cancelled before completion, and the ending events that tell the ledger so."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from sqlalchemy import text

from infra.db.unit_of_work import UnitOfWork
from infra.messaging.envelope import Envelope
from services.ledger.posting_plan import ENDING_TYPES


async def ended_orders(uow: UnitOfWork, keys: Iterable[str]) -> dict[str, str]:
    """The orders among ``keys`` the ledger already knows to have ended without completion, each with the type of
    the first event that said so."""
    rows = await uow.conn.execute(
        text(
            f"SELECT DISTINCT ON (order_key) order_key, event_type FROM {uow.table('closed_without_posting')} "
            "WHERE order_key = ANY(:k) AND event_type = ANY(:t) ORDER BY order_key, closed_at, event_id"
        ),
        {"k": sorted(set(keys)), "t": sorted(ENDING_TYPES)},
    )
    return {r.order_key: r.event_type for r in rows}


async def close(uow: UnitOfWork, closed: Sequence[tuple[Envelope, str]]) -> None:
    """Record ``closed`` (event, reason) in one statement; an event closed before stays as it was (redelivery)."""
    if closed:
        await uow.conn.execute(
            text(
                f"INSERT INTO {uow.table('closed_without_posting')} (event_id, order_key, event_type, reason) "
                "SELECT i, k, t, r FROM unnest(CAST(:i AS uuid[]), CAST(:k AS text[]), CAST(:t AS text[]), "
                "CAST(:r AS text[])) AS u(i, k, t, r) ON CONFLICT (event_id) DO NOTHING"
            ),
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
