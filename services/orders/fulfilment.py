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
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncConnection

from infra.messaging.consumer import InboundEvent, Rejection
from services.contracts.marketplace import ORDER_STATUS_CHANGED, OrderStatusChanged
from services.orders.adapters.order_repo import (
    BatchInfoCache,
    HistoryRow,
    Line,
    OrderRow,
    Reservation,
    append_history,
    load_orders,
    resolve_listings,
    save_orders,
    save_reservations,
)
from services.orders.domain.channels import Channel, UnmappableStatus, map_status, soft_reservation_expiry
from services.orders.domain.lifecycle import StatusUpdate, StockStage, decide
from services.orders.outbound import Outbound
from services.orders.stock_moves import StockWork

_RES_STAGE = {"soft": StockStage.SOFT, "hard": StockStage.HARD, "consumed": StockStage.CONSUMED}


@dataclass
class _Touched:
    """An order changed by this batch: where its stock stood before, and the events that moved it."""

    order: OrderRow
    first_index: int
    last_event: InboundEvent
    stage_before: StockStage
    applied: list[tuple[InboundEvent, OrderStatusChanged, str]] = field(default_factory=list)


class OrderEventProcessor:
    """Batch handler of ``marketplace.order-events`` (see the module docstring)."""

    def __init__(self, windows: dict[Channel, timedelta] | None = None) -> None:
        self._windows = windows
        self._batches = BatchInfoCache()

    async def __call__(self, conn: AsyncConnection, events: Sequence[InboundEvent]) -> list[Rejection]:
        """Apply ``events`` (new to this consumer) and return the ones rejected."""
        rejections: list[Rejection] = []
        parsed: list[tuple[InboundEvent, OrderStatusChanged]] = []
        for event in events:
            if event.envelope.type != ORDER_STATUS_CHANGED:
                rejections.append(Rejection(event, f"unexpected event type {event.envelope.type}"))
                continue
            try:
                parsed.append((event, OrderStatusChanged.model_validate(event.envelope.data)))
            except ValidationError as exc:
                rejections.append(Rejection(event, f"invalid {ORDER_STATUS_CHANGED}: {exc}"))
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
        history: list[HistoryRow] = []
        out = Outbound()
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
            work = touched.setdefault(
                data.order_key,
                _Touched(order, index, event, order.snapshot.stock_stage if order.snapshot else StockStage.NONE),
            )
            work.last_event = event
            out.cause(data.order_key, event)
            problem = self._fold(order, event, data, listings, history, work)
            if problem is not None:
                order.parked_reason = problem
                rejections.append(Rejection(event, problem))
        stock = StockWork(self._batches)
        await stock.prepare(conn, [w.order for w in touched.values()], datetime.now(UTC))
        for order_key, res in stock.expired:
            out.reservation_ended(order_key, res, "expired", stock.batch_info)
        ordered = sorted(touched.values(), key=lambda w: w.first_index)
        self._reserve_new(stock, ordered, out)
        for work in ordered:
            self._advance_existing(stock, work, out)
            out.lifecycle(work.order, work.applied, stock.batch_info)
        await save_orders(conn, [w.order for w in ordered])
        await append_history(conn, history)
        await stock.flush(conn)
        await save_reservations(
            conn, [(w.order.order_key, w.order.reservation) for w in ordered if w.order.reservation]
        )
        out.availability(await stock.availability(conn))
        await out.flush(conn)
        return rejections

    def _fold(
        self,
        order: OrderRow,
        event: InboundEvent,
        data: OrderStatusChanged,
        listings: dict[tuple[str, str, str, str], tuple[str, str, str]],
        history: list[HistoryRow],
        work: _Touched,
    ) -> str | None:
        """Apply one event to its order in memory; returns a parking reason if it cannot be applied."""
        try:
            state = map_status(data.channel, data.raw_status)
        except UnmappableStatus as exc:
            return str(exc)
        if data.lines and not order.lines:
            lines: list[Line] = []
            for n, ln in enumerate(data.lines, start=1):
                hit = listings.get((data.channel, data.shop_id, ln.channel_product_id, ln.channel_sku_id or ""))
                if hit is None:
                    return (
                        f"unknown listing {data.channel}/{data.shop_id}/{ln.channel_product_id}"
                        f"{'/' + ln.channel_sku_id if ln.channel_sku_id else ''} on line {n}"
                    )
                lines.append(Line(n, hit[0], hit[1], ln.quantity, ln.unit_price))
                order.lapas_id = order.lapas_id or hit[2]
            order.lines, order.lines_new = lines, True
            order.gross_amount = data.gross_amount or sum(x.quantity * x.unit_price for x in lines)
        before = order.snapshot
        transition = decide(before, StatusUpdate(state, data.update_time))
        history.append(
            HistoryRow(
                data.order_key,
                before.state.value if before else None,
                transition.to_state.value,
                state.value,
                data.raw_status,
                data.update_time,
                transition.reason.value,
                event.envelope.event_id,
            )
        )
        order.snapshot = transition.snapshot
        order.parked_reason = None
        if transition.applied:
            work.applied.append((event, data, transition.to_state.value))
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
