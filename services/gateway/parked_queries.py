"""What operators may see of the gateway's parked deliveries (``karya dlq parked``).

A parked delivery (:mod:`services.gateway.parking`) stores the whole webhook record, body included (personal
data), so only the gateway role may read ``gateway.parked_deliveries``. This read names columns one by one and
never selects ``key``, ``value`` or ``headers``: what it returns is ids, the order key, the channel, counts, times
and the stored reason, which is value-free by construction (:func:`infra.errors.error_text`: class, SQLSTATE and a
context chosen by the code, never input).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from sqlalchemy import text

from infra.db.unit_of_work import UnitOfWork


@dataclass(frozen=True, slots=True)
class ParkedDelivery:
    """One parked delivery as an operator sees it (no body, no headers, no record key)."""

    event_id: UUID
    channel: str
    order_key: str
    attempts: int
    parked_at: datetime
    age_s: int
    next_attempt_at: datetime
    reason: str


async def list_parked(uow: UnitOfWork, *, channel: str | None = None, limit: int = 500) -> list[ParkedDelivery]:
    """The parked deliveries in ``uow``'s schema (of ``channel``, if given), oldest first, at most ``limit``."""
    rows = await uow.conn.execute(
        text(
            "SELECT event_id, channel, order_key, attempts, parked_at, "
            "floor(extract(epoch FROM clock_timestamp() - parked_at))::bigint AS age_s, next_attempt_at, reason "
            f"FROM {uow.table('parked_deliveries')} WHERE (CAST(:channel AS text) IS NULL OR channel = :channel) "
            "ORDER BY parked_at, event_id LIMIT :limit"
        ),
        {"channel": channel, "limit": limit},
    )
    return [
        ParkedDelivery(
            r.event_id, r.channel, r.order_key, r.attempts, r.parked_at, int(r.age_s), r.next_attempt_at, r.reason
        )
        for r in rows
    ]
