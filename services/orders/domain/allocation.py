"""Batch allocator: which production batches back each order's units, for one batch of events at a time.

Rules:

* Lines of one order with the same (SKU, preferred workshop, lapas) are summed before anything is taken,
  so two lines of the same item can never each see the same free units.
* Each aggregated line takes from batches of its SKU **in the listing's lapas only**: first the preferred
  workshop's batches, then the other workshops' batches of that lapas; within each group FIFO by production
  date, ties broken by batch id (string order). FIFO spreads premi fairly over work groups.
* A line may span several batches. An order is all-or-nothing: if any line falls short, none of its units
  are taken and the snapshot is exactly as before the order.
* Requests are processed in the given (arrival) order against one working copy of the snapshot, so a batch of
  events can never oversell what the snapshot says is available.

Cost: building the index is O(B log B) for B batches; each aggregated line then costs O(batches of its SKU
in its lapas) in the worst case, and amortised O(1) per batch for the preferred workshop because exhausted
batches are skipped with a moving head. Nothing scans batches of other SKUs or lapas.

Identifiers are strings; pass UUIDs as their canonical text (UUIDv7 text sorts by creation time) and integer
ids zero-padded if the batch-id tie-break must follow numeric order.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

__all__ = [
    "Allocation",
    "AllocationFailure",
    "AllocationOutcome",
    "AllocationResult",
    "AllocationSuccess",
    "BatchAvailability",
    "BatchId",
    "LapasId",
    "ReservationLine",
    "ReservationRequest",
    "Shortage",
    "Sku",
    "WorkshopId",
    "allocate",
]

Sku = str
WorkshopId = str
LapasId = str
BatchId = str


def _check_count(name: str, value: int, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


@dataclass(frozen=True, slots=True)
class ReservationLine:
    """One order line: ``quantity`` units of ``sku`` listed by ``workshop_id`` of ``lapas_id``."""

    sku: Sku
    quantity: int
    workshop_id: WorkshopId
    lapas_id: LapasId

    def __post_init__(self) -> None:
        _check_count("quantity", self.quantity, minimum=1)


@dataclass(frozen=True, slots=True)
class ReservationRequest:
    """All lines of one order, identified by its order key (``marketplace:shop:order``)."""

    order_key: str
    lines: tuple[ReservationLine, ...]

    def __post_init__(self) -> None:
        if not self.lines:
            raise ValueError(f"reservation request {self.order_key!r} has no lines")


@dataclass(frozen=True, slots=True)
class BatchAvailability:
    """Free units of one production batch at snapshot time."""

    batch_id: BatchId
    sku: Sku
    workshop_id: WorkshopId
    lapas_id: LapasId
    production_date: date
    available: int

    def __post_init__(self) -> None:
        _check_count("available", self.available, minimum=0)


@dataclass(frozen=True, slots=True)
class Allocation:
    """``quantity`` units of ``sku`` taken from ``batch_id`` (made in ``workshop_id``)."""

    batch_id: BatchId
    workshop_id: WorkshopId
    sku: Sku
    quantity: int


@dataclass(frozen=True, slots=True)
class Shortage:
    """A line that could not be covered.

    ``available`` counts the free units of the SKU in the whole lapas, after earlier lines of the same order.
    """

    sku: Sku
    lapas_id: LapasId
    workshop_id: WorkshopId
    wanted: int
    available: int

    def describe(self) -> str:
        """Human-readable reason, e.g. for the reservation-failed event."""
        return (
            f"insufficient stock for SKU {self.sku} in lapas {self.lapas_id}: "
            f"wanted {self.wanted}, available {self.available}"
        )


@dataclass(frozen=True, slots=True)
class AllocationSuccess:
    """The order is fully covered; allocations are grouped by line, in take order."""

    order_key: str
    allocations: tuple[Allocation, ...]

    @property
    def ok(self) -> bool:
        """Always true; lets callers branch without isinstance."""
        return True


@dataclass(frozen=True, slots=True)
class AllocationFailure:
    """The order could not be covered; nothing was taken for it."""

    order_key: str
    shortages: tuple[Shortage, ...]

    @property
    def ok(self) -> bool:
        """Always false; lets callers branch without isinstance."""
        return False

    @property
    def reason(self) -> str:
        """All shortages, joined with ``; ``."""
        return "; ".join(s.describe() for s in self.shortages)


AllocationOutcome = AllocationSuccess | AllocationFailure


@dataclass(frozen=True, slots=True)
class AllocationResult:
    """Outcomes in request order.

    Attributes:
        outcomes: one per request, same order.
    """

    outcomes: tuple[AllocationOutcome, ...]


class _Queue:
    """Batch ids of one workshop in FIFO order; ``head`` skips the exhausted prefix."""

    __slots__ = ("head", "ids")

    def __init__(self, ids: list[BatchId]) -> None:
        self.ids = ids
        self.head = 0


class _Pool:
    """All batches of one (SKU, lapas): merged FIFO list, per-workshop queues and the free total."""

    __slots__ = ("head", "merged", "total", "workshops")

    def __init__(self, merged: list[tuple[BatchId, WorkshopId]], total: int) -> None:
        self.merged = merged
        self.head = 0
        self.total = total
        grouped: dict[WorkshopId, list[BatchId]] = {}
        for batch_id, workshop_id in merged:
            grouped.setdefault(workshop_id, []).append(batch_id)
        self.workshops = {ws: _Queue(ids) for ws, ids in grouped.items()}


def _index(
    snapshot: Iterable[BatchAvailability],
) -> tuple[dict[tuple[Sku, LapasId], _Pool], dict[BatchId, int]]:
    remaining: dict[BatchId, int] = {}
    grouped: dict[tuple[Sku, LapasId], list[BatchAvailability]] = {}
    for batch in snapshot:
        if batch.batch_id in remaining:
            raise ValueError(f"batch {batch.batch_id!r} appears twice in the availability snapshot")
        remaining[batch.batch_id] = batch.available
        if batch.available:
            grouped.setdefault((batch.sku, batch.lapas_id), []).append(batch)
    pools: dict[tuple[Sku, LapasId], _Pool] = {}
    for key, batches in grouped.items():
        batches.sort(key=lambda b: (b.production_date, b.batch_id))
        pools[key] = _Pool([(b.batch_id, b.workshop_id) for b in batches], sum(b.available for b in batches))
    return pools, remaining


def _aggregate(lines: Sequence[ReservationLine]) -> dict[tuple[Sku, WorkshopId, LapasId], int]:
    demand: dict[tuple[Sku, WorkshopId, LapasId], int] = {}
    for line in lines:
        key = (line.sku, line.workshop_id, line.lapas_id)
        demand[key] = demand.get(key, 0) + line.quantity
    return demand


def allocate(requests: Sequence[ReservationRequest], snapshot: Iterable[BatchAvailability]) -> AllocationResult:
    """Allocate every request, in order, against one availability snapshot (see the module docstring).

    The snapshot must hold every batch of every SKU the requests mention (a missing SKU is a shortage with
    ``available`` 0). Neither argument is modified. The same order key twice in ``requests`` is allocated
    twice: deduplicate before calling.

    Raises:
        ValueError: a batch id appears twice in ``snapshot``.
    """
    pools, remaining = _index(snapshot)
    outcomes: list[AllocationOutcome] = []

    for request in requests:
        allocations: list[Allocation] = []
        shortages: list[Shortage] = []
        undo_heads: list[tuple[_Queue | _Pool, int]] = []
        undo_totals: list[tuple[_Pool, int]] = []

        for (sku, workshop_id, lapas_id), wanted in _aggregate(request.lines).items():
            pool = pools.get((sku, lapas_id))
            free = pool.total if pool is not None else 0
            if pool is None or free < wanted:
                shortages.append(Shortage(sku, lapas_id, workshop_id, wanted, free))
                continue
            undo_totals.append((pool, pool.total))
            pool.total -= wanted
            need = wanted

            # Pass 1: the listing's own workshop, FIFO.
            queue = pool.workshops.get(workshop_id)
            if queue is not None:
                undo_heads.append((queue, queue.head))
                ids, i, n = queue.ids, queue.head, len(queue.ids)
                while i < n and need:
                    batch_id = ids[i]
                    free_units = remaining[batch_id]
                    if free_units > need:
                        remaining[batch_id] = free_units - need
                        allocations.append(Allocation(batch_id, workshop_id, sku, need))
                        need = 0
                        break
                    if free_units:
                        remaining[batch_id] = 0
                        allocations.append(Allocation(batch_id, workshop_id, sku, free_units))
                        need -= free_units
                    i += 1
                queue.head = i

            # Pass 2: the other workshops of the same lapas, merged FIFO.
            if need:
                undo_heads.append((pool, pool.head))
                merged, n = pool.merged, len(pool.merged)
                i = pool.head
                while i < n and not remaining[merged[i][0]]:
                    i += 1
                pool.head = i
                while i < n and need:
                    batch_id, batch_workshop = merged[i]
                    i += 1
                    free_units = remaining[batch_id]
                    if batch_workshop == workshop_id or not free_units:
                        continue
                    take = min(free_units, need)
                    remaining[batch_id] = free_units - take
                    allocations.append(Allocation(batch_id, batch_workshop, sku, take))
                    need -= take
            # pool.total counted every free unit of the pool, so the two passes always cover the line.
            assert need == 0, "allocator pool total out of step with batch remainders"

        if shortages:
            for allocation in allocations:
                remaining[allocation.batch_id] += allocation.quantity
            for holder, head in reversed(undo_heads):
                holder.head = head
            for pool, total in reversed(undo_totals):
                pool.total = total
            outcomes.append(AllocationFailure(request.order_key, tuple(shortages)))
            continue

        outcomes.append(AllocationSuccess(request.order_key, tuple(allocations)))

    return AllocationResult(outcomes=tuple(outcomes))
