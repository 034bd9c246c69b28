"""Stock counters per (product, workshop), the movements that change them, and reservation states.

Pure functions only. The adapter stores one append-only movement row per movement with its
:class:`StockDelta`; the counters are a cache that can always be re-derived by summing the deltas of every
movement, which is what ``karya stock reconcile`` checks (in SQL: ``stock_repo.counter_drift``). Which movements an
order's reservation goes through is the lifecycle's rule (:func:`services.orders.domain.lifecycle.stage_movements`).

Counter semantics (all integer units, every one ≥ 0):

``on_hand``
    Sellable units physically in the workshop, including the reserved ones. **Quarantined units are not part
    of on_hand**: a returned unit is counted only in ``quarantined`` until inspection either restocks it
    (moves it into on_hand) or writes it off. This keeps ``available`` free of uninspected goods without a
    fourth term, and lets the database CHECK stay a plain ``soft_reserved + allocated <= on_hand``.
``soft_reserved``
    Units held for unpaid orders; the hold expires at the marketplace's auto-cancel window.
``allocated``
    Units hard-reserved for paid orders and not yet shipped.
``quarantined``
    Returned units awaiting inspection.

``available = on_hand - soft_reserved - allocated`` and the invariant ``soft_reserved + allocated <= on_hand``
is the same statement as ``available >= 0``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import ClassVar, Final

__all__ = [
    "MOVEMENT_UNIT_DELTAS",
    "MovementKind",
    "MovementResult",
    "StockCounters",
    "StockDelta",
    "StockInvariantViolation",
    "apply_movement",
    "movement_delta",
]


class StockInvariantViolation(ValueError):
    """A counter would become negative, or reserved units would exceed on-hand units."""

    loggable_message: ClassVar[bool] = True  # movements, quantities and counters only (see infra.errors)


@dataclass(frozen=True, slots=True)
class StockDelta:
    """Signed change per counter; one movement row stores exactly these four numbers."""

    on_hand: int = 0
    soft_reserved: int = 0
    allocated: int = 0
    quarantined: int = 0

    def __add__(self, other: StockDelta) -> StockDelta:
        return StockDelta(
            self.on_hand + other.on_hand,
            self.soft_reserved + other.soft_reserved,
            self.allocated + other.allocated,
            self.quarantined + other.quarantined,
        )

    def scaled(self, factor: int) -> StockDelta:
        """This delta multiplied by ``factor`` (a unit delta times a quantity)."""
        return StockDelta(
            self.on_hand * factor,
            self.soft_reserved * factor,
            self.allocated * factor,
            self.quarantined * factor,
        )


@dataclass(frozen=True, slots=True)
class StockCounters:
    """Counters of one (product, workshop); construction enforces the invariants.

    Raises:
        StockInvariantViolation: a counter is negative or ``soft_reserved + allocated > on_hand``.
    """

    on_hand: int = 0
    soft_reserved: int = 0
    allocated: int = 0
    quarantined: int = 0

    def __post_init__(self) -> None:
        problems = [
            f"{name} = {value} < 0"
            for name, value in (
                ("on_hand", self.on_hand),
                ("soft_reserved", self.soft_reserved),
                ("allocated", self.allocated),
                ("quarantined", self.quarantined),
            )
            if value < 0
        ]
        if self.soft_reserved + self.allocated > self.on_hand:
            reserved = self.soft_reserved + self.allocated
            problems.append(f"soft_reserved + allocated = {reserved} > on_hand = {self.on_hand}")
        if problems:
            raise StockInvariantViolation("stock invariant violated: " + "; ".join(problems))

    @property
    def available(self) -> int:
        """Units that can still be reserved: ``on_hand - soft_reserved - allocated`` (never negative)."""
        return self.on_hand - self.soft_reserved - self.allocated

    def plus(self, delta: StockDelta) -> StockCounters:
        """Counters after adding ``delta``; raises :class:`StockInvariantViolation` if that breaks a rule."""
        return StockCounters(
            self.on_hand + delta.on_hand,
            self.soft_reserved + delta.soft_reserved,
            self.allocated + delta.allocated,
            self.quarantined + delta.quarantined,
        )


class MovementKind(StrEnum):
    """Every reason a stock counter can change. The value is what the movement row stores."""

    RECEIPT = "receipt"  # a production batch adds finished units
    SOFT_RESERVE = "soft_reserve"  # unpaid order holds units
    HARDEN = "harden"  # unpaid hold becomes a paid allocation
    HARD_RESERVE = "hard_reserve"  # paid order allocates directly (Tokopedia notifies only when paid)
    CONSUME = "consume"  # shipment: allocated units leave the workshop
    RELEASE_SOFT = "release_soft"  # unpaid order cancelled
    RELEASE_HARD = "release_hard"  # paid order cancelled before shipment
    EXPIRE = "expire"  # sweeper: unpaid hold passed its auto-cancel window
    RETURN_TO_QUARANTINE = "return_to_quarantine"  # returned units arrive, awaiting inspection
    RESTOCK = "restock"  # inspection passed: quarantined units become sellable again
    WRITE_OFF = "write_off"  # inspection failed: quarantined units are discarded


#: The delta of one unit of each movement; a movement of ``q`` units changes the counters by ``q`` times this.
MOVEMENT_UNIT_DELTAS: Final[Mapping[MovementKind, StockDelta]] = MappingProxyType(
    {
        MovementKind.RECEIPT: StockDelta(on_hand=+1),
        MovementKind.SOFT_RESERVE: StockDelta(soft_reserved=+1),
        MovementKind.HARDEN: StockDelta(soft_reserved=-1, allocated=+1),
        MovementKind.HARD_RESERVE: StockDelta(allocated=+1),
        MovementKind.CONSUME: StockDelta(on_hand=-1, allocated=-1),
        MovementKind.RELEASE_SOFT: StockDelta(soft_reserved=-1),
        MovementKind.RELEASE_HARD: StockDelta(allocated=-1),
        MovementKind.EXPIRE: StockDelta(soft_reserved=-1),
        # The unit left on_hand when it was consumed; it comes back into quarantine only.
        MovementKind.RETURN_TO_QUARANTINE: StockDelta(quarantined=+1),
        MovementKind.RESTOCK: StockDelta(on_hand=+1, quarantined=-1),
        MovementKind.WRITE_OFF: StockDelta(quarantined=-1),
    }
)


@dataclass(frozen=True, slots=True)
class MovementResult:
    """Outcome of one movement: the new counters and the delta to append to the movement log."""

    kind: MovementKind
    quantity: int
    delta: StockDelta
    counters: StockCounters


def movement_delta(kind: MovementKind, quantity: int) -> StockDelta:
    """The delta of a movement of ``quantity`` units (``quantity`` must be a positive int)."""
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity <= 0:
        raise ValueError(f"movement quantity must be a positive integer, got {quantity!r}")
    return MOVEMENT_UNIT_DELTAS[kind].scaled(quantity)


def apply_movement(counters: StockCounters, kind: MovementKind, quantity: int) -> MovementResult:
    """Apply one movement to ``counters``.

    Returns the new counters together with the delta to store. The input is never modified.

    Raises:
        ValueError: ``quantity`` is not a positive integer.
        StockInvariantViolation: the movement would make a counter negative or over-reserve; the message
            names the movement, the quantity and the counters before it.
    """
    delta = movement_delta(kind, quantity)
    try:
        new = counters.plus(delta)
    except StockInvariantViolation as exc:
        raise StockInvariantViolation(f"{kind.value} of {quantity} unit(s) rejected on {counters}: {exc}") from None
    return MovementResult(kind=kind, quantity=quantity, delta=delta, counters=new)
