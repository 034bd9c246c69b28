"""Stock work of one batch: lock, expire what is due, allocate, move reservations, write movements.

All counters are checked in memory with the domain's :class:`StockCounters` as movements are planned, and
again by the database's CHECK constraints when they are written.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from infra.messaging.consumer import InboundEvent
from services.orders.adapters.expiry_repo import claim_due_soft_reservations
from services.orders.adapters.locks import lock_batch_stock
from services.orders.adapters.order_repo import (
    BatchInfo,
    BatchInfoCache,
    Held,
    OrderRow,
    Reservation,
    next_reservation_ids,
)
from services.orders.adapters.stock_repo import Movement, record_movements
from services.orders.domain.allocation import (
    AllocationSuccess,
    BatchAvailability,
    ReservationLine,
    ReservationRequest,
    allocate,
)
from services.orders.domain.lifecycle import StockStage, stage_movements
from services.orders.domain.stock import MovementKind, StockCounters, apply_movement

_STATE_AT = {
    StockStage.SOFT: "soft",
    StockStage.HARD: "hard",
    StockStage.CONSUMED: "consumed",
    StockStage.QUARANTINED: "consumed",
    StockStage.RELEASED: "released",
}


class StockWork:
    """Planned stock changes of one batch (see the module docstring)."""

    def __init__(self, batches: BatchInfoCache) -> None:
        self._batches = batches
        self._counters: dict[str, StockCounters] = {}
        self._meta: dict[str, Any] = {}
        self._lapas_of_workshop: dict[str, str] = {}
        self._reservation_ids: list[int] = []
        self.movements: list[Movement] = []
        self.quarantine: list[dict[str, Any]] = []
        self.expired: list[tuple[str, Reservation]] = []
        self.batch_info: dict[str, BatchInfo] = {}

    async def prepare(
        self, conn: AsyncConnection, orders: Sequence[OrderRow], now: datetime, *, sweep: bool = False
    ) -> None:
        """Expire due soft holds and lock every stock row this batch may touch, in one sorted pass.

        With ``sweep`` (the periodic sweeper, no orders) every due hold is expired, whatever its SKU.
        """
        skus = {ln.sku for o in orders for ln in o.lines}
        skus |= {a.sku for o in orders if o.reservation for a in o.reservation.allocations}
        mine = {o.order_key for o in orders}
        due = [
            (k, r) for k, r in await claim_due_soft_reservations(conn, now, None if sweep else skus) if k not in mine
        ]
        skus |= {a.sku for _, r in due for a in r.allocations}
        for row in await lock_batch_stock(conn, skus):
            self._counters[row.batch_id] = StockCounters(row.on_hand, row.soft_reserved, row.allocated, row.quarantined)
            self._meta[row.batch_id] = row
            self._lapas_of_workshop[row.workshop_id] = row.lapas_id
        if any(ln.workshop_id not in self._lapas_of_workshop for o in orders for ln in o.lines):
            for w in await conn.execute(text("SELECT workshop_id, lapas_id FROM orders.workshops")):
                self._lapas_of_workshop.setdefault(w.workshop_id, w.lapas_id)
        for order_key, res in due:
            self._plan(res.allocations, MovementKind.EXPIRE, order_key, None, "unpaid past the auto-cancel window")
            res.state, res.changed = "expired", True
        self.expired = due
        self.batch_info = await self._batches.get(conn, self._meta)
        self._reservation_ids = await next_reservation_ids(conn, sum(1 for o in orders if o.reservation is None))

    def new_reservation_id(self) -> int:
        """A fresh reservation id (pre-fetched in :meth:`prepare`)."""
        return self._reservation_ids.pop()

    def allocate(self, orders: Sequence[OrderRow]) -> dict[str, list[Held] | str]:
        """All-or-nothing allocation per order, in the given order: held units or the failure reason."""
        results: dict[str, list[Held] | str] = {}
        requests: list[ReservationRequest] = []
        for o in orders:
            if not o.lines:
                results[o.order_key] = "no order lines known for this order"
                continue
            requests.append(
                ReservationRequest(
                    o.order_key,
                    tuple(
                        ReservationLine(ln.sku, ln.quantity, ln.workshop_id, self._lapas_of_workshop[ln.workshop_id])
                        for ln in o.lines
                    ),
                )
            )
        snapshot = [
            BatchAvailability(b, m.sku, m.workshop_id, m.lapas_id, m.production_date, self._counters[b].available)
            for b, m in self._meta.items()
        ]
        for outcome in allocate(requests, snapshot).outcomes:
            if isinstance(outcome, AllocationSuccess):
                merged: dict[str, int] = defaultdict(int)
                for a in outcome.allocations:
                    merged[a.batch_id] += a.quantity
                results[outcome.order_key] = [
                    Held(b, self._meta[b].sku, self._meta[b].workshop_id, q) for b, q in sorted(merged.items())
                ]
            else:
                results[outcome.order_key] = "; ".join(s.describe() for s in outcome.shortages)
        return results

    def move(self, order: OrderRow, frm: StockStage, to: StockStage, event: InboundEvent, *, fresh: bool) -> None:
        """Plan the movements that take ``order``'s reservation from stage ``frm`` to ``to``."""
        res = order.reservation
        assert res is not None
        state = order.snapshot.state.value if order.snapshot else "unknown"
        for kind in stage_movements(frm, to):
            self._plan(res.allocations, kind, order.order_key, event, f"order {state}")
            if kind is MovementKind.RETURN_TO_QUARANTINE:
                self.quarantine += [{"k": order.order_key, "b": a.batch_id, "q": a.quantity} for a in res.allocations]
        if to in _STATE_AT:
            res.state = _STATE_AT[to]
            res.changed = res.changed or not fresh

    def _plan(
        self, held: Sequence[Held], kind: MovementKind, order_key: str, event: InboundEvent | None, reason: str
    ) -> None:
        for a in held:
            self._counters[a.batch_id] = apply_movement(self._counters[a.batch_id], kind, a.quantity).counters
            self.movements.append(
                Movement(a.batch_id, kind, a.quantity, reason, order_key, event.envelope.event_id if event else None)
            )

    async def flush(self, conn: AsyncConnection) -> None:
        """Write the planned movements (counters follow) and quarantine rows."""
        await record_movements(conn, self.movements)
        if self.quarantine:
            await conn.execute(
                text("INSERT INTO orders.quarantine (order_key, batch_id, quantity) VALUES (:k, :b, :q)"),
                self.quarantine,
            )
        if self.expired:
            await conn.execute(
                text(
                    "UPDATE orders.reservations SET state = 'expired', updated_at = now() "
                    "WHERE reservation_id = ANY(:ids)"
                ),
                {"ids": [r.reservation_id for _, r in self.expired]},
            )

    async def availability(self, conn: AsyncConnection) -> dict[str, list[tuple[str, int]]]:
        """Available units per workshop of every SKU whose availability this batch changed."""
        skus = sorted(
            {
                self._meta[m.batch_id].sku
                for m in self.movements
                if m.delta.on_hand or m.delta.soft_reserved or m.delta.allocated
            }
        )
        if not skus:
            return {}
        out: dict[str, list[tuple[str, int]]] = defaultdict(list)
        for r in await conn.execute(
            text(
                "SELECT sku, workshop_id, sum(on_hand - soft_reserved - allocated)::int AS available "
                "FROM orders.batch_stock WHERE sku = ANY(:skus) GROUP BY sku, workshop_id ORDER BY sku, workshop_id"
            ),
            {"skus": skus},
        ):
            out[r.sku].append((r.workshop_id, r.available))
        return out
