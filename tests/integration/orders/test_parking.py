"""Unmappable events park their order and go to the dead-letter topic; the rest of the batch applies."""

from __future__ import annotations

from datetime import date
from uuid import UUID

import pytest
from sqlalchemy import text

from infra.db.engine import make_engine
from infra.db.roles import RoleUrls
from infra.messaging.topics import dead_letter_topic, topic_name
from tests.integration.messaging_support import read_topic, wait_for
from tests.integration.orders_support import (
    assert_reconciled,
    load,
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


async def test_unknown_listing_parks_order_and_dead_letters(kafka_bootstrap: str, database: RoleUrls) -> None:
    u = uid()
    prefix = topic_prefix()
    engine = make_engine(database.service)
    await load(engine, small_catalogue(u, [("w1", 10, date(2026, 3, 1))]))
    base = recent()
    known = status_event(u, "known", "UNPAID", 0, "shopee", qty=2, base=base)
    first = [known]
    batch = [
        # an unknown channel product id
        status_event(u, "ghost", "220", 1, "tokopedia", lines=[(f"nope-{u}", 1)], base=base),
        status_event(u, "known", "LOST_IN_SPACE", 1, "shopee", qty=2, base=base),  # unmappable status
        status_event(u, "fresh", "220", 1, "tokopedia", qty=3, base=base),  # fine
        status_event(u, "known", "READY_TO_SHIP", 2, "shopee", qty=2, base=base),  # fine, after the bad one
    ]
    ghost, lost, fresh, _ = batch
    try:
        # One partition, so the four events share a partition and (usually) one batch.
        async with orders_consumer(database, kafka_bootstrap, prefix, relay=True, partitions=1) as consumer:
            await publish(kafka_bootstrap, consumer.topic, first)
            await wait_applied(engine, consumer, 1)
            await publish(kafka_bootstrap, consumer.topic, batch)
            await wait_applied(engine, consumer, 5)
            dlq = await read_topic(kafka_bootstrap, dead_letter_topic(consumer.topic), expected=2)

        errors = {r.value: dict(r.headers)["karya-dlq-error"].decode() for r in dlq}
        assert set(errors) == {ghost.to_bytes(), lost.to_bytes()}, "the original bytes, nothing else"
        assert errors[ghost.to_bytes()] == f"rejected: unknown listing tokopedia/shop-{u}/nope-{u} on line 1"
        assert errors[lost.to_bytes()] == ("rejected: unmappable order status 'LOST_IN_SPACE' for channel 'shopee'")
        assert all(dict(r.headers)["karya-dlq-attempts"] == b"1" for r in dlq)
        assert {r.key for r in dlq} == {ghost.subject.encode(), known.subject.encode()}
        async with engine.connect() as conn:
            dead: dict[UUID, str] = dict(
                (
                    await conn.execute(
                        text("SELECT event_id, error FROM orders.dead_letters WHERE event_id = ANY(:ids)"),
                        {"ids": [ghost.event_id, lost.event_id]},
                    )
                ).all()
            )
            inbox: dict[UUID, str] = dict(
                (
                    await conn.execute(
                        text("SELECT event_id, status FROM orders.inbox WHERE consumer = :c"), {"c": consumer.name}
                    )
                ).all()
            )
        assert dead == {ghost.event_id: errors[ghost.to_bytes()], lost.event_id: errors[lost.to_bytes()]}
        assert {k: v for k, v in inbox.items() if v != "applied"} == {
            ghost.event_id: "dead_lettered",
            lost.event_id: "dead_lettered",
        }

        orders = await orders_by_key(engine, [ghost.subject, known.subject, fresh.subject])
        # A new order whose first event is unusable is known only by its parking reason.
        assert orders[ghost.subject]["state"] is None
        assert "unknown listing" in orders[ghost.subject]["parked_reason"]
        assert orders[ghost.subject]["reservations"] == []
        # The later good event of the same order went through and cleared the parking.
        assert orders[known.subject]["state"] == "awaiting_fulfilment"
        assert orders[known.subject]["parked_reason"] is None
        assert orders[known.subject]["reservations"] == ["hard"]
        assert orders[fresh.subject]["reservations"] == ["hard"]
        assert await stock_of(engine, f"SKU-{u}") == {
            "on_hand": 10,
            "soft_reserved": 0,
            "allocated": 5,
            "quarantined": 0,
            "available": 5,
        }

        # Nothing of the orders service's own for the parked order: only the dead-letter copy of its event (the
        # relay has published everything and emptied the outbox by now: the DLQ copies were read above).
        async def ghost_drained() -> bool:
            return not (await outbox_types(engine, [ghost.subject]))[ghost.subject]

        await wait_for(ghost_drained, what="the dead-letter copy published and removed from the outbox")
        own = await read_topic(kafka_bootstrap, topic_name("orders.events", prefix), expected=0, wait_s=0)
        assert own and ghost.subject.encode() not in {r.key for r in own}
        await assert_reconciled(engine)
    finally:
        await engine.dispose()


async def test_unmappable_status_parks_an_existing_order_and_keeps_its_hold(
    kafka_bootstrap: str, database: RoleUrls
) -> None:
    u = uid()
    prefix = topic_prefix()
    engine = make_engine(database.service)
    await load(engine, small_catalogue(u, [("w1", 10, date(2026, 3, 1))]))
    base = recent()
    steps = [
        status_event(u, "held", "UNPAID", 0, "shopee", qty=4, base=base),
        status_event(u, "held", "WAITING_FOR_GODOT", 1, "shopee", qty=4, base=base),
    ]
    try:
        async with orders_consumer(database, kafka_bootstrap, prefix, partitions=1) as consumer:
            for n, event in enumerate(steps, start=1):
                await publish(kafka_bootstrap, consumer.topic, [event])
                await wait_applied(engine, consumer, n)
        order = (await orders_by_key(engine, [steps[0].subject]))[steps[0].subject]
        assert order["state"] == "pending_payment", "the last good snapshot is kept"
        assert order["parked_reason"] == "unmappable order status 'WAITING_FOR_GODOT' for channel 'shopee'"
        assert order["reservations"] == ["soft"]
        assert (await stock_of(engine, f"SKU-{u}"))["soft_reserved"] == 4
        await assert_reconciled(engine)
    finally:
        await engine.dispose()
