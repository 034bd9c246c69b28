"""The pure plan of one batch of order changes: state machine, allocation, stock moves and events, in memory.

:func:`plan_changes` takes what the use case loaded (orders locked with their lines and reservations, resolved
listings, the stock plan started from the locked stock rows) and the batch's changes, and decides everything:

1. fold the changes of each order through the state machine (:func:`fold`) in arrival order; a status that
   cannot be mapped or a listing that is unknown parks the order and refuses the event;
2. expire the soft holds past their window (claimed while loading) so their units are free at once;
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

__all__ = ["Change", "FulfilmentPlan", "Refusal", "Settled", "StatusChange", "needed_skus", "plan_changes"]

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


def needed_skus(changes: Sequence[Change], listings: Listings, orders: Mapping[str, OrderRow]) -> set[str]:
    """Every SKU the plan may move: the orders' lines and reservations, and the listings their events name."""
    skus = {ln.sku for o in orders.values() for ln in o.lines}
    skus |= {a.sku for o in orders.values() if o.reservation for a in o.reservation.allocations}
    for c in changes:
        if isinstance(c, StatusChange) and not (c.order_key in orders and orders[c.order_key].lines):
            d = c.data
            hits = (
                listings.get((d.channel, d.shop_id, ln.channel_product_id, ln.channel_sku_id or "")) for ln in d.lines
            )
            skus |= {hit[0] for hit in hits if hit is not None}
    return skus


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
    """Plan the batch (see the module docstring); ``changes`` are (index in the batch, change) in arrival order.

    ``orders`` are the loaded orders (new ones are added to it); ``stock`` starts from the locked stock rows.
    """
    refusals: list[Refusal] = []
    touched: dict[str, _Touched] = {}
    history = History()
    out = Outbound(topics)
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
    for order_key, res in stock.expire_due():
        out.reservation_ended(order_key, res, "expired", stock.batch_info)
    ordered = sorted(touched.values(), key=lambda w: w.first_index)
    _reserve_new(stock, ordered, out, windows)
    for work in ordered:
        _advance_existing(stock, work, out)
        out.lifecycle(work.order, work.applied, stock.batch_info)
    out.availability(stock.availability())
    # The holds expired by this batch are written with the orders' changed reservations.
    reservations = [*((w.order.order_key, w.order.reservation) for w in ordered if w.order.reservation), *stock.expired]
    return FulfilmentPlan([w.order for w in ordered], history, reservations, stock, out.messages, refusals)


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


def _reserve_new(
    stock: StockPlan, ordered: list[_Touched], out: Outbound, windows: Mapping[Channel, timedelta] | None
) -> None:
    """Allocate, in arrival order, every order that needs units held and holds none."""
    needing = [
        w
        for w in ordered
        if w.order.snapshot is not None
        and not w.order.historical
        and w.order.reservation is None
        and StockStage.SOFT <= w.order.snapshot.stock_stage <= StockStage.QUARANTINED
    ]
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
    order, res = work.order, work.order.reservation
    if res is None or res.is_new or order.snapshot is None:
        return
    have = StockStage.QUARANTINED if work.stage_before is StockStage.QUARANTINED else _RES_STAGE[res.state]
    target = order.snapshot.stock_stage
    if target == have:
        return
    stock.move(order, have, target, work.last_event_id, fresh=False)
    if target is StockStage.RELEASED:
        out.reservation_ended(order.order_key, res, "released", stock.batch_info, order)
    elif have is StockStage.SOFT and target is StockStage.HARD:
        out.reservation_confirmed(order, stock.batch_info)
