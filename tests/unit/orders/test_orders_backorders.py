"""Filling backorders on in-memory inputs (no database): oldest order first, whole orders only, never more than the
stock has free, each filled order at the stage its state calls for with an ``order_allocated`` event."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from services.contracts.orders import ORDER_ALLOCATED, UNITS_RESTOCKED
from services.orders.backorders import fill_waiting
from services.orders.domain.lifecycle import OrderState, OrderStatusSnapshot, StockStage
from services.orders.domain.records import BatchFacts, Line, OrderRow
from services.orders.domain.stock import MovementKind, StockCounters, movement_delta
from services.orders.inspection import Inspected, Verdict, plan_inspection
from services.orders.outbound import OrdersTopics, Outbound
from services.orders.stock_plan import StockInputs, StockPlan
from tests.contract_validation import validate_published

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
TOPICS = OrdersTopics()
INFO = {b: BatchFacts(b, "SKU-1", "W1", "L1", 9, 12_000, "sup", (("WBP-AB0001", 1),)) for b in ("B1", "B2")}


def stock(*batches: tuple[str, int, int]) -> StockInputs:
    """SKU-1 in workshop W1: (batch id, on hand, quarantined)."""
    rows = [(b, "SKU-1", "W1", "L1", date(2026, 3, i + 1), on, 0, 0, q) for i, (b, on, q) in enumerate(batches)]
    return StockInputs(rows, {"W1": "L1"}, INFO, [], list(range(200, 100, -1)))


def waiting(order: str, qty: int, state: OrderState = OrderState.COMPLETED, minutes: int = 0) -> OrderRow:
    """An order whose reservation failed: lines known, nothing held."""
    snapshot = OrderStatusSnapshot(state, T0 + timedelta(minutes=minutes), StockStage.NONE)
    row = OrderRow(f"tokopedia:shop:{order}", "tokopedia", "shop", order, snapshot, "L1", reservation_failed="short")
    row.lines = [Line(1, "SKU-1", "W1", qty, 50_000)]
    return row


def test_the_oldest_waiting_order_is_filled_first_and_a_younger_one_that_fits_too() -> None:
    plan, out = StockPlan(stock(("B1", 3, 0))), Outbound(TOPICS)
    old, big, young = waiting("old", 2), waiting("big", 5), waiting("young", 1, OrderState.AWAITING_FULFILMENT)
    filled = fill_waiting(plan, [old, big, young], out)
    assert [o.order_id for o in filled] == ["old", "young"]
    assert big.reservation is None and big.reservation_failed == "short", "an order not covered stays waiting"
    assert old.reservation is not None and old.reservation.state == "consumed" and old.reservation_failed is None
    assert old.snapshot is not None and old.snapshot.stock_stage is StockStage.CONSUMED
    assert young.reservation is not None and young.reservation.state == "hard"
    assert [(m.batch_id, m.kind, m.quantity) for m in plan.movements] == [
        ("B1", MovementKind.HARD_RESERVE, 2),
        ("B1", MovementKind.CONSUME, 2),
        ("B1", MovementKind.HARD_RESERVE, 1),
    ]
    events = [validate_published(m.payload) for m in out.messages]
    assert [e["type"] for e in events] == [ORDER_ALLOCATED, ORDER_ALLOCATED]
    first = events[0]["data"]
    assert first["state"] == "completed" and first["order_key"] == old.order_key
    assert first["allocations"] == [INFO["B1"].allocation(2, 50_000)]


def test_restocked_units_fill_a_waiting_order_in_the_inspection_plan() -> None:
    inputs = stock(("B1", 0, 2))
    lot = Inspected(1, "tokopedia:shop:back", "B1", 2, Verdict.RESTOCK)
    p = plan_inspection(lot, inputs, "", TOPICS, [waiting("w", 2)], at=T0)
    assert [o.order_id for o in p.filled] == ["w"]
    assert [(m.kind, m.quantity) for m in p.movements] == [
        (MovementKind.RESTOCK, 2),
        (MovementKind.HARD_RESERVE, 2),
        (MovementKind.CONSUME, 2),
    ]
    types = [validate_published(m.payload)["type"] for m in p.messages]
    assert types == [UNITS_RESTOCKED, ORDER_ALLOCATED, "karya.orders.stock_availability_changed.v1"]
    off = plan_inspection(replace(lot, verdict=Verdict.WRITE_OFF), inputs, "", TOPICS, [waiting("w2", 2)], at=T0)
    assert off.filled == [] and off.messages == []


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(0, 4), min_size=1, max_size=3),
    st.lists(st.tuples(st.integers(1, 5), st.sampled_from([OrderState.COMPLETED, OrderState.READY_TO_SHIP])),
             min_size=1, max_size=6),
)  # fmt: skip
def test_filling_never_takes_more_than_is_free_and_fills_whole_orders(
    free: list[int], orders: list[tuple[int, OrderState]]
) -> None:
    rows = [(f"B{i}", n, 0) for i, n in enumerate(free)]
    info = {f"B{i}": BatchFacts(f"B{i}", "SKU-1", "W1", "L1", 9, 1, "s", ()) for i in range(len(free))}
    inputs = stock(*rows)
    plan = StockPlan(StockInputs(inputs.rows, inputs.lapas_of_workshop, info, [], inputs.reservation_ids))
    queue = [waiting(f"o{i}", q, state, minutes=i) for i, (q, state) in enumerate(orders)]
    filled = fill_waiting(plan, queue, Outbound(TOPICS))
    totals = {f"B{i}": [n, 0, 0, 0] for i, n in enumerate(free)}
    for m in plan.movements:
        d = movement_delta(m.kind, m.quantity)
        for i, change in enumerate((d.on_hand, d.soft_reserved, d.allocated, d.quarantined)):
            totals[m.batch_id][i] += change
    for counters in totals.values():
        StockCounters(*counters)  # raises if anything was oversold
    for order in filled:
        assert order.reservation is not None
        assert sum(h.quantity for h in order.reservation.allocations) == order.lines[0].quantity
    # oldest first: an order is left waiting only if what was free after the older fills could not cover it
    left = sum(free)
    for order in queue:
        if order in filled:
            left -= order.lines[0].quantity
        else:
            assert order.lines[0].quantity > left
