"""What the orders use case reads about a batch's orders before it folds them, in TWO round trips.

1. the orders rows, locked in key order (:func:`services.orders.adapters.locks.lock_orders`);
2. once those locks are held, ONE statement reads the orders' lines, locks and reads their live reservations (the
   second lock of :mod:`services.orders.adapters.locks`) and resolves the batch's listings.

The second read is a statement of its own on purpose: in READ COMMITTED each statement sees what was committed when
it started, and a transaction this one waited for while locking an order (the expiry sweeper, a backorder fill, a
person's allocation) may have just committed a reservation of that order. Read in the locking statement, that
reservation would be missed and the order held twice. The lines, reservations and listings were three statements.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from infra.db.unit_of_work import UnitOfWork
from services.orders.adapters.locks import LIVE_RESERVATIONS_LOCK, lock_orders
from services.orders.adapters.sql import Keyed, instant
from services.orders.domain.lifecycle import OrderState, OrderStatusSnapshot, StockStage
from services.orders.domain.records import Held, Line, OrderRow, Reservation

__all__ = ["ListingKey", "OrdersRead", "read_orders", "reservations_of", "resolve"]

ListingKey = tuple[str, str, str, str]
"""(channel, shop, channel product id, channel variant id or '')."""

# Members by stored value: an enum call per loaded order is a slow path of the Enum machinery.
_STATE_OF: dict[str, OrderState] = {s.value: s for s in OrderState}
_STAGE_OF: dict[int, StockStage] = {int(s): s for s in StockStage}


@dataclass(frozen=True, slots=True)
class OrdersRead:
    """The batch's existing ``orders`` (locked, with lines and live reservation) and its resolved ``listings``
    (listing key → (sku, workshop_id, lapas_id); a listing key nothing resolves is absent)."""

    orders: dict[str, OrderRow]
    listings: dict[ListingKey, tuple[str, str, str]]


# Rows as JSON arrays, by position; the reservations' lock waits for nothing the orders' locks did not already order.
_DETAILS = Keyed(
    "WITH k AS MATERIALIZED (SELECT {keys} AS keys), "
    "r AS MATERIALIZED (" + LIVE_RESERVATIONS_LOCK.replace("{keys}", "CAST((SELECT keys FROM k) AS text[])") + ") "
    "SELECT "
    "(SELECT coalesce(json_agg(json_build_array(l.order_key, l.line_no, l.sku, l.workshop_id, l.quantity, "
    "l.unit_price_idr) ORDER BY l.order_key, l.line_no), '[]') FROM {schema}.order_lines l "
    "WHERE l.order_key = ANY(CAST((SELECT keys FROM k) AS text[]))) AS lines, "
    "(SELECT coalesce(json_agg(json_build_array(order_key, reservation_id, state, expires_at, batch_id, sku, "
    "workshop_id, quantity) ORDER BY reservation_id, batch_id), '[]') FROM r) AS reservations, "
    "(SELECT coalesce(json_agg(json_build_array(l.channel, l.shop_id, l.channel_product_id, l.channel_sku_id, "
    "l.sku, l.workshop_id, w.lapas_id)), '[]') FROM {schema}.listings l JOIN {schema}.workshops w "
    "USING (workshop_id) WHERE (l.channel, l.shop_id, l.channel_product_id) IN "
    "(SELECT * FROM unnest(CAST(:c AS text[]), CAST(:s AS text[]), CAST(:p AS text[])))) AS listings"
)


async def read_orders(uow: UnitOfWork, keys: Iterable[str], listings: Iterable[ListingKey] = ()) -> OrdersRead:
    """Lock and load the existing orders of ``keys`` with their lines and live reservation, and resolve
    ``listings`` (:func:`resolve`); two statements (see the module docstring)."""
    orders: dict[str, OrderRow] = {}
    # Rows are unpacked by position (columns as selected by lock_orders): Row attribute access is slow.
    for (
        key,
        state,
        update_time,
        stage,
        lapas_id,
        parked,
        channel,
        shop_id,
        order_id,
        historical,
        gross,
        failed,
    ) in await lock_orders(uow, keys):
        snapshot = (
            None
            if state is None
            else OrderStatusSnapshot(
                _STATE_OF[state] if state in _STATE_OF else OrderState(state),
                update_time,
                _STAGE_OF[stage] if stage in _STAGE_OF else StockStage(stage),
            )
        )
        orders[key] = OrderRow(key, channel, shop_id, order_id, snapshot, lapas_id, historical, gross, parked, failed)
    wanted = sorted(set(listings))
    if not orders and not wanted:
        return OrdersRead({}, {})
    params = {"c": [w[0] for w in wanted], "s": [w[1] for w in wanted], "p": [w[2] for w in wanted]}
    row = (await _DETAILS.on(uow).execute(uow.conn, sorted(orders), params)).one()
    for key, line_no, sku, workshop_id, quantity, unit_price in row.lines:
        orders[key].lines.append(Line(line_no, sku, workshop_id, quantity, unit_price))
    for key, res in reservations_of(row.reservations):
        orders[key].reservation = res
    return OrdersRead(orders, resolve(wanted, row.listings))


def reservations_of(rows: Iterable[Sequence[Any]]) -> list[tuple[str, Reservation]]:
    """(order key, reservation) of JSON rows, one per allocation, in reservation order: order_key, reservation_id,
    state, expires_at, batch_id, sku, workshop_id, quantity."""
    by_id: dict[int, tuple[str, Reservation]] = {}
    for key, rid, state, expires_at, batch_id, sku, workshop_id, quantity in rows:
        hit = by_id.get(rid)
        if hit is None:
            hit = by_id[rid] = (key, Reservation(rid, state, instant(expires_at), []))
        hit[1].allocations.append(Held(batch_id, sku, workshop_id, quantity))
    return list(by_id.values())


def resolve(wanted: Iterable[ListingKey], rows: Iterable[Iterable[str]]) -> dict[ListingKey, tuple[str, str, str]]:
    """Each of ``wanted`` → (sku, workshop_id, lapas_id) from the listing ``rows`` (channel, shop, product id,
    variant id, sku, workshop_id, lapas_id): the listing of its variant, else the product's variant-less one."""
    table = {(c, s, p, v): (sku, w, lp) for c, s, p, v, sku, w, lp in rows}
    resolved: dict[ListingKey, tuple[str, str, str]] = {}
    for item in wanted:
        hit = table.get(item) or table.get((item[0], item[1], item[2], ""))
        if hit is not None:
            resolved[item] = hit
    return resolved
