"""Canonical order lifecycle: states, ranks, and the pure rule that folds marketplace status updates.

Marketplaces deliver status changes late, twice, out of order, or not at all. :func:`decide` folds one
update into the order's :class:`OrderStatusSnapshot` so that, for any realistic lifecycle, **the final state
is the state of the update with the latest marketplace update time, whatever order the updates arrive in and
whichever of them are lost or repeated**. The rules, checked in this order:

1. No snapshot yet: the update is applied (``NEW_ORDER``).
2. Update time older than the snapshot's: ignored (``STALE``). Nothing overrides this, because order
   independence rests on it.
3. Same state as the snapshot: nothing changes except that a newer update time is remembered
   (``DUPLICATE``), so that an older event that arrives later is recognised as stale.
4. Snapshot in a terminal state (:data:`TERMINAL_STATES`): ignored (``TERMINAL``).
5. Higher rank than the snapshot's state (equal update times included): applied (``FORWARD``).
6. Lower rank but an explicitly allowed edge (:data:`ALLOWED_EDGES`) with a strictly newer update time:
   applied (``ALLOWED_EDGE``) — a rejected cancel request returns to a pre-shipment state, a rejected return
   request returns to a post-shipment state.
7. Anything else is ignored: ``CANCEL_AFTER_SHIPMENT`` for a cancellation of a shipped order, else
   ``REGRESSION``.

Ranks put cancellation just below shipment (so "cancellation from any state before shipment" and
"on hold/pending → cancelled" are ordinary forward moves) and the return branch above settlement (so
"delivered → return requested" is forward, and a return may still follow completion or settlement).

**Stock.** Besides the state, the snapshot carries the :class:`StockStage` the order's units have reached.
The stage only moves forward (NONE < SOFT < HARD < CONSUMED < QUARANTINED; RELEASED is final) and takes
evidence from every update, including ignored ones, except cancellations that are not applied: a stale
RETURNED arriving after REFUNDED still brings the returned units into quarantine. The movements needed to
reach the new stage are in :attr:`Transition.stock_movements`, in order; they are empty for a repeated update,
which makes redelivery harmless.

**Parking** is not a lifecycle state. An update that cannot be mapped (unknown SKU, unmappable status) never
reaches :func:`decide`; the adapter flags the order as parked with the reason and dead-letters the event. The
order keeps its last good snapshot, so replaying the event after a fix goes through the same rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum, StrEnum
from itertools import product
from types import MappingProxyType
from typing import Final

from services.contracts.channels import OrderState
from services.orders.domain.stock import MovementKind

__all__ = [
    "ALLOWED_EDGES",
    "BACKORDER_STATES",
    "PRE_SHIPMENT_STATES",
    "RANKS",
    "STAGE_EVIDENCE",
    "TERMINAL_STATES",
    "OrderState",
    "OrderStatusSnapshot",
    "Reason",
    "StatusUpdate",
    "StockStage",
    "Transition",
    "decide",
    "fold",
    "stage_movements",
]


_S = OrderState

#: Rank per state. Gaps leave room for new states without renumbering stored data.
RANKS: Final[Mapping[OrderState, int]] = MappingProxyType(
    {
        _S.PENDING_PAYMENT: 10,
        _S.AWAITING_FULFILMENT: 20,
        _S.READY_TO_SHIP: 30,
        _S.CANCEL_REQUESTED: 35,
        _S.CANCELLED: 39,  # below SHIPPED: a cancellation can never overtake a shipment
        _S.SHIPPED: 40,
        _S.DELIVERED: 50,
        _S.COMPLETED: 60,
        _S.SETTLED: 70,  # set by the ledger when the marketplace pays out
        _S.RETURN_REQUESTED: 80,  # above SETTLED: late returns are still accepted
        _S.RETURNED: 90,
        _S.REFUNDED: 100,
    }
)

#: States nothing leaves. SETTLED is not terminal: a return may still follow a payout.
TERMINAL_STATES: Final[frozenset[OrderState]] = frozenset({_S.CANCELLED, _S.REFUNDED})

#: States in which an order whose reservation failed waits for stock (a backorder): paid and not cancelled,
#: returned or refunded. Units produced or restocked later are reserved for it, oldest order first. An unpaid order
#: is not among them: its payment retries the reservation, and a hold for it would block paid orders.
BACKORDER_STATES: Final[frozenset[OrderState]] = frozenset(
    {_S.AWAITING_FULFILMENT, _S.READY_TO_SHIP, _S.SHIPPED, _S.DELIVERED, _S.COMPLETED, _S.SETTLED}
)

#: States from which a cancellation is accepted.
PRE_SHIPMENT_STATES: Final[frozenset[OrderState]] = frozenset(
    s for s in OrderState if RANKS[s] < RANKS[_S.SHIPPED] and s is not _S.CANCELLED
)

_CANCEL_REJECTED_TARGETS = (_S.PENDING_PAYMENT, _S.AWAITING_FULFILMENT, _S.READY_TO_SHIP)
_RETURN_REJECTED_TARGETS = (_S.SHIPPED, _S.DELIVERED, _S.COMPLETED, _S.SETTLED)

#: Edges accepted although they lower the rank (only with a strictly newer update time).
#: Edges that raise the rank (delivered → return requested, pending/on hold → cancelled, ...) need no entry.
ALLOWED_EDGES: Final[frozenset[tuple[OrderState, OrderState]]] = frozenset(
    [(_S.CANCEL_REQUESTED, s) for s in _CANCEL_REJECTED_TARGETS]
    + [(_S.RETURN_REQUESTED, s) for s in _RETURN_REJECTED_TARGETS]
)


class StockStage(IntEnum):
    """How far the order's units have gone; only moves forward, RELEASED is final.

    The value order is the stage order for NONE..QUARANTINED. If the adapter finds the reservation already
    EXPIRED when asked to HARDEN, it makes a new HARD reservation instead.
    """

    NONE = 0  # nothing reserved yet
    SOFT = 1  # soft reservation (unpaid)
    HARD = 2  # allocated (paid)
    CONSUMED = 3  # shipped
    QUARANTINED = 4  # returned units in quarantine
    RELEASED = 5  # cancelled before shipment: reservation released


#: The stage each state is evidence for. CANCEL_REQUESTED says only "something is held" (it may be unpaid);
#: REFUNDED says the goods went out, not that they came back (refunds can be issued without a return).
STAGE_EVIDENCE: Final[Mapping[OrderState, StockStage]] = MappingProxyType(
    {
        _S.PENDING_PAYMENT: StockStage.SOFT,
        _S.AWAITING_FULFILMENT: StockStage.HARD,
        _S.READY_TO_SHIP: StockStage.HARD,
        _S.CANCEL_REQUESTED: StockStage.SOFT,
        _S.CANCELLED: StockStage.RELEASED,
        _S.SHIPPED: StockStage.CONSUMED,
        _S.DELIVERED: StockStage.CONSUMED,
        _S.COMPLETED: StockStage.CONSUMED,
        _S.SETTLED: StockStage.CONSUMED,
        _S.RETURN_REQUESTED: StockStage.CONSUMED,
        _S.RETURNED: StockStage.QUARANTINED,
        _S.REFUNDED: StockStage.CONSUMED,
    }
)


def _build_stage_movements() -> dict[tuple[StockStage, StockStage], tuple[MovementKind, ...]]:
    table: dict[tuple[StockStage, StockStage], tuple[MovementKind, ...]] = {}
    for frm, to in product(StockStage, StockStage):
        steps: list[MovementKind] = []
        if to is StockStage.RELEASED:
            if frm is StockStage.SOFT:
                steps.append(MovementKind.RELEASE_SOFT)
            elif frm is StockStage.HARD:
                steps.append(MovementKind.RELEASE_HARD)
        elif frm is not StockStage.RELEASED and to > frm:
            stage = frm
            if stage is StockStage.NONE:
                if to is StockStage.SOFT:
                    steps.append(MovementKind.SOFT_RESERVE)
                    stage = StockStage.SOFT
                else:
                    steps.append(MovementKind.HARD_RESERVE)
                    stage = StockStage.HARD
            if stage is StockStage.SOFT and to >= StockStage.HARD:
                steps.append(MovementKind.HARDEN)
                stage = StockStage.HARD
            if stage is StockStage.HARD and to >= StockStage.CONSUMED:
                steps.append(MovementKind.CONSUME)
                stage = StockStage.CONSUMED
            if stage is StockStage.CONSUMED and to is StockStage.QUARANTINED:
                steps.append(MovementKind.RETURN_TO_QUARANTINE)
        table[(frm, to)] = tuple(steps)
    return table


_STAGE_MOVEMENTS: Final = MappingProxyType(_build_stage_movements())


def stage_movements(frm: StockStage, to: StockStage) -> tuple[MovementKind, ...]:
    """Movements, in order, that take an order's units from stage ``frm`` to stage ``to``.

    Example: NONE → CONSUMED is (HARD_RESERVE, CONSUME); SOFT → RELEASED is (RELEASE_SOFT,); any backward
    pair is ().
    """
    return _STAGE_MOVEMENTS[(frm, to)]


def _merge_stage(current: StockStage, evidence: StockStage) -> StockStage:
    if current is StockStage.RELEASED:
        return current
    if evidence is StockStage.RELEASED:
        # Shipped units cannot be released; this only happens for inconsistent marketplace data.
        return evidence if current <= StockStage.HARD else current
    return max(current, evidence)


@dataclass(frozen=True, slots=True)
class StatusUpdate:
    """One marketplace status change, already mapped to a canonical state.

    ``update_time`` is the marketplace's own time of the change (timezone-aware), not the arrival time.
    """

    state: OrderState
    update_time: datetime

    def __post_init__(self) -> None:
        if self.update_time.utcoffset() is None:
            raise ValueError(f"update_time must be timezone-aware, got {self.update_time!r}")


@dataclass(frozen=True, slots=True)
class OrderStatusSnapshot:
    """What the adapter persists per order: state, last marketplace update time and stock stage."""

    state: OrderState
    update_time: datetime
    stock_stage: StockStage

    def __post_init__(self) -> None:
        if self.update_time.utcoffset() is None:
            raise ValueError(f"update_time must be timezone-aware, got {self.update_time!r}")


class Reason(StrEnum):
    """Why an update was applied or ignored."""

    NEW_ORDER = "new_order"
    FORWARD = "forward"
    ALLOWED_EDGE = "allowed_edge"
    DUPLICATE = "duplicate"
    STALE = "stale"
    TERMINAL = "terminal"
    CANCEL_AFTER_SHIPMENT = "cancel_after_shipment"
    REGRESSION = "regression"


_APPLYING: Final = frozenset({Reason.NEW_ORDER, Reason.FORWARD, Reason.ALLOWED_EDGE})


@dataclass(frozen=True, slots=True)
class Transition:
    """Result of :func:`decide`.

    Attributes:
        applied: the order's state changed to ``incoming``.
        reason: why it was applied or ignored.
        from_state: state before (``None`` for a new order).
        to_state: state after (equals ``from_state`` when ignored).
        incoming: the state the update asked for.
        stock_movements: movements to perform, in order, for the order's units (may be non-empty even when
            ``applied`` is false: a stale update can still carry stock evidence).
        snapshot: the snapshot to persist (may differ from the input even when ignored: newer update time on a
            duplicate, or an advanced stock stage).
        changed: ``snapshot`` differs from the input snapshot (always true for a new order); when false the
            adapter writes nothing.
    """

    applied: bool
    reason: Reason
    from_state: OrderState | None
    to_state: OrderState
    incoming: OrderState
    stock_movements: tuple[MovementKind, ...]
    snapshot: OrderStatusSnapshot
    changed: bool


def _classify(current: OrderStatusSnapshot, incoming: OrderState, update_time: datetime) -> Reason:
    if update_time < current.update_time:
        return Reason.STALE
    if incoming is current.state:
        return Reason.DUPLICATE
    if current.state in TERMINAL_STATES:
        return Reason.TERMINAL
    if RANKS[incoming] > RANKS[current.state]:
        return Reason.FORWARD
    if (current.state, incoming) in ALLOWED_EDGES and update_time > current.update_time:
        return Reason.ALLOWED_EDGE
    if incoming in (_S.CANCELLED, _S.CANCEL_REQUESTED) and current.state not in PRE_SHIPMENT_STATES:
        return Reason.CANCEL_AFTER_SHIPMENT
    return Reason.REGRESSION


def _step(
    current: OrderStatusSnapshot | None, incoming: OrderState, update_time: datetime
) -> tuple[Reason, OrderStatusSnapshot, StockStage]:
    """Reason, snapshot after and stock stage before (the snapshot is ``current`` itself when nothing changed)."""
    if current is None:
        reason = Reason.NEW_ORDER
        before_stage = StockStage.NONE
        state = incoming
    else:
        reason = _classify(current, incoming, update_time)
        before_stage = current.stock_stage
        if reason in _APPLYING:
            state = incoming
        else:
            state = current.state
            if reason is not Reason.DUPLICATE:
                update_time = current.update_time

    evidence = STAGE_EVIDENCE[incoming]
    if evidence is StockStage.RELEASED and reason not in _APPLYING:
        stage = before_stage  # an ignored cancellation releases nothing
    else:
        stage = _merge_stage(before_stage, evidence)

    if current is not None and (state, update_time, stage) == (
        current.state,
        current.update_time,
        current.stock_stage,
    ):
        return reason, current, before_stage
    return reason, OrderStatusSnapshot(state, update_time, stage), before_stage


def fold(
    current: OrderStatusSnapshot | None, incoming: OrderState, update_time: datetime
) -> tuple[Reason, OrderStatusSnapshot]:
    """:func:`decide` without the :class:`Transition`: the reason and the snapshot to persist.

    ``reason in {NEW_ORDER, FORWARD, ALLOWED_EDGE}`` is ``Transition.applied``; the snapshot's state is
    ``Transition.to_state``. This is the per-event path of the orders handler.

    Raises:
        ValueError: ``update_time`` is not timezone-aware (as :class:`StatusUpdate` does).
    """
    if update_time.utcoffset() is None:
        raise ValueError(f"update_time must be timezone-aware, got {update_time!r}")
    reason, snapshot, _ = _step(current, incoming, update_time)
    return reason, snapshot


def decide(current: OrderStatusSnapshot | None, incoming: StatusUpdate) -> Transition:
    """Fold one status update into an order's snapshot (see the module docstring for the rules).

    Args:
        current: the persisted snapshot, or ``None`` if the order has not been seen.
        incoming: the mapped update.

    Returns:
        A :class:`Transition`; persist ``transition.snapshot`` and perform ``transition.stock_movements``.
    """
    reason, snapshot, before_stage = _step(current, incoming.state, incoming.update_time)
    return Transition(
        applied=reason in _APPLYING,
        reason=reason,
        from_state=current.state if current is not None else None,
        to_state=snapshot.state,
        incoming=incoming.state,
        stock_movements=_STAGE_MOVEMENTS[(before_stage, snapshot.stock_stage)],
        snapshot=snapshot,
        changed=snapshot is not current,
    )
