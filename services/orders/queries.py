"""Read side of the orders service: order detail for ``karya orders show``.

The order's ledger entries come from the ledger's schema through its own unit of work (read-only: the journal is
the ledger's, the orders service only shows it).
"""

from __future__ import annotations

from typing import Any

from infra.db.unit_of_work import UnitOfWork
from services.orders.adapters.sql import Sql

_ORDER = Sql(
    "SELECT order_key, channel, shop_id, order_id, state, update_time, stock_stage, lapas_id, "
    "historical, gross_amount, parked_reason, reservation_failed_reason FROM {schema}.orders WHERE order_key = :k"
)
_LINES = Sql(
    "SELECT line_no, sku, workshop_id, quantity, unit_price_idr FROM {schema}.order_lines "
    "WHERE order_key = :k ORDER BY line_no"
)
_HISTORY = Sql(
    "SELECT from_state, to_state, requested_state, raw_status, update_time, decision, event_id, recorded_at "
    "FROM {schema}.order_history WHERE order_key = :k ORDER BY id"
)
_RESERVATIONS = Sql(
    "SELECT reservation_id, state, expires_at, created_at, updated_at FROM {schema}.reservations "
    "WHERE order_key = :k ORDER BY reservation_id"
)
_ALLOCATIONS = Sql(
    "SELECT reservation_id, batch_id, sku, workshop_id, quantity FROM {schema}.allocations "
    "WHERE reservation_id IN (SELECT reservation_id FROM {schema}.reservations WHERE order_key = :k) "
    "ORDER BY reservation_id, batch_id"
)
_LEDGER_ENTRIES = Sql(
    "SELECT e.sequence, e.kind, e.posting_key, e.effective_at, e.memo, "
    "(SELECT sum(l.amount) FROM {schema}.journal_lines l WHERE l.sequence = e.sequence AND l.side = 'D')::bigint "
    "AS amount FROM {schema}.journal_entries e WHERE e.order_key = :k ORDER BY e.sequence"
)


async def order_detail(uow: UnitOfWork, order_key: str) -> dict[str, Any] | None:
    """State, why it got no stock (if so), history, lines, reservations and allocations of one order (None if
    unknown)."""
    order = (await uow.conn.execute(_ORDER.on(uow), {"k": order_key})).one_or_none()
    if order is None:
        return None
    detail: dict[str, Any] = dict(order._mapping)
    detail["lines"] = [dict(r._mapping) for r in await uow.conn.execute(_LINES.on(uow), {"k": order_key})]
    detail["history"] = [dict(r._mapping) for r in await uow.conn.execute(_HISTORY.on(uow), {"k": order_key})]
    reservations = [dict(r._mapping) for r in await uow.conn.execute(_RESERVATIONS.on(uow), {"k": order_key})]
    by_id = {r["reservation_id"]: r for r in reservations}
    for r in reservations:
        r["allocations"] = []
    for a in await uow.conn.execute(_ALLOCATIONS.on(uow), {"k": order_key}):
        row = dict(a._mapping)
        by_id[row.pop("reservation_id")]["allocations"].append(row)
    detail["reservations"] = reservations
    return detail


async def ledger_entries_of(ledger: UnitOfWork, order_key: str) -> list[dict[str, Any]]:
    """The journal entries of one order (sequence, kind, posting key, effective time, memo, amount), read from the
    ledger's schema (``ledger`` is a unit of work on it)."""
    return [dict(r._mapping) for r in await ledger.conn.execute(_LEDGER_ENTRIES.on(ledger), {"k": order_key})]
