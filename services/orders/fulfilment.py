"""The orders use case: fold a batch of marketplace status events into orders, reservations and stock.

One call handles one Kafka batch inside the consumer's transaction:

1. parse and map each event (unknown listing or unmappable status: the order is parked and the event rejected
   to the dead-letter topic);
2. fold the events of each order through the state machine (:func:`decide`) in arrival order;
3. lock, in the global order of :mod:`services.orders.adapters.locks`, the stock of every SKU involved (and of
   soft reservations past their window, which are expired first so their units are free at once);
4. allocate new reservations for the whole batch at once (all-or-nothing per order) and move existing
   reservations to the stage the orders reached;
5. write everything set-based and put the resulting events in the outbox.

Rejection and parking reasons are stored (dead letters, ``orders.parked_reason``) and sent (the DLQ header): they
name ids, field paths and codes, never a value that could be a buyer's (:func:`infra.errors.error_text`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncConnection

from infra.db.rowsets import Writes
from infra.errors import describe_error, error_text
from infra.messaging.consumer import InboundEvent, Rejection
from services.contracts.marketplace import ORDER_STATUS_CHANGED, OrderStatusChanged
from services.orders.adapters.order_repo import (
    BatchInfoCache,
    History,
    Line,
    OrderRow,
    Reservation,
    load_orders,
    plan_history,
    plan_orders,
    plan_reservations,
    resolve_listings,
)
from services.orders.domain.channels import Channel, UnmappableStatus, map_status, soft_reservation_expiry
from services.orders.domain.lifecycle import OrderState, Reason, StockStage, fold
from services.orders.outbound import OrdersTopics, Outbound
from services.orders.stock_moves import StockWork

_RES_STAGE = {"soft": StockStage.SOFT, "hard": StockStage.HARD, "consumed": StockStage.CONSUMED}
# Enum values by member: ``.value`` is a Python-level property, these are dict lookups.
_STATE_VALUE: dict[OrderState, str] = {s: s.value for s in OrderState}
_REASON_VALUE: dict[Reason, str] = {r: r.value for r in Reason}
_APPLYING = frozenset({Reason.NEW_ORDER, Reason.FORWARD, Reason.ALLOWED_EDGE})
# A status code, event type or listing id as marketplaces send them (``400``, ``READY_TO_SHIP``, ``paid``,
# ``SKU-12.A``) is quoted in a reason; anything else there (a name, a phone number) is described by its length.
_CODE = re.compile(r"[0-9]{1,4}|[A-Z][A-Z0-9_]{0,39}|[a-z][a-z0-9_.]{0,79}")
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def _quoted(value: object) -> str:
    """A code quoted as sent when it looks like one, else its length."""
    text = str(value)
    return repr(text) if _CODE.fullmatch(text) else f"(not a code: {len(text)} characters)"


def _id(value: str) -> str:
    """A marketplace id as sent when it looks like one (they are what an operator maps), else its length."""
    return value if _ID.fullmatch(value) else f"(not an id: {len(value)} characters)"


class _Touched:
    """An order changed by this batch: where its stock stood before, and the events that moved it."""

    __slots__ = ("applied", "first_index", "last_event", "order", "stage_before")

    def __init__(self, order: OrderRow, first_index: int, last_event: InboundEvent, stage_before: StockStage) -> None:
        self.order = order
        self.first_index = first_index
        self.last_event = last_event
        self.stage_before = stage_before
        self.applied: list[tuple[InboundEvent, OrderStatusChanged, str]] = []


class OrderEventProcessor:
    """Batch handler of ``marketplace.order-events`` (see the module docstring)."""

    def __init__(self, windows: dict[Channel, timedelta] | None = None, topics: OrdersTopics | None = None) -> None:
        """``windows``: unpaid windows per channel (default: the domain's); ``topics``: where its events go
        (default: the base names, no prefix)."""
        self._windows = windows
        self._topics = topics or OrdersTopics()
        self._batches = BatchInfoCache()

    async def __call__(self, conn: AsyncConnection, events: Sequence[InboundEvent]) -> list[Rejection]:
        """Apply ``events`` (new to this consumer) and return the ones rejected."""
        rejections: list[Rejection] = []
        parsed: list[tuple[InboundEvent, OrderStatusChanged]] = []
        for event in events:
            if event.envelope.type != ORDER_STATUS_CHANGED:
                reason = f"unexpected event type {_quoted(event.envelope.type)}"
                rejections.append(Rejection(event, reason, {"detail": reason}))
                continue
            try:
                parsed.append((event, OrderStatusChanged.model_validate(event.envelope.data)))
            except ValidationError as exc:
                reason = error_text(exc, context=f"invalid {ORDER_STATUS_CHANGED}")
                rejections.append(Rejection(event, reason, describe_error(exc)))
        if not parsed:
            return rejections
        listings = await resolve_listings(
            conn,
            {
                (d.channel, d.shop_id, ln.channel_product_id, ln.channel_sku_id or "")
                for _, d in parsed
                for ln in d.lines
            },
        )
        orders = await load_orders(conn, {d.order_key for _, d in parsed})
        touched: dict[str, _Touched] = {}
        history = History()
        out = Outbound(self._topics)
        for index, (event, data) in enumerate(parsed):
            order = orders.get(data.order_key)
            if order is None:
                order = orders[data.order_key] = OrderRow(
                    data.order_key,
                    data.channel,
                    data.shop_id,
                    data.order_id,
                    None,
                    is_new=True,
                    historical=data.historical,
                )
            work = touched.get(data.order_key)
            if work is None:
                stage = order.snapshot.stock_stage if order.snapshot else StockStage.NONE
                work = touched[data.order_key] = _Touched(order, index, event, stage)
            work.last_event = event
            out.cause(data.order_key, event)
            problem = self._fold(order, event, data, listings, history, work)
            if problem is not None:
                order.parked_reason = problem
                # Parking reasons name only a channel, shop and listing ids, or a status code (quoted only when
                # shaped like one): loggable.
                rejections.append(Rejection(event, problem, {"detail": problem}))
        stock = StockWork(self._batches)
        await stock.prepare(conn, [w.order for w in touched.values()], datetime.now(UTC))
        for order_key, res in stock.expired:
            out.reservation_ended(order_key, res, "expired", stock.batch_info)
        ordered = sorted(touched.values(), key=lambda w: w.first_index)
        self._reserve_new(stock, ordered, out)
        for work in ordered:
            self._advance_existing(stock, work, out)
            out.lifecycle(work.order, work.applied, stock.batch_info)
        writes = Writes()  # every write below goes to the database as one statement
        plan_orders(writes, [w.order for w in ordered])
        plan_history(writes, history)
        stock.plan_writes(writes, expire=False)
        # The holds expired by this batch are written with the orders' changed reservations.
        plan_reservations(
            writes,
            [*((w.order.order_key, w.order.reservation) for w in ordered if w.order.reservation), *stock.expired],
        )
        await writes.execute(conn)
        out.availability(await stock.availability(conn))
        await out.flush(conn)
        return rejections

    def _fold(
        self,
        order: OrderRow,
        event: InboundEvent,
        data: OrderStatusChanged,
        listings: dict[tuple[str, str, str, str], tuple[str, str, str]],
        history: History,
        work: _Touched,
    ) -> str | None:
        """Apply one event to its order in memory; returns a parking reason if it cannot be applied."""
        try:
            state = map_status(data.channel, data.raw_status)
        except UnmappableStatus:
            return f"unmappable order status {_quoted(data.raw_status)} for channel {str(data.channel)!r}"
        if data.lines and not order.lines:
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
        before = order.snapshot
        reason, snapshot = fold(before, state, data.update_time)
        to_state = _STATE_VALUE[snapshot.state]
        history.add(
            data.order_key,
            _STATE_VALUE[before.state] if before else None,
            to_state,
            _STATE_VALUE[state],
            data.raw_status,
            data.update_time,
            _REASON_VALUE[reason],
            event.envelope.event_id,
        )
        order.snapshot = snapshot
        order.parked_reason = None
        if reason in _APPLYING:
            work.applied.append((event, data, to_state))
        return None

    def _reserve_new(self, stock: StockWork, ordered: list[_Touched], out: Outbound) -> None:
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
                out.reservation_failed(order, outcome)
                continue
            expires = None
            if target is StockStage.SOFT:
                expires = soft_reservation_expiry(Channel(order.channel), order.snapshot.update_time, self._windows)
            order.reservation = Reservation(
                stock.new_reservation_id(),
                "soft" if target is StockStage.SOFT else "hard",
                expires,
                outcome,
                is_new=True,
            )
            stock.move(order, StockStage.NONE, target, work.last_event, fresh=True)
            out.reservation_confirmed(order, stock.batch_info)

    def _advance_existing(self, stock: StockWork, work: _Touched, out: Outbound) -> None:
        """Move an existing reservation to the stage its order reached (harden, consume, release, return)."""
        order, res = work.order, work.order.reservation
        if res is None or res.is_new or order.snapshot is None:
            return
        have = StockStage.QUARANTINED if work.stage_before is StockStage.QUARANTINED else _RES_STAGE[res.state]
        target = order.snapshot.stock_stage
        if target == have:
            return
        stock.move(order, have, target, work.last_event, fresh=False)
        if target is StockStage.RELEASED:
            out.reservation_ended(order.order_key, res, "released", stock.batch_info, order)
        elif have is StockStage.SOFT and target is StockStage.HARD:
            out.reservation_confirmed(order, stock.batch_info)
