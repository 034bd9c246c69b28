"""Canonical order lifecycle: states, ranks, and the pure rule that folds marketplace status updates.

Marketplaces deliver status changes late, twice, out of order, or not at all. :func:`fold` folds one
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
reach the new stage are :func:`stage_movements` (old stage, new stage), in order; they are empty for a repeated
update, which makes redelivery harmless.

**Parking** is not a lifecycle state. An update that cannot be mapped (unknown SKU, unmappable status) never
reaches :func:`fold`; the adapter flags the order as parked with the reason and dead-letters the event. The
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
    "APPLYING",
    "BACKORDER_STATES",
    "PRE_SHIPMENT_STATES",
    "RANKS",
    "STAGE_EVIDENCE",
    "TERMINAL_STATES",
    "OrderState",
    "OrderStatusSnapshot",
    "Reason",
    "StockStage",
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


#: The reasons that apply an update (the order's state becomes the update's).
APPLYING: Final = frozenset({Reason.NEW_ORDER, Reason.FORWARD, Reason.ALLOWED_EDGE})


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


def fold(
    current: OrderStatusSnapshot | None, incoming: OrderState, update_time: datetime
) -> tuple[Reason, OrderStatusSnapshot]:
    """Fold one status update (``incoming`` reported at ``update_time``) into an order's snapshot (``None``: not
    seen yet); returns why it was applied or ignored and the snapshot to persist — ``current`` itself when
    nothing changed, so that the caller writes nothing. The update is applied when the reason is in
    :data:`APPLYING`; :func:`stage_movements` of the two snapshots' stages are the stock movements it calls for.

    Raises:
        ValueError: ``update_time`` is not timezone-aware.
    """
    if update_time.utcoffset() is None:
        raise ValueError(f"update_time must be timezone-aware, got {update_time!r}")
    if current is None:
        reason = Reason.NEW_ORDER
        before_stage = StockStage.NONE
        state = incoming
    else:
        reason = _classify(current, incoming, update_time)
        before_stage = current.stock_stage
        if reason in APPLYING:
            state = incoming
        else:
            state = current.state
            if reason is not Reason.DUPLICATE:
                update_time = current.update_time

    evidence = STAGE_EVIDENCE[incoming]
    if evidence is StockStage.RELEASED and reason not in APPLYING:
        stage = before_stage  # an ignored cancellation releases nothing
    else:
        stage = _merge_stage(before_stage, evidence)

    if current is not None and (state, update_time, stage) == (
        current.state,
        current.update_time,
        current.stock_stage,
    ):
        return reason, current
    return reason, OrderStatusSnapshot(state, update_time, stage)
