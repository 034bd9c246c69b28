"""Every event delivered three times (same event id, same bytes) has exactly one effect."""

from __future__ import annotations

from collections import Counter
from datetime import date

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from infra.db.engine import make_engine
from infra.db.roles import RoleUrls
from infra.messaging.envelope import Envelope, make_envelope
from tests.integration.orders_support import (
    assert_reconciled,
    last_payload,
    load,
    movements_of,
    orders_by_key,
    orders_consumer,
    outbox_types,
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

# (channel, order id, quantity, raw statuses in lifecycle order)
LIFECYCLES = [
    ("shopee", "A", 2, ["UNPAID", "READY_TO_SHIP", "SHIPPED", "COMPLETED"]),
    ("tokopedia", "B", 1, ["220", "400", "500", "600", "700"]),
    ("tiktok_shop", "C", 1, ["UNPAID", "AWAITING_SHIPMENT", "CANCELLED"]),
    ("shopee", "D", 3, ["UNPAID", "CANCELLED"]),
    ("shopee", "E", 1, ["READY_TO_SHIP", "SHIPPED", "TO_CONFIRM_RECEIVE", "TO_RETURN"]),
]

# One movement per stock change, one reservation per order, one outbound event per lifecycle step.
EXPECTED_MOVEMENTS = {
    "A": ["soft_reserve", "harden", "consume"],
    "B": ["hard_reserve", "consume"],
    "C": ["soft_reserve", "harden", "release_hard"],
    "D": ["soft_reserve", "release_soft"],
    "E": ["hard_reserve", "consume"],
}
EXPECTED_OUTBOX = {
    "A": {"reservation_confirmed": 2, "order_shipped": 1, "order_completed": 1},
    "B": {"reservation_confirmed": 1, "order_shipped": 1, "order_delivered": 1, "order_completed": 1},
    "C": {"reservation_confirmed": 2, "reservation_released": 1, "order_cancelled": 1},
    "D": {"reservation_confirmed": 1, "reservation_released": 1, "order_cancelled": 1},
    "E": {"reservation_confirmed": 1, "order_shipped": 1, "order_delivered": 1},
}
EXPECTED_FINAL = {
    "A": ("completed", ["consumed"]),
    "B": ("completed", ["consumed"]),
    "C": ("cancelled", ["released"]),
    "D": ("cancelled", ["released"]),
    "E": ("return_requested", ["consumed"]),
}


async def test_each_event_delivered_three_times_has_one_effect(kafka_bootstrap: str, database: RoleUrls) -> None:
    u = uid()
    prefix = topic_prefix()
    engine = make_engine(database.service)
    await load(engine, small_catalogue(u, [("w1", 20, date(2026, 3, 1))]))
    base = recent()
    steps: dict[str, list[Envelope]] = {
        order: [status_event(u, order, raw, minutes=i, channel=ch, qty=qty, base=base) for i, raw in enumerate(raws)]
        for ch, order, qty, raws in LIFECYCLES
    }
    keys = {order: steps[order][0].subject for order in steps}
    rounds = max(len(s) for s in steps.values())
    try:
        async with orders_consumer(database, kafka_bootstrap, prefix) as consumer:
            distinct = duplicates = 0
            # Round i: step i twice (one copy often in the same Kafka batch), then the third copy of step i-1,
            # which now arrives after a newer event. Rounds wait for each other so the batching, and with it
            # the expected movements, is deterministic.
            for i in range(rounds + 1):
                now = [s[i] for s in steps.values() if i < len(s)]
                late = [s[i - 1] for s in steps.values() if 0 < i <= len(s)]
                await publish(kafka_bootstrap, consumer.topic, [e for e in now for _ in range(2)] + late)
                distinct += len(now)
                duplicates += len(now) + len(late)
                await wait_applied(engine, consumer, distinct, duplicates)
            assert distinct == sum(len(s) for s in steps.values())
            assert duplicates == 2 * distinct
            # The gateway may also re-mint a redelivered webhook (new event id, same content): the inbox lets
            # it through, and the state machine sees a duplicate that changes nothing.
            reminted = [
                make_envelope(type=e.type, source=e.source, subject=e.subject, data=e.data)
                for e in (s[-1] for s in steps.values())
            ]
            await publish(kafka_bootstrap, consumer.topic, reminted)
            await wait_applied(engine, consumer, distinct + len(reminted), duplicates)

        orders = await orders_by_key(engine, list(keys.values()))
        for order, (state, reservations) in EXPECTED_FINAL.items():
            assert orders[keys[order]]["state"] == state, order
            assert orders[keys[order]]["reservations"] == reservations, order
            assert orders[keys[order]]["parked_reason"] is None

        qty = {order: q for _, order, q, _ in LIFECYCLES}
        assert await movements_of(engine, list(keys.values())) == Counter(
            {(keys[o], kind, qty[o]): 1 for o, kinds in EXPECTED_MOVEMENTS.items() for kind in kinds}
        )
        outbox = await outbox_types(engine, list(keys.values()))
        assert {o: dict(outbox[k]) for o, k in keys.items()} == EXPECTED_OUTBOX
        decisions = await history_rows(engine, list(keys.values()))
        assert sum(decisions.values()) == distinct + len(reminted), "one decision per distinct event"
        assert decisions["duplicate"] >= len(reminted)

        sku = f"SKU-{u}"
        shipped = qty["A"] + qty["B"] + qty["E"]
        assert await stock_of(engine, sku) == {
            "on_hand": 20 - shipped,
            "soft_reserved": 0,
            "allocated": 0,
            "quarantined": 0,
            "available": 20 - shipped,
        }
        availability = await last_payload(engine, sku, "karya.orders.stock_availability_changed.v1")
        assert availability["available"] == 20 - shipped
        assert (await outbox_types(engine, [sku]))[sku]["stock_availability_changed"] >= 1
        await assert_reconciled(engine)
    finally:
        await engine.dispose()


async def history_rows(engine: AsyncEngine, keys: list[str]) -> Counter[str]:
    """State-machine decisions recorded for the orders, counted by decision."""
    async with engine.connect() as conn:
        sql = text("SELECT decision FROM orders.order_history WHERE order_key = ANY(:k)")
        return Counter((await conn.execute(sql, {"k": keys})).scalars())
