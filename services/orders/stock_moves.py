"""Stock work of one batch: lock, expire what is due, allocate, move reservations, write movements.

All counters are checked in memory with the domain's :class:`StockCounters` as movements are planned, and
again by the database's CHECK constraints when they are written.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import date, datetime
from typing import NamedTuple

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from infra.db.rowsets import RowSet, Writes
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
from services.orders.adapters.stock_repo import Movement, plan_movements
from services.orders.domain.allocation import (
    AllocationSuccess,
    BatchAvailability,
    ReservationLine,
    ReservationRequest,
    allocate,
)
from services.orders.domain.lifecycle import StockStage, stage_movements
from services.orders.domain.stock import MOVEMENT_UNIT_DELTAS, MovementKind, StockCounters, apply_movement

# Unit deltas (on hand, soft reserved, allocated, quarantined) per movement kind, for the planning fast path.
_UNIT: dict[MovementKind, tuple[int, int, int, int]] = {
    kind: (d.on_hand, d.soft_reserved, d.allocated, d.quarantined) for kind, d in MOVEMENT_UNIT_DELTAS.items()
}
# Kinds whose movements change on hand, soft reserved or allocated, i.e. availability.
_MOVES_AVAILABILITY = frozenset(kind for kind, u in _UNIT.items() if u[0] or u[1] or u[2])
_WORKSHOPS = text("SELECT workshop_id, lapas_id FROM orders.workshops")
_INSERT_QUARANTINE = RowSet(
    "INSERT INTO orders.quarantine (order_key, batch_id, quantity) SELECT * FROM {rows}",
    (("k", "text"), ("b", "text"), ("q", "int")),
)
_EXPIRE = RowSet(
    "UPDATE orders.reservations r SET state = 'expired', updated_at = now() FROM {rows} WHERE r.reservation_id = u.id",
    (("id", "bigint"),),
)
_AVAILABILITY = text(
    "SELECT sku, workshop_id, sum(on_hand - soft_reserved - allocated)::int AS available "
    "FROM orders.batch_stock WHERE sku = ANY(:skus) GROUP BY sku, workshop_id ORDER BY sku, workshop_id"
)


_new_tuple = tuple.__new__


class _ProductionBatchInfo(NamedTuple):
    """What the allocator needs of a locked production batch (batch_stock row) besides its counters."""

    sku: str
    workshop_id: str
    lapas_id: str
    production_date: date


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
        # Counters per batch as [on_hand, soft_reserved, allocated, quarantined], checked like StockCounters.
        self._counters: dict[str, list[int]] = {}
        self._meta: dict[str, _ProductionBatchInfo] = {}
        self._lapas_of_workshop: dict[str, str] = {}
        self._reservation_ids: list[int] = []
        self.movements: list[Movement] = []
        self.quarantine: list[tuple[str, str, int]] = []
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
        for batch_id, sku, workshop_id, lapas_id, produced, *counters in await lock_batch_stock(conn, skus):
            on_hand, soft, allocated, quarantined = counters
            if on_hand < 0 or soft < 0 or allocated < 0 or quarantined < 0 or soft + allocated > on_hand:
                StockCounters(*counters)  # raises the domain's StockInvariantViolation
            self._counters[batch_id] = counters
            self._meta[batch_id] = _ProductionBatchInfo(sku, workshop_id, lapas_id, produced)
            self._lapas_of_workshop[workshop_id] = lapas_id
        if any(ln.workshop_id not in self._lapas_of_workshop for o in orders for ln in o.lines):
            for workshop_id, lapas_id in await conn.execute(_WORKSHOPS):
                self._lapas_of_workshop.setdefault(workshop_id, lapas_id)
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
            BatchAvailability(b, m[0], m[1], m[2], m[3], _available(self._counters[b])) for b, m in self._meta.items()
        ]
        for outcome in allocate(requests, snapshot).outcomes:
            if isinstance(outcome, AllocationSuccess):
                merged: dict[str, int] = defaultdict(int)
                for a in outcome.allocations:
                    merged[a.batch_id] += a.quantity
                meta = self._meta
                results[outcome.order_key] = [Held(b, meta[b][0], meta[b][1], q) for b, q in sorted(merged.items())]
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
                self.quarantine += [(order.order_key, a.batch_id, a.quantity) for a in res.allocations]
        if to in _STATE_AT:
            res.state = _STATE_AT[to]
            res.changed = res.changed or not fresh

    def _plan(
        self, held: Sequence[Held], kind: MovementKind, order_key: str, event: InboundEvent | None, reason: str
    ) -> None:
        u0, u1, u2, u3 = _UNIT[kind]
        event_id = event.envelope.event_id if event else None
        for a in held:
            c, q = self._counters[a.batch_id], a.quantity
            plain = type(q) is int and q > 0
            if plain:
                on_hand, soft, allocated, quarantined = c[0] + u0 * q, c[1] + u1 * q, c[2] + u2 * q, c[3] + u3 * q
                plain = min(on_hand, soft, allocated, quarantined) >= 0 and soft + allocated <= on_hand
            if not plain:
                # Not a plain valid movement: the domain function raises its own error (or agrees after all).
                after = apply_movement(StockCounters(*c), kind, q).counters
                on_hand, soft, allocated, quarantined = (
                    after.on_hand,
                    after.soft_reserved,
                    after.allocated,
                    after.quarantined,
                )
            c[0], c[1], c[2], c[3] = on_hand, soft, allocated, quarantined
            self.movements.append(_new_tuple(Movement, (a.batch_id, kind, q, reason, order_key, event_id)))

    async def flush(self, conn: AsyncConnection) -> None:
        """Write the planned movements (counters follow), quarantine rows and the expired holds."""
        writes = Writes()
        self.plan_writes(writes, expire=True)
        await writes.execute(conn)

    def plan_writes(self, writes: Writes, *, expire: bool) -> None:
        """Add the planned movements, quarantine rows and, with ``expire``, the expired holds to ``writes``.

        Without ``expire`` the caller writes the states of :attr:`expired` (already ``expired`` in memory) itself.
        """
        plan_movements(writes, self.movements)
        if self.quarantine:
            writes.add(_INSERT_QUARANTINE, [list(c) for c in zip(*self.quarantine, strict=True)])
        if self.expired and expire:
            writes.add(_EXPIRE, [[r.reservation_id for _, r in self.expired]])

    async def availability(self, conn: AsyncConnection) -> dict[str, list[tuple[str, int]]]:
        """Available units per workshop of every SKU whose availability this batch changed."""
        moving = _MOVES_AVAILABILITY
        meta = self._meta
        skus = sorted({meta[m.batch_id][0] for m in self.movements if m.kind in moving})
        if not skus:
            return {}
        out: dict[str, list[tuple[str, int]]] = defaultdict(list)
        for sku, workshop_id, available in await conn.execute(_AVAILABILITY, {"skus": skus}):
            out[sku].append((workshop_id, available))
        return out


def _available(counters: list[int]) -> int:
    """``StockCounters.available`` of a counter list."""
    return counters[0] - counters[1] - counters[2]
