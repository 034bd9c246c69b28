"""Every row lock the orders service takes, in the one global order that rules out deadlocks.

Order: ``orders`` rows by order key, then ``batch_stock`` rows by batch id. A transaction that needs both
takes the orders first. Inspection locks one ``quarantine`` row before its ``batch_stock`` row (nothing that
locks batch stock waits on quarantine rows). Nothing else in the service locks rows.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from infra.db.rowsets import KeyedQuery

_LOCK_ORDERS = KeyedQuery(
    "SELECT order_key, state, update_time, stock_stage, lapas_id, parked_reason, channel, shop_id, order_id, "
    "historical, gross_amount FROM orders.orders WHERE order_key = ANY({keys}) ORDER BY order_key FOR UPDATE"
)


async def lock_orders(conn: AsyncConnection, order_keys: Iterable[str]) -> list[Row[*tuple[Any, ...]]]:
    """Lock the existing rows of ``order_keys`` (sorted) and return them (every column the handler reads).

    Columns, in this order: order_key, state, update_time, stock_stage, lapas_id, parked_reason, channel, shop_id,
    order_id, historical, gross_amount.
    """
    keys = sorted(set(order_keys))
    if not keys:
        return []
    return list(await _LOCK_ORDERS.execute(conn, keys))


async def lock_batch_stock(conn: AsyncConnection, skus: Iterable[str]) -> list[Row[*tuple[Any, ...]]]:
    """Lock every batch_stock row of ``skus`` (by batch id) and return them with their counters.

    Columns, in this order: batch_id, sku, workshop_id, lapas_id, production_date, on_hand, soft_reserved,
    allocated, quarantined.
    """
    wanted = sorted(set(skus))
    if not wanted:
        return []
    result = await conn.execute(
        text(
            "SELECT batch_id, sku, workshop_id, lapas_id, production_date, on_hand, soft_reserved, allocated, "
            "quarantined FROM orders.batch_stock WHERE sku = ANY(:skus) ORDER BY batch_id FOR UPDATE"
        ),
        {"skus": wanted},
    )
    return list(result)


async def lock_batches(conn: AsyncConnection, batch_ids: Iterable[str]) -> None:
    """Lock batch_stock rows by id (sorted), for movements on known batches."""
    ids = sorted(set(batch_ids))
    if ids:
        await conn.execute(
            text("SELECT 1 FROM orders.batch_stock WHERE batch_id = ANY(:ids) ORDER BY batch_id FOR UPDATE"),
            {"ids": ids},
        )


async def lock_quarantine_row(conn: AsyncConnection, quarantine_id: int) -> Row[*tuple[Any, ...]] | None:
    """Lock one quarantine row (before its batch stock) and return it, or ``None`` if it does not exist."""
    result = await conn.execute(
        text("SELECT id, order_key, batch_id, quantity, status FROM orders.quarantine WHERE id = :i FOR UPDATE"),
        {"i": quarantine_id},
    )
    return result.one_or_none()
