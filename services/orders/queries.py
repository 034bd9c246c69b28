"""Read side of the orders service: order detail for `karya orders show`."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection


async def order_detail(conn: AsyncConnection, order_key: str) -> dict[str, Any] | None:
    """State, history, lines, reservations and allocations of one order (None if unknown)."""
    order = (
        await conn.execute(
            text(
                "SELECT order_key, channel, shop_id, order_id, state, update_time, stock_stage, lapas_id, "
                "historical, gross_amount, parked_reason FROM orders.orders WHERE order_key = :k"
            ),
            {"k": order_key},
        )
    ).one_or_none()
    if order is None:
        return None
    detail: dict[str, Any] = dict(order._mapping)
    detail["lines"] = [
        dict(r._mapping)
        for r in await conn.execute(
            text(
                "SELECT line_no, sku, workshop_id, quantity, unit_price_idr FROM orders.order_lines "
                "WHERE order_key = :k ORDER BY line_no"
            ),
            {"k": order_key},
        )
    ]
    detail["history"] = [
        dict(r._mapping)
        for r in await conn.execute(
            text(
                "SELECT from_state, to_state, requested_state, raw_status, update_time, decision, event_id, "
                "recorded_at "
                "FROM orders.order_history WHERE order_key = :k ORDER BY id"
            ),
            {"k": order_key},
        )
    ]
    reservations = []
    for r in await conn.execute(
        text(
            "SELECT reservation_id, state, expires_at, created_at, updated_at FROM orders.reservations "
            "WHERE order_key = :k ORDER BY reservation_id"
        ),
        {"k": order_key},
    ):
        res = dict(r._mapping)
        res["allocations"] = [
            dict(a._mapping)
            for a in await conn.execute(
                text(
                    "SELECT batch_id, sku, workshop_id, quantity FROM orders.allocations WHERE reservation_id = :r "
                    "ORDER BY batch_id"
                ),
                {"r": r.reservation_id},
            )
        ]
        reservations.append(res)
    detail["reservations"] = reservations
    return detail
