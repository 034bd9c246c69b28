"""The orders plan steps on in-memory inputs, no database: what a batch of changes does to orders, stock and
events (fulfilment_plan.plan_changes), how envelopes become changes (read_changes), and the pure plans of the
sweeper and of inspection."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from infra.messaging.envelope import Envelope, make_envelope
from services.contracts.ledger import ENTRY_POSTED, ORDER_SETTLED
from services.contracts.marketplace import ORDER_STATUS_CHANGED, OrderLine, OrderStatusChanged
from services.orders.domain.channels import map_status
from services.orders.domain.lifecycle import OrderState, OrderStatusSnapshot, StockStage
from services.orders.domain.records import BatchFacts, Held, Line, OrderRow, Reservation
from services.orders.domain.stock import MovementKind, StockCounters, movement_delta
from services.orders.fulfilment import read_changes
from services.orders.fulfilment_plan import Change, FulfilmentPlan, Settled, StatusChange, plan_changes
from services.orders.inspection import Inspected, Verdict, plan_inspection
from services.orders.outbound import OrdersTopics
from services.orders.stock_plan import StockInputs, StockPlan
from services.orders.sweeper import plan_expiry
from tests.contract_validation import validate_published

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
TOPICS = OrdersTopics()
LISTINGS = {("tokopedia", "shop", "p-1", ""): ("SKU-1", "W1", "L1")}
INFO = {b: BatchFacts(b, "SKU-1", "W1", "L1", 5, 12_000, "sup", (("WBP-AB0001", 1),)) for b in ("B1", "B2")}


def stock(*batches: tuple[str, int, int, int], due: Sequence[tuple[str, Reservation]] = ()) -> StockInputs:
    """Stock of SKU-1 in workshop W1: (batch id, on hand, soft reserved, allocated), quarantine empty."""
    rows = [
        (b, "SKU-1", "W1", "L1", date(2026, 3, i + 1), on, soft, hard, 0)
        for i, (b, on, soft, hard) in enumerate(batches)
    ]
    return StockInputs(rows, {"W1": "L1"}, INFO, list(due), [103, 102, 101])


def status(order: str, raw: str, minutes: int, qty: int = 2, product: str = "p-1") -> StatusChange:
    data = OrderStatusChanged(
        order_key=f"tokopedia:shop:{order}",
        channel="tokopedia",
        shop_id="shop",
        order_id=order,
        raw_status=raw,
        update_time=T0 + timedelta(minutes=minutes),
        lines=[OrderLine(channel_product_id=product, quantity=qty, unit_price=50_000)],
    )
    return StatusChange(_envelope(ORDER_STATUS_CHANGED, data.order_key, data.model_dump(mode="json")), data)


def _envelope(type_name: str, subject: str, data: dict[str, Any]) -> Envelope:
    return make_envelope(type=type_name, source="test", subject=subject, data=data)


def settled(order: str, sequence: int = 7) -> Settled:
    key = f"tokopedia:shop:{order}"
    return Settled(_envelope(ORDER_SETTLED, key, {}), key, sequence)


def plan(changes: Sequence[Change], inputs: StockInputs, orders: dict[str, OrderRow] | None = None) -> FulfilmentPlan:
    return plan_changes(
        list(enumerate(changes)),
        LISTINGS,
        orders if orders is not None else {},
        StockPlan(inputs),
        topics=TOPICS,
        map_status=map_status,
    )


def kinds(p: FulfilmentPlan) -> list[str]:
    """Short type names of the plan's events, each validated against its committed JSON Schema."""
    return [str(validate_published(m.payload)["type"]).split(".")[2] for m in p.messages]


def completed_order(order: str, reservation: Reservation | None = None) -> OrderRow:
    snapshot = OrderStatusSnapshot(OrderState.COMPLETED, T0 + timedelta(minutes=30), StockStage.CONSUMED)
    row = OrderRow(f"tokopedia:shop:{order}", "tokopedia", "shop", order, snapshot, "L1")
    row.lines = [Line(1, "SKU-1", "W1", 2, 50_000)]
    row.reservation = reservation
    return row


def test_a_paid_order_is_allocated_all_or_nothing_oldest_batch_first() -> None:
    p = plan([status("o1", "220", 0, qty=3)], stock(("B1", 2, 0, 0), ("B2", 5, 0, 0)))
    (order,) = p.orders
    assert order.is_new and order.snapshot is not None and order.snapshot.state is OrderState.AWAITING_FULFILMENT
    assert order.reservation is not None and order.reservation.state == "hard"
    assert [(h.batch_id, h.quantity) for h in order.reservation.allocations] == [("B1", 2), ("B2", 1)]
    assert [(m.batch_id, m.kind, m.quantity) for m in p.stock.movements] == [
        ("B1", MovementKind.HARD_RESERVE, 2),
        ("B2", MovementKind.HARD_RESERVE, 1),
    ]
    assert p.stock.availability() == {"SKU-1": [("W1", 4)]}
    assert kinds(p) == ["reservation_confirmed", "stock_availability_changed"]
    assert p.refusals == [] and len(p.history) == 1


def test_an_order_without_enough_stock_keeps_why_and_holds_nothing() -> None:
    p = plan([status("o1", "220", 0, qty=9)], stock(("B1", 2, 0, 0)))
    (order,) = p.orders
    assert order.reservation is None and order.snapshot is not None
    assert order.snapshot.stock_stage is StockStage.NONE
    assert order.reservation_failed is not None and "SKU-1" in order.reservation_failed
    assert p.stock.movements == [] and kinds(p) == ["reservation_failed"]


def test_unknown_listings_and_statuses_park_the_order_and_refuse_the_event() -> None:
    p = plan([status("o1", "220", 0, product="nope"), status("o2", "999", 0)], stock(("B1", 5, 0, 0)))
    assert [(r.index, r.reason) for r in p.refusals] == [
        (0, "unknown listing tokopedia/shop/nope on line 1"),
        (1, "unmappable order status '999' for channel 'tokopedia'"),
    ]
    assert [o.parked_reason for o in p.orders] == [p.refusals[0].reason, p.refusals[1].reason]
    assert p.stock.movements == []


def test_a_soft_hold_is_hardened_then_consumed_within_one_batch() -> None:
    p = plan([status("o1", "100", 0), status("o1", "220", 1), status("o1", "500", 2)], stock(("B1", 5, 0, 0)))
    (order,) = p.orders
    assert order.reservation is not None and order.reservation.state == "consumed"
    assert [m.kind for m in p.stock.movements] == [MovementKind.HARD_RESERVE, MovementKind.CONSUME]
    assert kinds(p) == ["reservation_confirmed", "order_shipped", "stock_availability_changed"]


def test_a_cancellation_releases_an_existing_hold() -> None:
    held = Reservation(55, "soft", T0 + timedelta(days=1), [Held("B1", "SKU-1", "W1", 2)])
    order = OrderRow(
        "tokopedia:shop:o1",
        "tokopedia",
        "shop",
        "o1",
        OrderStatusSnapshot(OrderState.PENDING_PAYMENT, T0, StockStage.SOFT),
        "L1",
    )
    order.lines, order.reservation = [Line(1, "SKU-1", "W1", 2, 50_000)], held
    p = plan([status("o1", "0", 5)], stock(("B1", 5, 2, 0)), {order.order_key: order})
    assert held.state == "released" and held.changed
    assert [m.kind for m in p.stock.movements] == [MovementKind.RELEASE_SOFT]
    assert p.reservations == [(order.order_key, held)]
    assert kinds(p) == ["reservation_released", "order_cancelled", "stock_availability_changed"]


def test_due_soft_holds_are_expired_before_allocating() -> None:
    due = Reservation(9, "soft", T0, [Held("B1", "SKU-1", "W1", 4)])
    p = plan([status("o1", "220", 0, qty=3)], stock(("B1", 5, 4, 0), due=[("tokopedia:shop:old", due)]))
    assert due.state == "expired"
    assert [m.kind for m in p.stock.movements] == [MovementKind.EXPIRE, MovementKind.HARD_RESERVE]
    assert ("tokopedia:shop:old", due) in p.reservations
    assert kinds(p)[:2] == ["reservation_expired", "reservation_confirmed"]


def test_the_ledgers_settlement_settles_a_completed_order_once() -> None:
    order = completed_order("o1")
    p = plan([settled("o1"), settled("o1", 8)], stock(), {order.order_key: order})
    assert order.snapshot is not None and order.snapshot.state is OrderState.SETTLED
    assert order.snapshot.update_time == T0 + timedelta(minutes=30), "the marketplace's last time is kept"
    assert p.history.decision == ["forward", "duplicate"]
    assert p.history.raw_status == ["ledger#7", "ledger#8"]
    assert p.stock.movements == [] and p.refusals == []


def test_a_settlement_of_an_unknown_order_changes_nothing() -> None:
    p = plan([settled("ghost")], stock())
    assert p.orders == [] and len(p.history) == 0 and p.messages == []


def test_a_return_after_settlement_still_applies() -> None:
    order = completed_order("o1", Reservation(5, "consumed", None, [Held("B1", "SKU-1", "W1", 2)]))
    p = plan([settled("o1"), status("o1", "601", 40)], stock(("B1", 3, 0, 0)), {order.order_key: order})
    assert order.snapshot is not None and order.snapshot.state is OrderState.RETURN_REQUESTED
    assert p.history.decision == ["forward", "forward"]


def test_envelopes_become_changes_or_refusals() -> None:
    good = status("o1", "220", 0).envelope
    bad = _envelope(ORDER_STATUS_CHANGED, "x", {"order_key": "bad"})
    entry = {
        "sequence": 3,
        "posting_key": "k",
        "order_key": "tokopedia:shop:o1",
        "amount": 10,
        "effective_at": T0.isoformat(),
    }
    settlement = _envelope(ORDER_SETTLED, "tokopedia:shop:o1", entry)
    # The consumer skips entry_posted by its header (services.orders.app.CONSUMED_TYPES): no change if it came.
    posted = _envelope(ENTRY_POSTED, "tokopedia:shop:o1", {**entry, "kind": "settlement", "chain_hash": "0" * 64})
    odd = _envelope("karya.other.thing.v1", "x", {})
    changes, refusals = read_changes([good, bad, settlement, posted, odd])
    assert [(i, type(c).__name__) for i, c in changes] == [(0, "StatusChange"), (2, "Settled")]
    assert changes[1][1] == Settled(settlement, "tokopedia:shop:o1", 3)
    assert [r.index for r in refusals] == [1, 3, 4]
    assert refusals[2].reason == "unexpected event type 'karya.other.thing.v1'"


def test_the_sweeper_plan_expires_every_due_hold() -> None:
    due = [
        ("a", Reservation(1, "soft", T0, [Held("B1", "SKU-1", "W1", 2)])),
        ("b", Reservation(2, "soft", T0, [Held("B2", "SKU-1", "W1", 1)])),
    ]
    p = plan_expiry(stock(("B1", 5, 2, 0), ("B2", 5, 1, 0), due=due), TOPICS)
    assert [r.state for _, r in p.expired] == ["expired", "expired"]
    assert [(m.batch_id, m.kind) for m in p.movements] == [("B1", MovementKind.EXPIRE), ("B2", MovementKind.EXPIRE)]
    assert len(p.messages) == 3  # two reservation_expired, one availability


def test_inspection_restocks_into_on_hand_and_announces_availability() -> None:
    inputs = stock(("B1", 5, 0, 0), ("B2", 1, 0, 1))
    rows = [(*r[:8], 2 if r[0] == "B1" else 0) for r in inputs.rows]
    inputs = StockInputs(rows, inputs.lapas_of_workshop, INFO)
    p = plan_inspection(Inspected(1, "tokopedia:shop:k", "B1", 2, Verdict.RESTOCK), inputs, "", TOPICS, at=T0)
    assert [(m.batch_id, m.kind, m.quantity) for m in p.movements] == [("B1", MovementKind.RESTOCK, 2)]
    assert p.status == "restocked"
    restocked, available = (validate_published(m.payload) for m in p.messages)
    assert restocked["type"] == "karya.orders.units_restocked.v1" and restocked["subject"] == "tokopedia:shop:k"
    assert {k: restocked["data"][k] for k in ("restock_id", "batch_id", "quantity")} == {
        "restock_id": 1,
        "batch_id": "B1",
        "quantity": 2,
    }
    assert available["type"] == "karya.orders.stock_availability_changed.v1"
    off = plan_inspection(Inspected(1, "tokopedia:shop:k", "B1", 2, Verdict.WRITE_OFF), inputs, "torn", TOPICS, at=T0)
    assert off.status == "written_off" and off.messages == [] and off.movements[0].reason == "inspection: torn"


_STAGE_OF_RESERVATION = {
    "soft": {StockStage.SOFT},
    "hard": {StockStage.HARD},
    "consumed": {StockStage.CONSUMED, StockStage.QUARANTINED},
    "released": {StockStage.RELEASED},
}


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["o1", "o2", "o3"]),
            st.sampled_from(["100", "220", "450", "500", "600", "700", "0", "601"]),
            st.integers(0, 20),
            st.integers(1, 4),
        ),
        min_size=1,
        max_size=12,
    )
)
def test_any_batch_keeps_counters_valid_and_reservations_in_step(events: list[tuple[str, str, int, int]]) -> None:
    start = {"B1": (4, 0, 0), "B2": (3, 0, 0)}
    p = plan([status(o, raw, m, qty=q) for o, raw, m, q in events], stock(*((b, *c) for b, c in start.items())))
    totals = {b: [on, soft, hard, 0] for b, (on, soft, hard) in start.items()}
    for m in p.stock.movements:
        d = movement_delta(m.kind, m.quantity)
        for i, change in enumerate((d.on_hand, d.soft_reserved, d.allocated, d.quarantined)):
            totals[m.batch_id][i] += change
    for on, soft, hard, quarantined in totals.values():
        StockCounters(on, soft, hard, quarantined)  # raises if a counter went below zero or over-reserved
    assert p.stock.availability() in ({}, {"SKU-1": [("W1", sum(t[0] - t[1] - t[2] for t in totals.values()))]})
    for order in p.orders:
        if order.parked_reason is not None or order.snapshot is None:
            continue
        stage = order.snapshot.stock_stage
        if order.reservation is None:
            assert stage in (StockStage.NONE, StockStage.RELEASED), (order.order_key, stage)
        else:
            assert stage in _STAGE_OF_RESERVATION[order.reservation.state], (order.order_key, stage)
