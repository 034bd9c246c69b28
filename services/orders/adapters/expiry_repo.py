"""Finding soft reservations past their auto-cancel window without waiting on anyone's locks."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from services.orders.adapters.order_repo import Held, Reservation

# The due holds are locked first (materialised, so exactly once and before the join), then read with their
# allocations; the columns read never change once a reservation exists.
_CLAIM_DUE = text(
    "WITH due AS MATERIALIZED (SELECT r.reservation_id FROM orders.reservations r WHERE r.state = 'soft' "
    "AND r.expires_at <= :now AND (CAST(:skus AS text[]) IS NULL OR EXISTS (SELECT 1 FROM orders.allocations a "
    "WHERE a.reservation_id = r.reservation_id AND a.sku = ANY(CAST(:skus AS text[])))) "
    "ORDER BY r.reservation_id LIMIT :limit FOR UPDATE SKIP LOCKED) "
    "SELECT r.order_key, r.reservation_id, r.expires_at, a.batch_id, a.sku, a.workshop_id, a.quantity "
    "FROM due JOIN orders.reservations r USING (reservation_id) JOIN orders.allocations a USING (reservation_id) "
    "ORDER BY r.reservation_id, a.batch_id"
)


async def claim_due_soft_reservations(
    conn: AsyncConnection, now: datetime, skus: Iterable[str] | None, limit: int = 5000
) -> list[tuple[str, Reservation]]:
    """Lock (SKIP LOCKED) soft reservations due at ``now``, optionally only those holding one of ``skus``.

    A reservation locked by another transaction is skipped: its owner is about to change it anyway.
    """
    sku_list = None if skus is None else sorted(set(skus))
    found: dict[int, tuple[str, Reservation]] = {}
    for key, rid, expires_at, batch_id, sku, workshop_id, quantity in await conn.execute(
        _CLAIM_DUE, {"now": now, "skus": sku_list, "limit": limit}
    ):
        hit = found.get(rid)
        if hit is None:
            hit = found[rid] = (key, Reservation(rid, "soft", expires_at, []))
        hit[1].allocations.append(Held(batch_id, sku, workshop_id, quantity))
    return list(found.values())
