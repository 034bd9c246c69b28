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


async def load_orders(conn: AsyncConnection, keys: Iterable[str]) -> dict[str, OrderRow]:
    """Lock and load existing orders with their lines and live reservation."""
    rows = await lock_orders(conn, keys)
    if not rows:
        return {}
    found = {r.order_key for r in rows}
    extra = await conn.execute(
        text(
            "SELECT order_key, channel, shop_id, order_id, historical, gross_amount FROM orders.orders "
            "WHERE order_key = ANY(:keys)"
        ),
        {"keys": sorted(found)},
    )
    meta = {r.order_key: r for r in extra}
    orders: dict[str, OrderRow] = {}
    for r in rows:
        m = meta[r.order_key]
        orders[r.order_key] = OrderRow(
            order_key=r.order_key,
            channel=m.channel,
            shop_id=m.shop_id,
            order_id=m.order_id,
            snapshot=None
            if r.state is None
            else OrderStatusSnapshot(OrderState(r.state), r.update_time, StockStage(r.stock_stage)),
            lapas_id=r.lapas_id,
            historical=m.historical,
            gross_amount=m.gross_amount,
            parked_reason=r.parked_reason,
        )
    for line in await conn.execute(
        text(
            "SELECT order_key, line_no, sku, workshop_id, quantity, unit_price_idr FROM orders.order_lines "
            "WHERE order_key = ANY(:keys) ORDER BY order_key, line_no"
        ),
        {"keys": sorted(found)},
    ):
        orders[line.order_key].lines.append(
            Line(line.line_no, line.sku, line.workshop_id, line.quantity, line.unit_price_idr)
        )
    for res in await _live_reservations(conn, sorted(found)):
        orders[res[0]].reservation = res[1]
    return orders


async def _live_reservations(conn: AsyncConnection, keys: list[str]) -> list[tuple[str, Reservation]]:
    rows = await conn.execute(
        text(
            "SELECT r.order_key, r.reservation_id, r.state, r.expires_at, a.batch_id, a.sku, a.workshop_id, "
            "a.quantity FROM orders.reservations r JOIN orders.allocations a USING (reservation_id) "
            "WHERE r.order_key = ANY(:keys) AND r.state IN ('soft', 'hard', 'consumed') "
            "ORDER BY r.reservation_id, a.batch_id FOR UPDATE OF r"
        ),
        {"keys": keys},
    )
    by_id: dict[int, tuple[str, Reservation]] = {}
    for r in rows:
        if r.reservation_id not in by_id:
            by_id[r.reservation_id] = (r.order_key, Reservation(r.reservation_id, r.state, r.expires_at, []))
        by_id[r.reservation_id][1].allocations.append(Held(r.batch_id, r.sku, r.workshop_id, r.quantity))
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
    table = {
        (r.channel, r.shop_id, r.channel_product_id, r.channel_sku_id): (r.sku, r.workshop_id, r.lapas_id) for r in rows
    }
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


def _arrays(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str]]) -> dict[str, list[Any]]:
    return {name: [r[name] for r in rows] for name, _ in columns}


def _unnest(columns: Sequence[tuple[str, str]]) -> str:
    return "unnest(" + ", ".join(f"CAST(:{n} AS {t}[])" for n, t in columns) + ")"


async def save_orders(conn: AsyncConnection, orders: Sequence[OrderRow]) -> None:
    """Insert new orders and update changed ones (state, stage, lapas, parking), plus new lines — set-based."""
    new = [_order_params(o) for o in orders if o.is_new]
    old = [_order_params(o) for o in orders if not o.is_new]
    if new:
        await conn.execute(
            text(
                "INSERT INTO orders.orders (order_key, channel, shop_id, order_id, state, update_time, stock_stage, "
                f"lapas_id, historical, gross_amount, parked_reason) SELECT * FROM {_unnest(_ORDER_COLUMNS)}"
            ),
            _arrays(new, _ORDER_COLUMNS),
        )
    if old:
        await conn.execute(
            text(
                "UPDATE orders.orders o SET state = u.state, update_time = u.update_time, "
                "stock_stage = u.stock_stage, lapas_id = u.lapas_id, gross_amount = u.gross_amount, "
                f"parked_reason = u.parked, updated_at = now() FROM {_unnest(_ORDER_COLUMNS)} "
                f"AS u({', '.join(n for n, _ in _ORDER_COLUMNS)}) WHERE o.order_key = u.order_key"
            ),
            _arrays(old, _ORDER_COLUMNS),
        )
    lines = [(o.order_key, line) for o in orders if o.lines_new for line in o.lines]
    if lines:
        await conn.execute(
            text(
                "INSERT INTO orders.order_lines (order_key, line_no, sku, workshop_id, quantity, unit_price_idr) "
                "SELECT * FROM unnest(CAST(:k AS text[]), CAST(:n AS int[]), CAST(:sku AS text[]), "
                "CAST(:w AS text[]), CAST(:q AS int[]), CAST(:p AS bigint[]))"
            ),
            {
                "k": [k for k, _ in lines],
                "n": [ln.line_no for _, ln in lines],
                "sku": [ln.sku for _, ln in lines],
                "w": [ln.workshop_id for _, ln in lines],
                "q": [ln.quantity for _, ln in lines],
                "p": [ln.unit_price for _, ln in lines],
            },
        )


def _order_params(o: OrderRow) -> dict[str, Any]:
    snap = o.snapshot
    return {
        "order_key": o.order_key,
        "channel": o.channel,
        "shop_id": o.shop_id,
        "order_id": o.order_id,
        "state": snap.state.value if snap else None,
        "update_time": snap.update_time if snap else None,
        "stock_stage": int(snap.stock_stage) if snap else 0,
        "lapas_id": o.lapas_id,
        "historical": o.historical,
        "gross_amount": o.gross_amount,
        "parked": o.parked_reason,
    }


@dataclass(frozen=True, slots=True)
class HistoryRow:
    """One decision of the state machine about one event."""

    order_key: str
    from_state: str | None
    to_state: str
    requested_state: str
    raw_status: str
    update_time: datetime
    decision: str
    event_id: UUID


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


async def append_history(conn: AsyncConnection, rows: Sequence[HistoryRow]) -> None:
    """Append state-machine decisions (applied and ignored alike, for audit) in one statement."""
    if rows:
        await conn.execute(
            text(
                "INSERT INTO orders.order_history (order_key, from_state, to_state, requested_state, raw_status, "
                f"update_time, decision, event_id) SELECT * FROM {_unnest(_HISTORY_COLUMNS)}"
            ),
            _arrays([_slots(r) for r in rows], _HISTORY_COLUMNS),
        )


def _slots(obj: Any) -> dict[str, Any]:
    return {name: getattr(obj, name) for name in obj.__slots__}


async def save_reservations(conn: AsyncConnection, reservations: Sequence[tuple[str, Reservation]]) -> None:
    """Insert new reservations with their allocations; update the state of changed ones — set-based."""
    new = [(k, r) for k, r in reservations if r.is_new]
    changed = [r for _, r in reservations if r.changed and not r.is_new]
    if new:
        await conn.execute(
            text(
                "INSERT INTO orders.reservations (reservation_id, order_key, state, expires_at) SELECT * FROM "
                "unnest(CAST(:id AS bigint[]), CAST(:k AS text[]), CAST(:state AS text[]), "
                "CAST(:exp AS timestamptz[]))"
            ),
            {
                "id": [r.reservation_id for _, r in new],
                "k": [k for k, _ in new],
                "state": [r.state for _, r in new],
                "exp": [r.expires_at for _, r in new],
            },
        )
        held = [(r.reservation_id, a) for _, r in new for a in r.allocations]
        await conn.execute(
            text(
                "INSERT INTO orders.allocations (reservation_id, batch_id, sku, workshop_id, quantity) SELECT * FROM "
                "unnest(CAST(:id AS bigint[]), CAST(:b AS text[]), CAST(:sku AS text[]), CAST(:w AS text[]), "
                "CAST(:q AS int[]))"
            ),
            {
                "id": [i for i, _ in held],
                "b": [a.batch_id for _, a in held],
                "sku": [a.sku for _, a in held],
                "w": [a.workshop_id for _, a in held],
                "q": [a.quantity for _, a in held],
            },
        )
    if changed:
        await conn.execute(
            text(
                "UPDATE orders.reservations r SET state = u.state, updated_at = now() FROM "
                "unnest(CAST(:id AS bigint[]), CAST(:state AS text[])) AS u(id, state) WHERE r.reservation_id = u.id"
            ),
            {"id": [r.reservation_id for r in changed], "state": [r.state for r in changed]},
        )
