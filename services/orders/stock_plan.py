"""The stock side of a plan, in memory: expire due holds, allocate, move reservations, availability after.

Pure: it starts from the locked ``batch_stock`` rows and the other facts loaded before planning
(:class:`StockInputs`) and records movements; the adapters write them (:mod:`services.orders.adapters.stock_repo`).
All counters are checked as movements are planned, with the domain's rules (:class:`StockCounters`), and again by
the database's CHECK constraints when they are written.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, NamedTuple
from uuid import UUID

from services.orders.domain.allocation import (
    AllocationSuccess,
    BatchAvailability,
    ReservationLine,
    ReservationRequest,
    allocate,
)
from services.orders.domain.lifecycle import StockStage, stage_movements
from services.orders.domain.records import BatchFacts, Held, Movement, OrderRow, Reservation
from services.orders.domain.stock import MOVEMENT_UNIT_DELTAS, MovementKind, StockCounters, apply_movement

__all__ = ["StockInputs", "StockPlan"]

# Unit deltas (on hand, soft reserved, allocated, quarantined) per movement kind, for the planning fast path.
_UNIT: dict[MovementKind, tuple[int, int, int, int]] = {
    kind: (d.on_hand, d.soft_reserved, d.allocated, d.quarantined) for kind, d in MOVEMENT_UNIT_DELTAS.items()
}
# Kinds whose movements change on hand, soft reserved or allocated, i.e. availability.
_MOVES_AVAILABILITY = frozenset(kind for kind, u in _UNIT.items() if u[0] or u[1] or u[2])
# Kinds that give held units back (a cancellation, an expiry): orders waiting for the SKU may be filled.
_FREES = frozenset({MovementKind.RELEASE_SOFT, MovementKind.RELEASE_HARD, MovementKind.EXPIRE})
_new_tuple = tuple.__new__
_STATE_AT = {
    StockStage.SOFT: "soft",
    StockStage.HARD: "hard",
    StockStage.CONSUMED: "consumed",
    StockStage.QUARANTINED: "consumed",
    StockStage.RELEASED: "released",
}
EXPIRY_REASON = "unpaid past the auto-cancel window"


class _ProductionBatchInfo(NamedTuple):
    """What the allocator needs of a locked production batch (batch_stock row) besides its counters."""

    sku: str
    workshop_id: str
    lapas_id: str
    production_date: date


@dataclass
class StockInputs:
    """What a stock plan starts from, read (and locked) before planning.

    ``rows``: every ``batch_stock`` row of the SKUs involved, as (batch_id, sku, workshop_id, lapas_id,
    production_date, on_hand, soft_reserved, allocated, quarantined); ``due``: soft holds past their window
    (claimed); ``reservation_ids``: fresh ids for the reservations the plan may create.
    """

    rows: Sequence[Sequence[Any]] = ()
    lapas_of_workshop: dict[str, str] = field(default_factory=dict)
    batch_info: dict[str, BatchFacts] = field(default_factory=dict)
    due: list[tuple[str, Reservation]] = field(default_factory=list)
    reservation_ids: list[int] = field(default_factory=list)


class StockPlan:
    """Planned stock changes of one batch or command (see the module docstring)."""

    def __init__(self, inputs: StockInputs) -> None:
        """Start from ``inputs``; raises the domain's StockInvariantViolation for a row that breaks a rule."""
        # Counters per batch as [on_hand, soft_reserved, allocated, quarantined], checked like StockCounters.
        self._counters: dict[str, list[int]] = {}
        self._meta: dict[str, _ProductionBatchInfo] = {}
        self._lapas_of_workshop = dict(inputs.lapas_of_workshop)
        for batch_id, sku, workshop_id, lapas_id, produced, *counters in inputs.rows:
            on_hand, soft, allocated, quarantined = counters
            if on_hand < 0 or soft < 0 or allocated < 0 or quarantined < 0 or soft + allocated > on_hand:
                StockCounters(*counters)  # raises the domain's StockInvariantViolation
            self._counters[batch_id] = list(counters)
            self._meta[batch_id] = _ProductionBatchInfo(sku, workshop_id, lapas_id, produced)
            self._lapas_of_workshop.setdefault(workshop_id, lapas_id)
        self._reservation_ids = list(inputs.reservation_ids)
        self._due = inputs.due
        self.batch_info = inputs.batch_info
        self.movements: list[Movement] = []
        self.quarantine: list[tuple[str, str, int]] = []
        self.expired: list[tuple[str, Reservation]] = []

    def expire_due(self) -> list[tuple[str, Reservation]]:
        """Give back the units of every due soft hold; returns them (state ``expired``, to be written)."""
        for order_key, res in self._due:
            self._plan(res.allocations, MovementKind.EXPIRE, order_key, None, EXPIRY_REASON)
            res.state, res.changed = "expired", True
        self.expired = list(self._due)
        return self.expired

    def new_reservation_id(self) -> int:
        """A fresh reservation id (loaded with the inputs)."""
        return self._reservation_ids.pop()

    def add_reservation_ids(self, ids: Sequence[int], lapas_of_workshop: dict[str, str]) -> None:
        """More fresh reservation ids and workshops' lapas, loaded after planning started (orders to fill)."""
        self._reservation_ids += ids
        for workshop_id, lapas_id in lapas_of_workshop.items():
            self._lapas_of_workshop.setdefault(workshop_id, lapas_id)

    def free(self, batch_id: str) -> int:
        """Units of ``batch_id`` neither reserved nor held (0 for a batch whose stock row is not loaded)."""
        counters = self._counters.get(batch_id)
        return _available(counters) if counters is not None else 0

    @property
    def skus(self) -> set[str]:
        """The SKUs whose stock rows this plan holds (locked)."""
        return {m[0] for m in self._meta.values()}

    def freed_skus(self) -> set[str]:
        """The SKUs the planned movements gave held units back to (released or expired holds)."""
        return {self._meta[m.batch_id][0] for m in self.movements if m.kind in _FREES}

    def knows_workshops(self, workshops: set[str]) -> bool:
        """Whether the lapas of every one of ``workshops`` is known."""
        return workshops <= self._lapas_of_workshop.keys()

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

    def move(self, order: OrderRow, frm: StockStage, to: StockStage, event_id: UUID | None, *, fresh: bool) -> None:
        """Plan the movements that take ``order``'s reservation from stage ``frm`` to ``to``."""
        res = order.reservation
        assert res is not None
        state = order.snapshot.state.value if order.snapshot else "unknown"
        for kind in stage_movements(frm, to):
            self._plan(res.allocations, kind, order.order_key, event_id, f"order {state}")
            if kind is MovementKind.RETURN_TO_QUARANTINE:
                self.quarantine += [(order.order_key, a.batch_id, a.quantity) for a in res.allocations]
        if to in _STATE_AT:
            res.state = _STATE_AT[to]
            res.changed = res.changed or not fresh

    def record(self, held: Sequence[Held], kind: MovementKind, order_key: str | None, reason: str) -> None:
        """Plan one movement of ``kind`` on each of ``held`` (inspection's restock and write-off)."""
        self._plan(held, kind, order_key, None, reason)

    def _plan(
        self, held: Sequence[Held], kind: MovementKind, order_key: str | None, event_id: UUID | None, reason: str
    ) -> None:
        u0, u1, u2, u3 = _UNIT[kind]
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

    def availability(self) -> dict[str, list[tuple[str, int]]]:
        """Available units per workshop (sorted) of every SKU whose availability the planned movements changed."""
        meta = self._meta
        skus = {meta[m.batch_id][0] for m in self.movements if m.kind in _MOVES_AVAILABILITY}
        per: dict[tuple[str, str], int] = defaultdict(int)
        for batch_id, m in meta.items():
            if m[0] in skus:
                per[(m[0], m[1])] += _available(self._counters[batch_id])
        out: dict[str, list[tuple[str, int]]] = defaultdict(list)
        for (sku, workshop_id), available in sorted(per.items()):
            out[sku].append((workshop_id, available))
        return dict(out)


def _available(counters: list[int]) -> int:
    """``StockCounters.available`` of a counter list."""
    return counters[0] - counters[1] - counters[2]
