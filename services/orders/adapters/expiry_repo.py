"""Finding soft reservations past their auto-cancel window without waiting on anyone's locks."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from services.orders.adapters.order_repo import Held, Reservation


async def claim_due_soft_reservations(
    conn: AsyncConnection, now: datetime, skus: Iterable[str] | None, limit: int = 5000
) -> list[tuple[str, Reservation]]:
    """Lock (SKIP LOCKED) soft reservations due at ``now``, optionally only those holding one of ``skus``.

    A reservation locked by another transaction is skipped: its owner is about to change it anyway.
    """
    sku_list = None if skus is None else sorted(set(skus))
    ids = [
        r[0]
        for r in await conn.execute(
            text(
                "SELECT r.reservation_id FROM orders.reservations r WHERE r.state = 'soft' AND r.expires_at <= :now "
                "AND (CAST(:skus AS text[]) IS NULL OR EXISTS (SELECT 1 FROM orders.allocations a "
                "WHERE a.reservation_id = r.reservation_id AND a.sku = ANY(CAST(:skus AS text[])))) "
                "ORDER BY r.reservation_id LIMIT :limit FOR UPDATE SKIP LOCKED"
            ),
            {"now": now, "skus": sku_list, "limit": limit},
        )
    ]
    if not ids:
        return []
    rows = await conn.execute(
        text(
            "SELECT r.order_key, r.reservation_id, r.expires_at, a.batch_id, a.sku, a.workshop_id, a.quantity "
            "FROM orders.reservations r JOIN orders.allocations a USING (reservation_id) "
            "WHERE r.reservation_id = ANY(:ids) ORDER BY r.reservation_id, a.batch_id"
        ),
        {"ids": ids},
    )
    found: dict[int, tuple[str, Reservation]] = {}
    for r in rows:
        if r.reservation_id not in found:
            found[r.reservation_id] = (r.order_key, Reservation(r.reservation_id, "soft", r.expires_at, []))
        found[r.reservation_id][1].allocations.append(Held(r.batch_id, r.sku, r.workshop_id, r.quantity))
    return list(found.values())
