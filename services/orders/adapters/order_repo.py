"""SQL for orders, their lines, history and reservations (loaded locked, written set-based per batch)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from infra.db.rowsets import Writes
from infra.db.unit_of_work import UnitOfWork
from services.orders.adapters.locks import lock_waiting_orders
from services.orders.adapters.order_reads import read_orders
from services.orders.adapters.sql import Rows, Sql
from services.orders.domain.lifecycle import BACKORDER_STATES
from services.orders.domain.records import BatchFacts, History, OrderRow, Reservation


async def load_orders(uow: UnitOfWork, keys: Iterable[str]) -> dict[str, OrderRow]:
    """Lock and load existing orders with their lines and live reservation (:func:`read_orders`)."""
    return (await read_orders(uow, keys)).orders


async def load_waiting(uow: UnitOfWork, skus: Iterable[str], *, skip_locked: bool = False) -> list[OrderRow]:
    """Lock and load the orders waiting for stock (:data:`BACKORDER_STATES`) with a line of one of ``skus``,
    oldest first (when the service first saw them, then by order key); ``skip_locked``: see
    :func:`~services.orders.adapters.locks.lock_waiting_orders`."""
    rows = await lock_waiting_orders(uow, skus, [s.value for s in BACKORDER_STATES], skip_locked=skip_locked)
    orders = await load_orders(uow, [r[0] for r in rows])
    return [orders[key] for key, _ in sorted(rows, key=lambda r: (r[1], r[0])) if key in orders]


_WORKSHOPS = Sql("SELECT workshop_id, lapas_id FROM {schema}.workshops")


async def lapas_of_workshops(uow: UnitOfWork) -> dict[str, str]:
    """Every workshop's lapas."""
    return {w: lp for w, lp in await uow.conn.execute(_WORKSHOPS.on(uow))}


_WORK_GROUPS = Sql(
    "SELECT batch_id, inmate_id, work_share FROM {schema}.batch_work_group "
    "WHERE batch_id = ANY(:ids) ORDER BY batch_id, inmate_id"
)
_BATCHES = Sql(
    "SELECT b.batch_id, b.sku, b.workshop_id, w.lapas_id, b.produced_qty, b.unit_material_cost_idr, b.supplier_id "
    "FROM {schema}.production_batches b JOIN {schema}.workshops w USING (workshop_id) WHERE b.batch_id = ANY(:ids)"
)
_NEXT_RESERVATION_IDS = Sql("SELECT nextval('{schema}.reservations_reservation_id_seq') FROM generate_series(1, :n)")


class BatchInfoCache:
    """Production batches never change once recorded, so their facts are cached per process."""

    def __init__(self) -> None:
        """An empty cache."""
        self._cache: dict[str, BatchFacts] = {}

    async def get(self, uow: UnitOfWork, batch_ids: Iterable[str]) -> dict[str, BatchFacts]:
        """Facts of ``batch_ids`` (loading the missing ones in one query)."""
        ids = set(batch_ids)
        missing = sorted(ids - self._cache.keys())
        if missing:
            groups: dict[str, list[tuple[str, int]]] = defaultdict(list)
            for g in await uow.conn.execute(_WORK_GROUPS.on(uow), {"ids": missing}):
                groups[g.batch_id].append((g.inmate_id, g.work_share))
            for b in await uow.conn.execute(_BATCHES.on(uow), {"ids": missing}):
                self._cache[b.batch_id] = BatchFacts(
                    b.batch_id,
                    b.sku,
                    b.workshop_id,
                    b.lapas_id,
                    b.produced_qty,
                    b.unit_material_cost_idr,
                    b.supplier_id,
                    tuple(groups[b.batch_id]),
                )
        return {i: self._cache[i] for i in ids if i in self._cache}


async def next_reservation_ids(uow: UnitOfWork, n: int) -> list[int]:
    """``n`` fresh reservation ids from the table's sequence."""
    if n == 0:
        return []
    rows = await uow.conn.execute(_NEXT_RESERVATION_IDS.on(uow), {"n": n})
    return [int(r[0]) for r in rows]


_ORDER_COLUMNS = (
    ("order_key", "text"),
    ("channel", "text"),
    ("shop_id", "text"),
    ("order_id", "text"),
    ("state", "text"),
    ("update_time", "timestamptz"),
    ("stock_stage", "smallint"),
    ("lapas_id", "text"),
    ("historical", "boolean"),
    ("gross_amount", "bigint"),
    ("parked", "text"),
    ("failed", "text"),
)
# The columns an existing order can change (the others are fixed when it is inserted).
_CHANGING_COLUMNS = tuple(c for c in _ORDER_COLUMNS if c[0] not in ("channel", "shop_id", "order_id", "historical"))

_INSERT_ORDERS = Rows(
    "INSERT INTO {schema}.orders (order_key, channel, shop_id, order_id, state, update_time, stock_stage, "
    "lapas_id, historical, gross_amount, parked_reason, reservation_failed_reason) SELECT * FROM {rows}",
    _ORDER_COLUMNS,
)
_UPDATE_ORDERS = Rows(
    "UPDATE {schema}.orders o SET state = u.state, update_time = u.update_time, "
    "stock_stage = u.stock_stage, lapas_id = u.lapas_id, gross_amount = u.gross_amount, "
    "parked_reason = u.parked, reservation_failed_reason = u.failed, updated_at = now() "
    "FROM {rows} WHERE o.order_key = u.order_key",
    _CHANGING_COLUMNS,
)
_INSERT_LINES = Rows(
    "INSERT INTO {schema}.order_lines (order_key, line_no, sku, workshop_id, quantity, unit_price_idr) "
    "SELECT * FROM {rows}",
    (("k", "text"), ("n", "int"), ("sku", "text"), ("w", "text"), ("q", "int"), ("p", "bigint")),
)


def _order_columns(orders: Sequence[OrderRow], columns: Sequence[tuple[str, str]]) -> list[list[Any]]:
    """Parameter columns of ``orders``, in the order of ``columns``."""
    snaps = [o.snapshot for o in orders]
    values: dict[str, list[Any]] = {
        "order_key": [o.order_key for o in orders],
        "state": [s.state.value if s else None for s in snaps],
        "update_time": [s.update_time if s else None for s in snaps],
        "stock_stage": [int(s.stock_stage) if s else 0 for s in snaps],
        "lapas_id": [o.lapas_id for o in orders],
        "gross_amount": [o.gross_amount for o in orders],
        "parked": [o.parked_reason for o in orders],
        "failed": [o.reservation_failed for o in orders],
    }
    if len(columns) > len(values):
        values["channel"] = [o.channel for o in orders]
        values["shop_id"] = [o.shop_id for o in orders]
        values["order_id"] = [o.order_id for o in orders]
        values["historical"] = [o.historical for o in orders]
    return [values[name] for name, _ in columns]


def add_orders(writes: Writes, uow: UnitOfWork, orders: Sequence[OrderRow]) -> None:
    """Insert new orders and update changed ones (state, stage, lapas, parking), plus new lines — set-based."""
    new = [o for o in orders if o.is_new]
    old = [o for o in orders if not o.is_new]
    if new:
        writes.add(_INSERT_ORDERS.on(uow), _order_columns(new, _ORDER_COLUMNS))
    if old:
        writes.add(_UPDATE_ORDERS.on(uow), _order_columns(old, _CHANGING_COLUMNS))
    lines = [(o.order_key, line) for o in orders if o.lines_new for line in o.lines]
    if lines:
        writes.add(
            _INSERT_LINES.on(uow),
            [
                [k for k, _ in lines],
                [ln.line_no for _, ln in lines],
                [ln.sku for _, ln in lines],
                [ln.workshop_id for _, ln in lines],
                [ln.quantity for _, ln in lines],
                [ln.unit_price for _, ln in lines],
            ],
        )


_HISTORY_COLUMNS = (
    ("order_key", "text"),
    ("from_state", "text"),
    ("to_state", "text"),
    ("requested_state", "text"),
    ("raw_status", "text"),
    ("update_time", "timestamptz"),
    ("decision", "text"),
    ("event_id", "uuid"),
)
_INSERT_HISTORY = Rows(
    "INSERT INTO {schema}.order_history (order_key, from_state, to_state, requested_state, raw_status, "
    "update_time, decision, event_id) SELECT * FROM {rows}",
    _HISTORY_COLUMNS,
)


def add_history(writes: Writes, uow: UnitOfWork, history: History) -> None:
    """Append state-machine decisions (applied and ignored alike, for audit) in one statement."""
    if len(history):
        writes.add(_INSERT_HISTORY.on(uow), [getattr(history, name) for name, _ in _HISTORY_COLUMNS])


_INSERT_RESERVATIONS = Rows(
    "INSERT INTO {schema}.reservations (reservation_id, order_key, state, expires_at) SELECT * FROM {rows}",
    (("id", "bigint"), ("k", "text"), ("state", "text"), ("exp", "timestamptz")),
)
_INSERT_ALLOCATIONS = Rows(
    "INSERT INTO {schema}.allocations (reservation_id, batch_id, sku, workshop_id, quantity) SELECT * FROM {rows}",
    (("id", "bigint"), ("b", "text"), ("sku", "text"), ("w", "text"), ("q", "int")),
)
_UPDATE_RESERVATIONS = Rows(
    "UPDATE {schema}.reservations r SET state = u.state, updated_at = now() FROM {rows} WHERE r.reservation_id = u.id",
    (("id", "bigint"), ("state", "text")),
)


def add_reservations(writes: Writes, uow: UnitOfWork, reservations: Sequence[tuple[str, Reservation]]) -> None:
    """Insert new reservations with their allocations; update the state of changed ones — set-based."""
    new = [(k, r) for k, r in reservations if r.is_new]
    changed = [r for _, r in reservations if r.changed and not r.is_new]
    if new:
        writes.add(
            _INSERT_RESERVATIONS.on(uow),
            [
                [r.reservation_id for _, r in new],
                [k for k, _ in new],
                [r.state for _, r in new],
                [r.expires_at for _, r in new],
            ],
        )
        held = [(r.reservation_id, a) for _, r in new for a in r.allocations]
        writes.add(
            _INSERT_ALLOCATIONS.on(uow),
            [
                [i for i, _ in held],
                [a.batch_id for _, a in held],
                [a.sku for _, a in held],
                [a.workshop_id for _, a in held],
                [a.quantity for _, a in held],
            ],
        )
    if changed:
        writes.add(_UPDATE_RESERVATIONS.on(uow), [[r.reservation_id for r in changed], [r.state for r in changed]])
