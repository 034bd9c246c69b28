"""Unpaid soft holds expire (by the sweeper, or inline when the SKU is ordered) and free their units."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from infra.db.engine import make_engine
from infra.db.roles import RoleUrls
from services.orders.adapters.order_repo import BatchInfoCache
from services.orders.app import SCHEMA
from services.orders.domain.channels import Channel
from services.orders.outbound import OrdersTopics
from services.orders.sweeper import sweep_expired
from tests.integration.orders_support import (
    assert_reconciled,
    last_payload,
    load,
    orders_by_key,
    orders_consumer,
    outbox_types,
    publish,
    small_catalogue,
    status_event,
    stock_of,
    uid,
    wait_applied,
)
from tests.naming import topic_prefix

pytestmark = pytest.mark.integration

WINDOWS = {Channel.SHOPEE: timedelta(seconds=1)}
EXPIRED = "karya.orders.reservation_expired.v1"
AVAILABILITY = "karya.orders.stock_availability_changed.v1"


async def reservations(engine: AsyncEngine, key: str) -> list[str]:
    """States of the order's reservations, oldest first."""
    return list((await orders_by_key(engine, [key]))[key]["reservations"])


async def test_unpaid_reservation_expires_and_stock_is_available_again(
    kafka_bootstrap: str, database: RoleUrls
) -> None:
    u, v = uid(), uid()  # two SKUs: one expired by the sweeper, one inline
    prefix = topic_prefix()
    engine = make_engine(database.service)
    await load(engine, small_catalogue(u, [("w1", 3, date(2026, 3, 1))]))
    await load(engine, small_catalogue(v, [("w1", 3, date(2026, 3, 1))]))
    # Placed a minute ago with a one-second window: the hold is already due when it is made.
    placed = (datetime.now(UTC) - timedelta(minutes=1)).replace(microsecond=0)
    swept = status_event(u, "unpaid", "UNPAID", 0, "shopee", qty=3, base=placed)
    inline = status_event(v, "unpaid", "UNPAID", 0, "shopee", qty=3, base=placed)
    try:
        async with orders_consumer(database, kafka_bootstrap, prefix, windows=WINDOWS) as consumer:
            await publish(kafka_bootstrap, consumer.topic, [swept])
            await wait_applied(engine, consumer, 1)
            assert await stock_of(engine, f"SKU-{u}") == {
                "on_hand": 3,
                "soft_reserved": 3,
                "allocated": 0,
                "quarantined": 0,
                "available": 0,
            }
            confirmed = await last_payload(engine, swept.subject, "karya.orders.reservation_confirmed.v1")
            assert confirmed["hold"] == "soft"
            assert datetime.fromisoformat(confirmed["expires_at"]) == placed + timedelta(seconds=1)

            # Sweeper path: the periodic sweep gives the units back.
            assert await sweep_expired(engine, SCHEMA, BatchInfoCache(), OrdersTopics.with_prefix(prefix)) >= 1
            assert await stock_of(engine, f"SKU-{u}") == {
                "on_hand": 3,
                "soft_reserved": 0,
                "allocated": 0,
                "quarantined": 0,
                "available": 3,
            }
            assert await reservations(engine, swept.subject) == ["expired"]
            ended = await last_payload(engine, swept.subject, EXPIRED)
            assert [(a["batch_id"], a["quantity"]) for a in ended["allocations"]] == [(f"B-{u}-1", 3)]
            availability = await last_payload(engine, f"SKU-{u}", AVAILABILITY)
            assert availability["available"] == 3

            # Inline path, no sweeper: the next order for the SKU finds the due hold free at once.
            await publish(kafka_bootstrap, consumer.topic, [inline])
            await wait_applied(engine, consumer, 2)
            assert (await stock_of(engine, f"SKU-{v}"))["soft_reserved"] == 3
            late = [
                status_event(u, "late", "220", 5, "tokopedia", qty=3, base=placed),
                status_event(v, "late", "220", 5, "tokopedia", qty=3, base=placed),
            ]
            await publish(kafka_bootstrap, consumer.topic, late)
            await wait_applied(engine, consumer, 4)
            for sku in (f"SKU-{u}", f"SKU-{v}"):
                assert await stock_of(engine, sku) == {
                    "on_hand": 3,
                    "soft_reserved": 0,
                    "allocated": 3,
                    "quarantined": 0,
                    "available": 0,
                }
            orders = await orders_by_key(engine, [inline.subject, *(e.subject for e in late)])
            assert orders[inline.subject]["reservations"] == ["expired"]
            assert [orders[e.subject]["reservations"] for e in late] == [["hard"], ["hard"]]
            types = await outbox_types(engine, [inline.subject, swept.subject])
            assert types[inline.subject]["reservation_expired"] == 1
            assert types[swept.subject]["reservation_expired"] == 1  # expired once, not again inline

            # Paying after expiry does not revive the hold: the units are gone, so the new HARD hold fails.
            paid_late = status_event(v, "unpaid", "READY_TO_SHIP", 6, "shopee", qty=3, base=placed)
            await publish(kafka_bootstrap, consumer.topic, [paid_late])
            await wait_applied(engine, consumer, 5)
            assert (await outbox_types(engine, [inline.subject]))[inline.subject]["reservation_failed"] == 1
            assert await reservations(engine, inline.subject) == ["expired"]
        await assert_reconciled(engine)
    finally:
        await engine.dispose()
