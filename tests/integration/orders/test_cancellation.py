"""A cancellation after payment releases the held units; a cancellation after shipment changes nothing."""

from __future__ import annotations

from collections import Counter
from datetime import date

import pytest
from sqlalchemy import text

from infra.db.engine import make_engine
from infra.db.roles import RoleUrls
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


async def test_cancellation_after_payment_releases_stock(kafka_bootstrap: str, database: RoleUrls) -> None:
    u = uid()
    prefix = topic_prefix()
    engine = make_engine(database.service)
    await load(engine, small_catalogue(u, [("w1", 10, date(2026, 3, 1))]))
    sku, base = f"SKU-{u}", recent()
    paid = status_event(u, "paid", "AWAITING_SHIPMENT", 0, "tiktok_shop", qty=2, base=base)
    cancelled = status_event(u, "paid", "CANCELLED", 3, "tiktok_shop", qty=2, base=base)
    shipped_steps = [
        status_event(u, "gone", "220", 0, "tokopedia", qty=3, base=base),
        status_event(u, "gone", "500", 1, "tokopedia", qty=3, base=base),
        status_event(u, "gone", "10", 2, "tokopedia", qty=3, base=base),  # rejected by seller, after shipment
    ]
    keys = [paid.subject, shipped_steps[0].subject]
    try:
        async with orders_consumer(database, kafka_bootstrap, prefix) as consumer:
            await publish(kafka_bootstrap, consumer.topic, [paid, shipped_steps[0]])
            await wait_applied(engine, consumer, 2)
            assert await stock_of(engine, sku) == {
                "on_hand": 10,
                "soft_reserved": 0,
                "allocated": 5,
                "quarantined": 0,
                "available": 5,
            }
            await publish(kafka_bootstrap, consumer.topic, [cancelled, shipped_steps[1]])
            await wait_applied(engine, consumer, 4)
            await publish(kafka_bootstrap, consumer.topic, [shipped_steps[2]])
            await wait_applied(engine, consumer, 5)

        # Paid, then cancelled before shipment: the allocation is released.
        assert await stock_of(engine, sku) == {
            "on_hand": 7,
            "soft_reserved": 0,
            "allocated": 0,
            "quarantined": 0,
            "available": 7,
        }
        orders = await orders_by_key(engine, keys)
        assert orders[paid.subject]["state"] == "cancelled"
        assert orders[paid.subject]["reservations"] == ["released"]
        released = await last_payload(engine, paid.subject, "karya.orders.reservation_released.v1")
        assert [(a["batch_id"], a["quantity"]) for a in released["allocations"]] == [(f"B-{u}-1", 2)]
        # Shipped, then "cancelled": ignored, the units stay consumed.
        assert (orders[keys[1]]["state"], orders[keys[1]]["reservations"]) == ("shipped", ["consumed"])
        assert await movements_of(engine, keys) == Counter(
            {
                (paid.subject, "hard_reserve", 2): 1,
                (paid.subject, "release_hard", 2): 1,
                (keys[1], "hard_reserve", 3): 1,
                (keys[1], "consume", 3): 1,
            }
        )
        types = await outbox_types(engine, keys)
        assert types[paid.subject] == Counter(
            {"reservation_confirmed": 1, "reservation_released": 1, "order_cancelled": 1}
        )
        assert types[keys[1]] == Counter({"reservation_confirmed": 1, "order_shipped": 1})
        async with engine.connect() as conn:
            decision = (
                await conn.execute(
                    text("SELECT decision FROM orders.order_history WHERE order_key = :k ORDER BY id DESC LIMIT 1"),
                    {"k": keys[1]},
                )
            ).scalar_one()
        assert decision == "cancel_after_shipment"
        await assert_reconciled(engine)
    finally:
        await engine.dispose()
