"""Stock given back fills waiting orders, on the real database: a paid order cancelled, or an unpaid hold expired by
the sweeper, gives its units back in a transaction that reserves them, in the same step, for the oldest order waiting
for that SKU (its ``order_allocated`` announces the allocations to the ledger); every counter still equals its
movements."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from infra.db.engine import make_engine
from infra.db.roles import RoleUrls
from infra.messaging.consumer import InboundEvent
from infra.messaging.delivery import Delivery
from services.orders.adapters.order_repo import BatchInfoCache
from services.orders.app import SCHEMA
from services.orders.domain.channels import Channel
from services.orders.outbound import OrdersTopics
from services.orders.sweeper import sweep_expired
from tests.integration import orders_support as o
from tests.integration.orders.test_backorders import drive
from tests.naming import topic_prefix

pytestmark = pytest.mark.integration
ALLOCATED = "karya.orders.order_allocated.v1"


@pytest.fixture
async def engine(database: RoleUrls) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(database.service, pool_size=2)
    yield engine
    await engine.dispose()


async def test_a_cancellation_fills_the_order_waiting_for_its_units(engine: AsyncEngine) -> None:
    u, topics = o.uid(), OrdersTopics.with_prefix(topic_prefix())
    await o.load(engine, o.small_catalogue(u, [("w1", 2, date(2026, 3, 1))]))
    first = await drive(engine, u, topics, "first", ["220"], qty=2)  # paid: holds both units
    waiting = await drive(engine, u, topics, "waiting", ["220"], qty=2)  # paid, nothing left: waits
    assert (await o.orders_by_key(engine, [waiting]))[waiting]["reservations"] == []

    await drive(engine, u, topics, "first", ["220", "0"], qty=2)  # the seller cancels the first order
    after = await o.orders_by_key(engine, [first, waiting])
    assert after[first]["reservations"] == ["released"]
    assert after[waiting]["reservations"] == ["hard"]
    allocated = await o.last_payload(engine, waiting, ALLOCATED)
    assert [(a["batch_id"], a["quantity"]) for a in allocated["allocations"]] == [(f"B-{u}-1", 2)]
    assert await o.stock_of(engine, f"SKU-{u}") == {
        "on_hand": 2, "soft_reserved": 0, "allocated": 2, "quarantined": 0, "available": 0,
    }  # fmt: skip
    # a redelivered cancellation frees nothing more and fills nothing twice
    await drive(engine, u, topics, "first", ["220", "0"], qty=2)
    assert (await o.outbox_types(engine, [waiting]))[waiting]["order_allocated"] == 1
    await o.assert_reconciled(engine)


async def test_the_sweeper_fills_the_order_waiting_for_an_expired_hold(engine: AsyncEngine) -> None:
    u, topics = o.uid(), OrdersTopics.with_prefix(topic_prefix())
    await o.load(engine, o.small_catalogue(u, [("w1", 2, date(2026, 3, 1))]))
    handler = o.orders_handler(topics, {Channel.SHOPEE: timedelta(days=2)})
    base = o.recent()
    unpaid = o.status_event(u, "unpaid", "UNPAID", 0, "shopee", qty=2, base=base)
    paid = o.status_event(u, "paid", "READY_TO_SHIP", 1, "shopee", qty=2, base=base)
    for n, envelope in enumerate([unpaid, paid]):
        async with engine.begin() as conn:
            assert await handler(conn, [InboundEvent(envelope, Delivery("t", 0, n, None, b""))]) == []
    assert (await o.orders_by_key(engine, [paid.subject]))[paid.subject]["reservations"] == []
    # The unpaid hold's window passes (moved, not waited for).
    async with engine.begin() as conn:
        query = "UPDATE orders.reservations SET expires_at = now() - interval '1 minute' WHERE order_key = :k"
        await conn.execute(text(query), {"k": unpaid.subject})

    assert await sweep_expired(engine, SCHEMA, BatchInfoCache(), topics) >= 1
    after = await o.orders_by_key(engine, [unpaid.subject, paid.subject])
    assert after[unpaid.subject]["reservations"] == ["expired"]
    assert after[paid.subject]["reservations"] == ["hard"]
    assert (await o.last_payload(engine, paid.subject, ALLOCATED))["allocations"][0]["quantity"] == 2
    assert (await o.stock_of(engine, f"SKU-{u}"))["available"] == 0
    await o.assert_reconciled(engine)
