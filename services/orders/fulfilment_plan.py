"""The pure plan of one batch of order changes: state machine, allocation, stock moves and events, in memory.

:func:`plan_changes` takes what the use case loaded (orders locked with their lines and reservations, resolved
listings, the stock plan started from the locked stock rows) and the batch's changes, and decides everything, in
two halves the use case can call apart (it loads stock between them, only for the orders whose stock moves):

1. :func:`fold_changes`: fold the changes of each order through the state machine (:func:`fold`) in arrival order;
   a status that cannot be mapped or a listing that is unknown parks the order and refuses the event;
2. :func:`plan_stock`: expire the soft holds past their window (claimed while loading) so their units are free at once;
3. allocate new reservations for the whole batch at once (all-or-nothing per order) and move existing
   reservations to the stage their orders reached;
4. build the events to publish.

Refusal and parking reasons are stored (dead letters, ``parked_reason``) and sent (the DLQ header): they name ids,
field paths and codes, never a value that could be a buyer's (:func:`infra.errors.error_text`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from uuid import UUID

from infra.messaging.envelope import Envelope
from infra.messaging.outbox import OutboundMessage
from services.contracts.marketplace import OrderStatusChanged
from services.orders.domain.channels import Channel, UnmappableStatus, soft_reservation_expiry
from services.orders.domain.lifecycle import APPLYING, OrderState, Reason, StockStage, fold
from services.orders.domain.records import History, Line, OrderRow, Reservation
from services.orders.outbound import Applied, OrdersTopics, Outbound
from services.orders.stock_plan import StockPlan

__all__ = [
    "Change",
    "Folded",
    "FulfilmentPlan",
    "Refusal",
    "Settled",
    "StatusChange",
    "fold_changes",
    "plan_changes",
    "plan_stock",
]

_RES_STAGE = {"soft": StockStage.SOFT, "hard": StockStage.HARD, "consumed": StockStage.CONSUMED}
# Enum values by member: ``.value`` is a Python-level property, these are dict lookups.
_STATE_VALUE: dict[OrderState, str] = {s: s.value for s in OrderState}
_REASON_VALUE: dict[Reason, str] = {r: r.value for r in Reason}
# A status code, event type or listing id as marketplaces send them (``400``, ``READY_TO_SHIP``, ``paid``,
# ``SKU-12.A``) is quoted in a reason; anything else there (a name, a phone number) is described by its length.
_CODE = re.compile(r"[0-9]{1,4}|[A-Z][A-Z0-9_]{0,39}|[a-z][a-z0-9_.]{0,79}")
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
Listings = Mapping[tuple[str, str, str, str], tuple[str, str, str]]
StatusMap = Callable[[Channel, str], OrderState]


def quoted(value: object) -> str:
    """A code quoted as sent when it looks like one, else its length."""
    text = str(value)
    return repr(text) if _CODE.fullmatch(text) else f"(not a code: {len(text)} characters)"


def _id(value: str) -> str:
    """A marketplace id as sent when it looks like one (they are what an operator maps), else its length."""
    return value if _ID.fullmatch(value) else f"(not an id: {len(value)} characters)"


@dataclass(frozen=True, slots=True)
class StatusChange:
    """A marketplace's ``order_status_changed`` event, validated."""

    envelope: Envelope
    data: OrderStatusChanged

    @property
    def order_key(self) -> str:
        """The order it is about."""
        return self.data.order_key


@dataclass(frozen=True, slots=True)
class Settled:
    """The ledger posted the marketplace's settlement of an order (its ``order_settled``)."""

    envelope: Envelope
    order_key: str
    sequence: int


Change = StatusChange | Settled


@dataclass(frozen=True, slots=True)
class Refusal:
    """Change ``index`` of the batch cannot be applied (bad content, unknown reference): dead-letter it.

    ``facts`` are value-free (codes, ids, field paths): they are logged.
    """

    index: int
    reason: str
    facts: Mapping[str, object] = field(default_factory=dict)


@dataclass
class FulfilmentPlan:
    """Everything one batch writes: orders, history, reservations, stock movements, events, refusals."""

    orders: list[OrderRow]
    history: History
    reservations: list[tuple[str, Reservation]]
    stock: StockPlan
    messages: list[OutboundMessage]
    refusals: list[Refusal]


class _Touched:
    """An order changed by this batch: where its stock stood before, and the changes that moved it."""

    __slots__ = ("applied", "first_index", "last_event_id", "order", "stage_before")

    def __init__(self, order: OrderRow, first_index: int, stage_before: StockStage) -> None:
        self.order = order
        self.first_index = first_index
        self.last_event_id: UUID | None = None
        self.stage_before = stage_before
        self.applied: list[Applied] = []


@dataclass
class Folded:
    """The batch folded through the state machine, before any stock moves (the first half of a plan).

    ``touched`` are the orders the batch changed, in order of their first change; ``out`` holds the events so far.
    What stock the second half needs follows from it (:meth:`stock_skus`), so the use case loads and locks only
    the stock rows of orders whose stock moves: a batch of settlements of consumed orders locks none.
    """

    touched: list[_Touched]
    history: History
    out: Outbound
    refusals: list[Refusal]

    def _moving(self) -> list[OrderRow]:
        return [w.order for w in self.touched if _needs_reservation(w) or _stage_move(w) is not None]

    def stock_skus(self) -> set[str]:
        """Every SKU the stock half may move: the lines and held units of the orders that reserve or move stock."""
        moving = self._moving()
        skus = {ln.sku for o in moving for ln in o.lines}
        return skus | {a.sku for o in moving if o.reservation for a in o.reservation.allocations}

    def workshops(self) -> set[str]:
        """The workshops of those orders' lines (the allocator needs their lapas)."""
        return {ln.workshop_id for o in self._moving() for ln in o.lines}

    def held_batches(self) -> set[str]:
        """The production batches the touched orders hold units of (their events carry the batches' facts)."""
        return {a.batch_id for w in self.touched if w.order.reservation for a in w.order.reservation.allocations}

    def new_reservations(self) -> int:
        """How many orders may get a new reservation."""
        return sum(1 for w in self.touched if _needs_reservation(w))


def fold_changes(
    changes: Sequence[tuple[int, Change]],
    listings: Listings,
    orders: dict[str, OrderRow],
    *,
    map_status: StatusMap,
    out: Outbound,
) -> Folded:
    """Fold ``changes`` (index in the batch, change; in arrival order) into ``orders`` (new ones are added)."""
    refusals: list[Refusal] = []
    touched: dict[str, _Touched] = {}
    history = History()
    for index, change in changes:
        order = orders.get(change.order_key)
        if isinstance(change, Settled):
            if order is None or order.snapshot is None:
                continue  # an order this service never saw (nothing to settle)
        elif order is None:
            d = change.data
            order = orders[d.order_key] = OrderRow(
                d.order_key, d.channel, d.shop_id, d.order_id, None, is_new=True, historical=d.historical
            )
        work = touched.get(change.order_key)
        if work is None:
            stage = order.snapshot.stock_stage if order.snapshot else StockStage.NONE
            work = touched[change.order_key] = _Touched(order, index, stage)
        work.last_event_id = change.envelope.event_id
        out.cause(change.order_key, change.envelope)
        problem = _fold(order, change, listings, history, work, map_status)
        if problem is not None:
            order.parked_reason = problem
            # Parking reasons name only a channel, shop and listing ids, or a status code (quoted only when
            # shaped like one): loggable.
            refusals.append(Refusal(index, problem, {"detail": problem}))
    ordered = sorted(touched.values(), key=lambda w: w.first_index)
    return Folded(ordered, history, out, refusals)


def plan_stock(
    folded: Folded, stock: StockPlan, *, windows: Mapping[Channel, timedelta] | None = None
) -> FulfilmentPlan:
    """The second half: expire due holds, reserve and move stock for the folded orders, build the events."""
    out, ordered = folded.out, folded.touched
    for order_key, res in stock.expire_due():
        out.reservation_ended(order_key, res, "expired", stock.batch_info)
    _reserve_new(stock, ordered, out, windows)
    for work in ordered:
        _advance_existing(stock, work, out)
        out.lifecycle(work.order, work.applied, stock.batch_info)
    out.availability(stock.availability())
    # The holds expired by this batch are written with the orders' changed reservations.
    reservations = [*((w.order.order_key, w.order.reservation) for w in ordered if w.order.reservation), *stock.expired]
    orders = [w.order for w in ordered]
    return FulfilmentPlan(orders, folded.history, reservations, stock, out.messages, folded.refusals)


def plan_changes(
    changes: Sequence[tuple[int, Change]],
    listings: Listings,
    orders: dict[str, OrderRow],
    stock: StockPlan,
    *,
    topics: OrdersTopics,
    map_status: StatusMap,
    windows: Mapping[Channel, timedelta] | None = None,
) -> FulfilmentPlan:
    """Plan the batch (see the module docstring): :func:`fold_changes`, then :func:`plan_stock`.

    ``orders`` are the loaded orders (new ones are added to it); ``stock`` starts from the locked stock rows.
    """
    folded = fold_changes(changes, listings, orders, map_status=map_status, out=Outbound(topics))
    return plan_stock(folded, stock, windows=windows)


def _fold(
    order: OrderRow, change: Change, listings: Listings, history: History, work: _Touched, map_status: StatusMap
) -> str | None:
    """Apply one change to its order in memory; returns a parking reason if it cannot be applied."""
    if isinstance(change, Settled):
        assert order.snapshot is not None
        # The ledger's fact carries no marketplace time: it follows what the marketplace said last.
        state, update_time, raw_status = OrderState.SETTLED, order.snapshot.update_time, f"ledger#{change.sequence}"
    else:
        data = change.data
        try:
            state = map_status(data.channel, data.raw_status)
        except UnmappableStatus:
            return f"unmappable order status {quoted(data.raw_status)} for channel {str(data.channel)!r}"
        if data.lines and not order.lines:
            problem = _take_lines(order, data, listings)
            if problem is not None:
                return problem
        update_time, raw_status = data.update_time, data.raw_status
    before = order.snapshot
    reason, snapshot = fold(before, state, update_time)
    to_state = _STATE_VALUE[snapshot.state]
    history.add(
        order.order_key,
        _STATE_VALUE[before.state] if before else None,
        to_state,
        _STATE_VALUE[state],
        raw_status,
        update_time,
        _REASON_VALUE[reason],
        change.envelope.event_id,
    )
    order.snapshot = snapshot
    order.parked_reason = None
    if reason in APPLYING:
        work.applied.append(Applied(change.envelope, raw_status, update_time, to_state))
    return None


def _take_lines(order: OrderRow, data: OrderStatusChanged, listings: Listings) -> str | None:
    """Give a new order the lines of ``data`` resolved to our SKUs; a parking reason if a listing is unknown."""
    lines: list[Line] = []
    for n, ln in enumerate(data.lines, start=1):
        hit = listings.get((data.channel, data.shop_id, ln.channel_product_id, ln.channel_sku_id or ""))
        if hit is None:
            sku = f"/{_id(ln.channel_sku_id)}" if ln.channel_sku_id else ""
            listing = f"{data.channel}/{_id(data.shop_id)}/{_id(ln.channel_product_id)}{sku}"
            return f"unknown listing {listing} on line {n}"
        lines.append(Line(n, hit[0], hit[1], ln.quantity, ln.unit_price))
        order.lapas_id = order.lapas_id or hit[2]
    order.lines, order.lines_new = lines, True
    order.gross_amount = data.gross_amount or sum(x.quantity * x.unit_price for x in lines)
    return None


def _needs_reservation(work: _Touched) -> bool:
    """The order needs units held and holds none."""
    order = work.order
    return (
        order.snapshot is not None
        and not order.historical
        and order.reservation is None
        and StockStage.SOFT <= order.snapshot.stock_stage <= StockStage.QUARANTINED
    )


def _stage_move(work: _Touched) -> tuple[StockStage, StockStage] | None:
    """(stage held, stage reached) when the order's existing reservation has to move, else None."""
    order, res = work.order, work.order.reservation
    if res is None or res.is_new or order.snapshot is None:
        return None
    have = StockStage.QUARANTINED if work.stage_before is StockStage.QUARANTINED else _RES_STAGE[res.state]
    target = order.snapshot.stock_stage
    return None if target == have else (have, target)


def _reserve_new(
    stock: StockPlan, ordered: list[_Touched], out: Outbound, windows: Mapping[Channel, timedelta] | None
) -> None:
    """Allocate, in arrival order, every order that needs units held and holds none."""
    needing = [w for w in ordered if _needs_reservation(w)]
    outcomes = stock.allocate([w.order for w in needing])
    for work in needing:
        order = work.order
        assert order.snapshot is not None
        target = order.snapshot.stock_stage
        outcome = outcomes[order.order_key]
        if isinstance(outcome, str):
            order.snapshot = replace(order.snapshot, stock_stage=StockStage.NONE)
            order.reservation_failed = outcome
            out.reservation_failed(order, outcome)
            continue
        expires = None
        if target is StockStage.SOFT:
            expires = soft_reservation_expiry(Channel(order.channel), order.snapshot.update_time, windows)
        waited, order.reservation_failed = order.reservation_failed is not None, None
        order.reservation = Reservation(
            stock.new_reservation_id(), "soft" if target is StockStage.SOFT else "hard", expires, outcome, is_new=True
        )
        stock.move(order, StockStage.NONE, target, work.last_event_id, fresh=True)
        out.reservation_confirmed(order, stock.batch_info)
        if waited and target is not StockStage.SOFT:
            out.order_allocated(order, stock.batch_info)  # a backorder filled on a later status: the ledger hears


def _advance_existing(stock: StockPlan, work: _Touched, out: Outbound) -> None:
    """Move an existing reservation to the stage its order reached (harden, consume, release, return)."""
    move = _stage_move(work)
    if move is None:
        return
    (have, target), order, res = move, work.order, work.order.reservation
    assert res is not None
    stock.move(order, have, target, work.last_event_id, fresh=False)
    if target is StockStage.RELEASED:
        out.reservation_ended(order.order_key, res, "released", stock.batch_info, order)
    elif have is StockStage.SOFT and target is StockStage.HARD:
        out.reservation_confirmed(order, stock.batch_info)
