"""Lifecycles delivered in a shuffled order end in the state the lifecycle rules define."""

from __future__ import annotations

import random
from datetime import date

import pytest

from infra.db.engine import make_engine
from infra.db.roles import RoleUrls
from infra.messaging.envelope import Envelope
from services.contracts.marketplace import OrderStatusChanged
from services.orders.domain.channels import map_status
from services.orders.domain.lifecycle import OrderStatusSnapshot, StockStage, fold
from tests.integration.orders_support import (
    assert_reconciled,
    load,
    orders_by_key,
    orders_consumer,
    publish,
    recent,
    small_catalogue,
    status_event,
    stock_of,
    uid,
    wait_applied,
)
from tests.naming import topic_prefix

pytestmark = pytest.mark.integration

# (channel, raw statuses in marketplace order): each gets increasing update times.
PATTERNS = [
    ("shopee", ["UNPAID", "READY_TO_SHIP", "SHIPPED", "COMPLETED"]),
    ("tokopedia", ["220", "400", "500", "600", "700"]),
    ("tiktok_shop", ["UNPAID", "AWAITING_SHIPMENT", "CANCELLED"]),
    ("shopee", ["READY_TO_SHIP", "SHIPPED", "TO_CONFIRM_RECEIVE", "TO_RETURN"]),
    ("shopee", ["UNPAID", "READY_TO_SHIP", "IN_CANCEL", "PROCESSED"]),  # cancel request rejected
    ("shopee", ["UNPAID", "IN_CANCEL", "CANCELLED"]),
    ("tokopedia", ["220", "400", "450"]),  # paid, awaiting pickup
    ("tiktok_shop", ["UNPAID", "ON_HOLD", "AWAITING_SHIPMENT", "AWAITING_COLLECTION", "IN_TRANSIT", "DELIVERED"]),
    ("tiktok_shop", ["UNPAID", "ON_HOLD", "CANCELLED"]),
    ("shopee", ["READY_TO_SHIP", "SHIPPED", "TO_CONFIRM_RECEIVE", "TO_RETURN", "COMPLETED"]),  # return denied
    ("tokopedia", ["220", "400", "500", "600", "601", "700"]),  # buyer case, then finished
    ("blibli", ["FP", "CX", "D"]),
    ("shopee", ["UNPAID"]),  # still unpaid: a soft hold
]
ORDERS_PER_PATTERN = 3
STOCK = 150  # more than all orders want together: none fails, so the final stage is the rules' alone
SEED = 20261128
RESERVATION_AT = {StockStage.SOFT: "soft", StockStage.HARD: "hard", StockStage.CONSUMED: "consumed"}


def expected_snapshot(events: list[Envelope]) -> OrderStatusSnapshot:
    """Fold the events through the state machine (:func:`fold`) in marketplace update-time order."""
    snapshot: OrderStatusSnapshot | None = None
    updates = [OrderStatusChanged.model_validate(e.data) for e in events]
    for data in sorted(updates, key=lambda d: d.update_time):
        _, snapshot = fold(snapshot, map_status(data.channel, data.raw_status), data.update_time)
    assert snapshot is not None
    return snapshot


async def test_shuffled_lifecycles_reach_the_rule_defined_final_state(kafka_bootstrap: str, database: RoleUrls) -> None:
    u = uid()
    prefix = topic_prefix()
    engine = make_engine(database.service)
    batches = [("w1", 80, date(2026, 3, 1)), ("w2", STOCK - 80, date(2026, 2, 1))]
    await load(engine, small_catalogue(u, batches))
    rng = random.Random(SEED)
    base = recent()
    lifecycles: dict[str, list[Envelope]] = {}
    quantity: dict[str, int] = {}
    for p, (channel, raws) in enumerate(PATTERNS):
        for n in range(ORDERS_PER_PATTERN):
            order, qty = f"p{p}n{n}", rng.randint(1, 3)
            events = [status_event(u, order, r, 2 * i, channel, qty, base=base) for i, r in enumerate(raws)]
            lifecycles[events[0].subject], quantity[events[0].subject] = events, qty
    queues = {key: rng.sample(events, len(events)) for key, events in lifecycles.items()}
    # Interleave the shuffled per-order sequences at random; one order's events keep their shuffled order.
    sequence: list[Envelope] = []
    while queues:
        key = rng.choice(sorted(queues))
        sequence.append(queues[key].pop(0))
        if not queues[key]:
            del queues[key]
    arrival = {k: [e.event_id for e in sequence if e.subject == k] for k in lifecycles}
    shuffled = [k for k, evs in lifecycles.items() if arrival[k] != [e.event_id for e in evs]]
    assert len(shuffled) > len(lifecycles) // 2, "the seed shuffles most lifecycles"
    try:
        async with orders_consumer(database, kafka_bootstrap, prefix) as consumer:
            await publish(kafka_bootstrap, consumer.topic, sequence)
            await wait_applied(engine, consumer, len(sequence))
        rows = await orders_by_key(engine, list(lifecycles))
        held = {StockStage.SOFT: 0, StockStage.HARD: 0, StockStage.CONSUMED: 0}
        for key, events in lifecycles.items():
            want = expected_snapshot(events)
            got = rows[key]
            assert (got["state"], StockStage(got["stock_stage"])) == (want.state.value, want.stock_stage), key
            assert got["parked_reason"] is None
            assert len(got["reservations"]) <= 1, f"{key} reserved twice: {got['reservations']}"
            if want.stock_stage in held:
                held[want.stock_stage] += quantity[key]
                assert got["reservations"] == [RESERVATION_AT[want.stock_stage]], key
            else:  # cancelled before shipment: released, or never held if the cancellation came first
                assert want.stock_stage is StockStage.RELEASED
                assert got["reservations"] in ([], ["released"]), key
        finals = {rows[k]["state"] for k in lifecycles}
        assert finals == {
            "completed",
            "cancelled",
            "return_requested",
            "ready_to_ship",
            "delivered",
            "pending_payment",
        }
        assert await stock_of(engine, f"SKU-{u}") == {
            "on_hand": STOCK - held[StockStage.CONSUMED],
            "soft_reserved": held[StockStage.SOFT],
            "allocated": held[StockStage.HARD],
            "quarantined": 0,
            "available": STOCK - held[StockStage.CONSUMED] - held[StockStage.SOFT] - held[StockStage.HARD],
        }
        await assert_reconciled(engine)
    finally:
        await engine.dispose()
