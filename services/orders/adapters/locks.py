"""Every row lock the orders service takes, in the one global order that rules out deadlocks.

Order, for any transaction that takes more than one kind:

1. ``orders`` rows, by order key (:func:`lock_orders`; the orders waiting for stock: :func:`lock_waiting_orders`);
2. the live ``reservations`` of those orders, by reservation id (:data:`LIVE_RESERVATIONS_LOCK`);
3. soft reservations past their window, by reservation id, ``SKIP LOCKED`` — never waits, so it cannot
   deadlock (:func:`claim_due_and_lock_stock`, which then takes 5.); likewise, after the stock rows, the orders
   that started waiting for stock while a transaction waited for those rows (:func:`lock_waiting_orders` with
   ``skip_locked``);
4. ``quarantine`` rows, by id (inspection, one row: :func:`lock_quarantine_row`) — nothing that locks batch
   stock waits on quarantine rows;
5. ``batch_stock`` rows, by batch id (:func:`claim_due_and_lock_stock`).

Nothing else in the service locks rows. The functions return the locked rows' columns by position.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Row

from infra.db.unit_of_work import UnitOfWork
from services.orders.adapters.sql import Keyed, Sql

_LOCK_ORDERS = Keyed(
    "SELECT order_key, state, update_time, stock_stage, lapas_id, parked_reason, channel, shop_id, order_id, "
    "historical, gross_amount, reservation_failed_reason FROM {schema}.orders WHERE order_key = ANY({keys}) "
    "ORDER BY order_key FOR UPDATE"
)
LOCK_WAITING_SQL = (
    "SELECT o.order_key, o.created_at FROM {schema}.orders o WHERE o.reservation_failed_reason IS NOT NULL "
    "AND o.stock_stage = 0 AND NOT o.historical AND o.state = ANY(:states) AND EXISTS (SELECT 1 FROM "
    "{schema}.order_lines l WHERE l.order_key = o.order_key AND l.sku = ANY(:skus)) ORDER BY o.order_key FOR UPDATE"
)
"""Lock the orders waiting for stock with a line of one of ``:skus``: an order waits while its reservation failed and
nothing is held (stage NONE; see BACKORDER_STATES). The partial index ``orders_waiting_idx`` (reservation failed)
keeps this from reading every order; its predicate must stay implied by this ``WHERE``."""
_LOCK_WAITING = Sql(LOCK_WAITING_SQL)
_LOCK_WAITING_SKIP = Sql(LOCK_WAITING_SQL + " SKIP LOCKED")
LIVE_RESERVATIONS_LOCK = (
    "SELECT r.order_key, r.reservation_id, r.state, r.expires_at, a.batch_id, a.sku, a.workshop_id, "
    "a.quantity FROM {schema}.reservations r JOIN {schema}.allocations a USING (reservation_id) "
    "WHERE r.order_key = ANY({keys}) AND r.state IN ('soft', 'hard', 'consumed') "
    "ORDER BY r.reservation_id, a.batch_id FOR UPDATE OF r"
)
"""Lock the soft, hard and consumed reservations of ``{keys}`` (an SQL array of order keys whose orders are locked)
by id; one row per allocation. The second lock: part of the orders' details read
(:mod:`services.orders.adapters.order_reads`), in the statement after :func:`lock_orders`."""
_STOCK_COLUMNS = "batch_id, sku, workshop_id, lapas_id, production_date, on_hand, soft_reserved, allocated, quarantined"
# One statement: the due soft holds are claimed (materialised, so exactly once; SKIP LOCKED, so it never waits and
# its place in the lock order cannot deadlock), read with their allocations (columns that never change once a
# reservation exists), then every stock row of the wanted SKUs and of those holds is locked by batch id; fresh
# reservation ids ride along. Rows come back as JSON arrays, by position.
_CLAIM_AND_LOCK_STOCK = Sql(
    "WITH due AS MATERIALIZED (SELECT r.reservation_id FROM {schema}.reservations r "
    "WHERE CAST(:now AS timestamptz) IS NOT NULL AND r.state = 'soft' AND r.expires_at <= :now "
    "AND r.order_key <> ALL(CAST(:skip AS text[])) AND (CAST(:due_skus AS text[]) IS NULL OR EXISTS "
    "(SELECT 1 FROM {schema}.allocations a WHERE a.reservation_id = r.reservation_id "
    "AND a.sku = ANY(CAST(:due_skus AS text[])))) ORDER BY r.reservation_id LIMIT :limit FOR UPDATE SKIP LOCKED), "
    "d AS MATERIALIZED (SELECT r.order_key, r.reservation_id, r.state, r.expires_at, a.batch_id, a.sku, a.workshop_id, "
    "a.quantity FROM due JOIN {schema}.reservations r USING (reservation_id) "
    "JOIN {schema}.allocations a USING (reservation_id)), "
    f"s AS MATERIALIZED (SELECT {_STOCK_COLUMNS} FROM {{schema}}.batch_stock "
    "WHERE sku = ANY(CAST(:skus AS text[])) OR sku IN (SELECT sku FROM d) ORDER BY batch_id FOR UPDATE) "
    "SELECT (SELECT coalesce(json_agg(json_build_array(order_key, reservation_id, state, expires_at, batch_id, sku, "
    "workshop_id, quantity) ORDER BY reservation_id, batch_id), '[]') FROM d) AS due, "
    f"(SELECT coalesce(json_agg(json_build_array({_STOCK_COLUMNS}) ORDER BY batch_id), '[]') FROM s) AS stock, "
    "ARRAY(SELECT nextval('{schema}.reservations_reservation_id_seq') FROM generate_series(1, :n)) AS ids"
)
_LOCK_QUARANTINE = Sql(
    "SELECT id, order_key, batch_id, quantity, status FROM {schema}.quarantine WHERE id = :i FOR UPDATE"
)


async def lock_orders(uow: UnitOfWork, order_keys: Iterable[str]) -> list[Row[*tuple[Any, ...]]]:
    """Lock the existing rows of ``order_keys`` (sorted) and return them.

    Columns, in this order: order_key, state, update_time, stock_stage, lapas_id, parked_reason, channel, shop_id,
    order_id, historical, gross_amount, reservation_failed_reason.
    """
    keys = sorted(set(order_keys))
    if not keys:
        return []
    return list(await _LOCK_ORDERS.on(uow).execute(uow.conn, keys))


async def lock_waiting_orders(
    uow: UnitOfWork, skus: Iterable[str], states: Iterable[str], *, skip_locked: bool = False
) -> list[Row[*tuple[Any, ...]]]:
    """Lock the orders waiting for stock (reservation failed, nothing held, not historical, in one of ``states``)
    with a line of one of ``skus``, by order key. Columns: order_key, created_at.

    With ``skip_locked`` an order locked by another transaction is skipped and nothing waits: so it may be taken
    after stock rows are locked (as the due soft holds are) without breaking the lock order."""
    wanted = sorted(set(skus))
    if not wanted:
        return []
    statement = _LOCK_WAITING_SKIP if skip_locked else _LOCK_WAITING
    return list(await uow.conn.execute(statement.on(uow), {"skus": wanted, "states": sorted(set(states))}))


async def claim_due_and_lock_stock(
    uow: UnitOfWork,
    *,
    now: datetime | None,
    due_skus: Iterable[str] | None,
    skip_orders: Iterable[str],
    skus: Iterable[str],
    new_ids: int,
    limit: int = 5000,
) -> Row[*tuple[Any, ...]]:
    """Claim (SKIP LOCKED) the soft reservations due at ``now`` (none when ``now`` is None), only those holding one
    of ``due_skus`` unless it is None, except those of ``skip_orders``; then lock every batch_stock row of ``skus``
    and of the claimed holds, by batch id; and draw ``new_ids`` reservation ids. One round trip.

    A reservation locked by another transaction is skipped: its owner is about to change it anyway. Returns one
    row: ``due`` (JSON rows, one per allocation: order_key, reservation_id, state, expires_at, batch_id, sku,
    workshop_id, quantity), ``stock`` (JSON rows: batch_id, sku, workshop_id, lapas_id, production_date, on_hand,
    soft_reserved, allocated, quarantined) and ``ids``.
    """
    params = {
        "now": now,
        "due_skus": None if due_skus is None else sorted(set(due_skus)),
        "skip": sorted(set(skip_orders)),
        "skus": sorted(set(skus)),
        "n": new_ids,
        "limit": limit,
    }
    return (await uow.conn.execute(_CLAIM_AND_LOCK_STOCK.on(uow), params)).one()


async def lock_quarantine_row(uow: UnitOfWork, quarantine_id: int) -> Row[*tuple[Any, ...]] | None:
    """Lock one quarantine row (before its batch stock) and return it, or ``None`` if it does not exist."""
    result = await uow.conn.execute(_LOCK_QUARANTINE.on(uow), {"i": quarantine_id})
    return result.one_or_none()
