"""SQL for orders, their lines, history and reservations (loaded locked, written set-based per batch)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from infra.db.rowsets import KeyedQuery, RowSet, Writes
from services.orders.adapters.locks import lock_orders
from services.orders.domain.lifecycle import OrderState, OrderStatusSnapshot, StockStage


@dataclass(frozen=True, slots=True)
class Line:
    """An order line resolved to our SKU and the listing's workshop."""

    line_no: int
    sku: str
    workshop_id: str
    quantity: int
    unit_price: int


@dataclass(frozen=True, slots=True)
class BatchInfo:
    """What never changes about a production batch: where, cost, supplier, work group."""

    batch_id: str
    lapas_id: str
    unit_material_cost: int
    supplier_id: str
    work_group: tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class Held:
    """Units of one order held in one batch."""

    batch_id: str
    sku: str
    workshop_id: str
    quantity: int


@dataclass
class Reservation:
    """The live reservation of an order (at most one is soft or hard at a time)."""

    reservation_id: int
    state: str
    expires_at: datetime | None
    allocations: list[Held]
    is_new: bool = False
    changed: bool = False


@dataclass
class OrderRow:
    """Working copy of one order during a batch."""

    order_key: str
    channel: str
    shop_id: str
    order_id: str
    snapshot: OrderStatusSnapshot | None
    lapas_id: str | None = None
    historical: bool = False
    gross_amount: int | None = None
    parked_reason: str | None = None
    lines: list[Line] = field(default_factory=list)
    is_new: bool = False
    lines_new: bool = False
    reservation: Reservation | None = None


_ORDER_LINES = KeyedQuery(
    "SELECT order_key, line_no, sku, workshop_id, quantity, unit_price_idr FROM orders.order_lines "
    "WHERE order_key = ANY({keys}) ORDER BY order_key, line_no"
)
_LIVE_RESERVATIONS = KeyedQuery(
    "SELECT r.order_key, r.reservation_id, r.state, r.expires_at, a.batch_id, a.sku, a.workshop_id, "
    "a.quantity FROM orders.reservations r JOIN orders.allocations a USING (reservation_id) "
    "WHERE r.order_key = ANY({keys}) AND r.state IN ('soft', 'hard', 'consumed') "
    "ORDER BY r.reservation_id, a.batch_id FOR UPDATE OF r"
)
# Members by stored value: an enum call per loaded order is a slow path of the Enum machinery.
_STATE_OF: dict[str, OrderState] = {s.value: s for s in OrderState}
_STAGE_OF: dict[int, StockStage] = {int(s): s for s in StockStage}


async def load_orders(conn: AsyncConnection, keys: Iterable[str]) -> dict[str, OrderRow]:
    """Lock and load existing orders with their lines and live reservation."""
    rows = await lock_orders(conn, keys)
    if not rows:
        return {}
    orders: dict[str, OrderRow] = {}
    # Rows are unpacked by position (columns as selected by lock_orders): Row attribute access is slow.
    for key, state, update_time, stage, lapas_id, parked, channel, shop_id, order_id, historical, gross in rows:
        snapshot = (
            None
            if state is None
            else OrderStatusSnapshot(
                _STATE_OF[state] if state in _STATE_OF else OrderState(state),
                update_time,
                _STAGE_OF[stage] if stage in _STAGE_OF else StockStage(stage),
            )
        )
        orders[key] = OrderRow(key, channel, shop_id, order_id, snapshot, lapas_id, historical, gross, parked)
    found = sorted(orders)
    for key, line_no, sku, workshop_id, quantity, unit_price in await _ORDER_LINES.execute(conn, found):
        orders[key].lines.append(Line(line_no, sku, workshop_id, quantity, unit_price))
    for res in await _live_reservations(conn, found):
        orders[res[0]].reservation = res[1]
    return orders


async def _live_reservations(conn: AsyncConnection, keys: list[str]) -> list[tuple[str, Reservation]]:
    by_id: dict[int, tuple[str, Reservation]] = {}
    for key, rid, state, expires_at, batch_id, sku, workshop_id, quantity in await _LIVE_RESERVATIONS.execute(
        conn, keys
    ):
        found = by_id.get(rid)
        if found is None:
            found = by_id[rid] = (key, Reservation(rid, state, expires_at, []))
        found[1].allocations.append(Held(batch_id, sku, workshop_id, quantity))
    return list(by_id.values())


async def resolve_listings(
    conn: AsyncConnection, items: Iterable[tuple[str, str, str, str]]
) -> dict[tuple[str, str, str, str], tuple[str, str, str]]:
    """(channel, shop, product id, variant id or '') → (sku, workshop_id, lapas_id); variant-less fallback."""
    wanted = sorted(set(items))
    if not wanted:
        return {}
    rows = await conn.execute(
        text(
            "SELECT l.channel, l.shop_id, l.channel_product_id, l.channel_sku_id, l.sku, l.workshop_id, w.lapas_id "
            "FROM orders.listings l JOIN orders.workshops w USING (workshop_id) "
            "WHERE (l.channel, l.shop_id, l.channel_product_id) IN "
            "(SELECT * FROM unnest(CAST(:c AS text[]), CAST(:s AS text[]), CAST(:p AS text[])))"
        ),
        {"c": [w[0] for w in wanted], "s": [w[1] for w in wanted], "p": [w[2] for w in wanted]},
    )
    table = {(c, s, p, v): (sku, w, lp) for c, s, p, v, sku, w, lp in rows}
    resolved: dict[tuple[str, str, str, str], tuple[str, str, str]] = {}
    for item in wanted:
        hit = table.get(item) or table.get((item[0], item[1], item[2], ""))
        if hit is not None:
            resolved[item] = hit
    return resolved


class BatchInfoCache:
    """Production batches never change once recorded, so their facts are cached per process."""

    def __init__(self) -> None:
        self._cache: dict[str, BatchInfo] = {}

    async def get(self, conn: AsyncConnection, batch_ids: Iterable[str]) -> dict[str, BatchInfo]:
        """Facts of ``batch_ids`` (loading the missing ones in one query)."""
        ids = set(batch_ids)
        missing = sorted(ids - self._cache.keys())
        if missing:
            groups: dict[str, list[tuple[str, int]]] = defaultdict(list)
            for g in await conn.execute(
                text(
                    "SELECT batch_id, inmate_id, work_share FROM orders.batch_work_group "
                    "WHERE batch_id = ANY(:ids) ORDER BY batch_id, inmate_id"
                ),
                {"ids": missing},
            ):
                groups[g.batch_id].append((g.inmate_id, g.work_share))
            for b in await conn.execute(
                text(
                    "SELECT b.batch_id, w.lapas_id, b.unit_material_cost_idr, b.supplier_id "
                    "FROM orders.production_batches b JOIN orders.workshops w USING (workshop_id) "
                    "WHERE b.batch_id = ANY(:ids)"
                ),
                {"ids": missing},
            ):
                self._cache[b.batch_id] = BatchInfo(
                    b.batch_id, b.lapas_id, b.unit_material_cost_idr, b.supplier_id, tuple(groups[b.batch_id])
                )
        return {i: self._cache[i] for i in ids if i in self._cache}


async def next_reservation_ids(conn: AsyncConnection, n: int) -> list[int]:
    """``n`` fresh reservation ids from the table's sequence."""
    if n == 0:
        return []
    rows = await conn.execute(
        text("SELECT nextval('orders.reservations_reservation_id_seq') FROM generate_series(1, :n)"), {"n": n}
    )
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
)
# The columns an existing order can change (the others are fixed when it is inserted).
_CHANGING_COLUMNS = tuple(c for c in _ORDER_COLUMNS if c[0] not in ("channel", "shop_id", "order_id", "historical"))

_INSERT_ORDERS = RowSet(
    "INSERT INTO orders.orders (order_key, channel, shop_id, order_id, state, update_time, stock_stage, "
    "lapas_id, historical, gross_amount, parked_reason) SELECT * FROM {rows}",
    _ORDER_COLUMNS,
)
_UPDATE_ORDERS = RowSet(
    "UPDATE orders.orders o SET state = u.state, update_time = u.update_time, "
    "stock_stage = u.stock_stage, lapas_id = u.lapas_id, gross_amount = u.gross_amount, "
    "parked_reason = u.parked, updated_at = now() FROM {rows} WHERE o.order_key = u.order_key",
    _CHANGING_COLUMNS,
)
_INSERT_LINES = RowSet(
    "INSERT INTO orders.order_lines (order_key, line_no, sku, workshop_id, quantity, unit_price_idr) "
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
    }
    if len(columns) > len(values):
        values["channel"] = [o.channel for o in orders]
        values["shop_id"] = [o.shop_id for o in orders]
        values["order_id"] = [o.order_id for o in orders]
        values["historical"] = [o.historical for o in orders]
    return [values[name] for name, _ in columns]


def plan_orders(writes: Writes, orders: Sequence[OrderRow]) -> None:
    """Insert new orders and update changed ones (state, stage, lapas, parking), plus new lines — set-based."""
    new = [o for o in orders if o.is_new]
    old = [o for o in orders if not o.is_new]
    if new:
        writes.add(_INSERT_ORDERS, _order_columns(new, _ORDER_COLUMNS))
    if old:
        writes.add(_UPDATE_ORDERS, _order_columns(old, _CHANGING_COLUMNS))
    lines = [(o.order_key, line) for o in orders if o.lines_new for line in o.lines]
    if lines:
        writes.add(
            _INSERT_LINES,
            [
                [k for k, _ in lines],
                [ln.line_no for _, ln in lines],
                [ln.sku for _, ln in lines],
                [ln.workshop_id for _, ln in lines],
                [ln.quantity for _, ln in lines],
                [ln.unit_price for _, ln in lines],
            ],
        )


class History:
    """Decisions of the state machine about the events of one batch, kept as the columns of one insert."""

    __slots__ = (
        "decision",
        "event_id",
        "from_state",
        "order_key",
        "raw_status",
        "requested_state",
        "to_state",
        "update_time",
    )

    def __init__(self) -> None:
        self.order_key: list[str] = []
        self.from_state: list[str | None] = []
        self.to_state: list[str] = []
        self.requested_state: list[str] = []
        self.raw_status: list[str] = []
        self.update_time: list[datetime] = []
        self.decision: list[str] = []
        self.event_id: list[UUID] = []

    def add(
        self,
        order_key: str,
        from_state: str | None,
        to_state: str,
        requested_state: str,
        raw_status: str,
        update_time: datetime,
        decision: str,
        event_id: UUID,
    ) -> None:
        """One decision about one event."""
        self.order_key.append(order_key)
        self.from_state.append(from_state)
        self.to_state.append(to_state)
        self.requested_state.append(requested_state)
        self.raw_status.append(raw_status)
        self.update_time.append(update_time)
        self.decision.append(decision)
        self.event_id.append(event_id)

    def __len__(self) -> int:
        return len(self.order_key)


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
_INSERT_HISTORY = RowSet(
    "INSERT INTO orders.order_history (order_key, from_state, to_state, requested_state, raw_status, "
    "update_time, decision, event_id) SELECT * FROM {rows}",
    _HISTORY_COLUMNS,
)


def plan_history(writes: Writes, history: History) -> None:
    """Append state-machine decisions (applied and ignored alike, for audit) in one statement."""
    if len(history):
        writes.add(_INSERT_HISTORY, [getattr(history, name) for name, _ in _HISTORY_COLUMNS])


_INSERT_RESERVATIONS = RowSet(
    "INSERT INTO orders.reservations (reservation_id, order_key, state, expires_at) SELECT * FROM {rows}",
    (("id", "bigint"), ("k", "text"), ("state", "text"), ("exp", "timestamptz")),
)
_INSERT_ALLOCATIONS = RowSet(
    "INSERT INTO orders.allocations (reservation_id, batch_id, sku, workshop_id, quantity) SELECT * FROM {rows}",
    (("id", "bigint"), ("b", "text"), ("sku", "text"), ("w", "text"), ("q", "int")),
)
_UPDATE_RESERVATIONS = RowSet(
    "UPDATE orders.reservations r SET state = u.state, updated_at = now() FROM {rows} WHERE r.reservation_id = u.id",
    (("id", "bigint"), ("state", "text")),
)


def plan_reservations(writes: Writes, reservations: Sequence[tuple[str, Reservation]]) -> None:
    """Insert new reservations with their allocations; update the state of changed ones — set-based."""
    new = [(k, r) for k, r in reservations if r.is_new]
    changed = [r for _, r in reservations if r.changed and not r.is_new]
    if new:
        writes.add(
            _INSERT_RESERVATIONS,
            [
                [r.reservation_id for _, r in new],
                [k for k, _ in new],
                [r.state for _, r in new],
                [r.expires_at for _, r in new],
            ],
        )
        held = [(r.reservation_id, a) for _, r in new for a in r.allocations]
        writes.add(
            _INSERT_ALLOCATIONS,
            [
                [i for i, _ in held],
                [a.batch_id for _, a in held],
                [a.sku for _, a in held],
                [a.workshop_id for _, a in held],
                [a.quantity for _, a in held],
            ],
        )
    if changed:
        writes.add(_UPDATE_RESERVATIONS, [[r.reservation_id for r in changed], [r.state for r in changed]])
