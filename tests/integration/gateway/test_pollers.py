"""Blibli order-list poller and the webhook backstop, against the real database (fake marketplace API)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from infra.db.engine import make_engine
from infra.db.roles import RoleUrls
from infra.db.unit_of_work import Database, UnitOfWork
from services.gateway.app import SCHEMA
from services.gateway.canonical import classify, status_event
from services.gateway.deps import GatewayDeps
from services.gateway.emit import GatewayTopics, StatusEmission, emit
from services.gateway.normalise import Notice
from services.gateway.pollers import backstop_once, poll_blibli_store
from tests.integration.gateway_support import (
    NOW,
    FakeClient,
    api_order,
    api_settlement,
    gateway_settings,
    outbox_events,
    scalar,
    uid,
)
from tests.naming import topic_prefix

pytestmark = pytest.mark.integration
TOPICS = GatewayTopics.with_prefix(topic_prefix("gp"))


@pytest.fixture
async def engine(database: RoleUrls) -> AsyncIterator[AsyncEngine]:
    e = make_engine(database.gateway, pool_size=3)
    yield e
    await e.dispose()


def _deps(fakes: dict[str, FakeClient]) -> GatewayDeps:
    settings = gateway_settings(
        blibli_poll_overlap_s=300.0,
        blibli_poll_window_max_s=3600.0,
        blibli_initial_lookback_s=7200.0,
        backstop_min_age_s=60.0,
        backstop_max_age_s=86_400.0 * 7,
    )
    return GatewayDeps(settings, dict(fakes))


async def test_blibli_windows_overlap_and_publish_each_status_once(engine: AsyncEngine) -> None:
    store = f"LPC-{uid()}"
    blibli = FakeClient("blibli")
    deps = _deps({"blibli": blibli})
    first, second = f"B1{uid()}", f"B2{uid()}"
    blibli.listed = [
        api_order("blibli", store, first, "FP", minutes=-30, product="LPC-00001"),
        api_order("blibli", store, second, "FP", minutes=-10),
    ]
    now, hour, overlap = NOW, timedelta(hours=1), timedelta(minutes=5)

    async def poll(at: datetime) -> int:
        return await poll_blibli_store(Database(engine, SCHEMA), deps, store, TOPICS, at)

    async def cursor() -> datetime:
        sql = "SELECT cursor FROM gateway.poll_cursors WHERE channel = 'blibli' AND shop_id = :s"
        value: datetime = await scalar(engine, sql, s=store)
        return value

    assert await poll(now) == 0  # first window: [now - lookback, + max window), both orders are later
    assert blibli.windows[-1] == (now - 2 * hour, now - hour)
    assert await cursor() == now - hour
    assert await poll(now) == 2
    assert blibli.windows[-1] == (now - hour - overlap, now - overlap)
    assert await poll(now) == 0  # the overlap re-reads the second order: the same fact is not republished
    assert blibli.windows[-1] == (now - 2 * overlap, now)
    assert blibli.windows[-1][0] <= NOW - timedelta(minutes=10) < blibli.windows[-1][1]
    # The first order is delivered (D): its settlement is fetched and published with it.
    blibli.listed.append(api_order("blibli", store, first, "D", minutes=50, product="LPC-00001"))
    blibli.settlements[first] = api_settlement("blibli", store, first)
    later = now + hour
    assert await poll(later) == 2
    assert blibli.windows[-1] == (now - overlap, now - overlap + hour)
    assert await poll(later) == 0
    assert await cursor() == later
    events = await outbox_events(engine, TOPICS.order_events, f"blibli:{store}:{first}")
    assert [e["data"]["raw_status"] for e in events] == ["FP", "D"]
    assert events[0]["data"]["lines"][0]["channel_product_id"] == "LPC-00001"
    assert len(await outbox_events(engine, TOPICS.order_events, f"blibli:{store}:{second}")) == 1
    settlements = await outbox_events(engine, TOPICS.settlements, f"blibli:{store}:{first}")
    assert len(settlements) == 1 and settlements[0]["data"]["gross_amount"] == 50000
    # A settled order in the window again (the overlap here) is asked again: unchanged totals publish nothing.
    assert blibli.calls.count(("settlement", first)) == 2
    # Its second item is settled later: the order is listed again and the grown totals are published (the ledger
    # posts their difference: the same marketplace settlement id).
    blibli.listed.append(api_order("blibli", store, first, "D", minutes=90, product="LPC-00001"))
    blibli.settlements[first] = api_settlement("blibli", store, first, gross=80000)
    assert await poll(now + 2 * hour) == 1
    settlements = await outbox_events(engine, TOPICS.settlements, f"blibli:{store}:{first}")
    assert [s["data"]["gross_amount"] for s in settlements] == [50000, 80000]
    assert {s["data"]["marketplace_settlement_id"] for s in settlements} == {f"st-{first}"}


async def _seen(engine: AsyncEngine, key: str) -> tuple[str, bool, bool]:
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text("SELECT raw_status, settled, done FROM gateway.order_status_seen WHERE order_key = :k"), {"k": key}
            )
        ).one()
    return str(row[0]), bool(row[1]), bool(row[2])


async def _publish_status(engine: AsyncEngine, channel: str, shop: str, order: str, raw: str) -> None:
    verdict = classify(channel, raw)
    notice = Notice(channel, shop, order, raw, NOW)
    async with engine.begin() as conn:
        emission = StatusEmission(status_event(notice), verdict.state.value, verdict.completion)
        await emit(UnitOfWork(conn, SCHEMA), [emission], TOPICS)


async def _age(engine: AsyncEngine, key: str, minutes: int) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE gateway.order_status_seen SET checked_at = now() - make_interval(mins => :m) "
                "WHERE order_key = :k"
            ),
            {"m": minutes, "k": key},
        )


async def test_backstop_recovers_a_lost_webhook_and_then_the_settlement(engine: AsyncEngine) -> None:
    shop, order = "77001", f"SNB{uid().upper()}"
    key = f"shopee:{shop}:{order}"
    shopee = FakeClient("shopee")
    deps = _deps({"shopee": shopee})
    await _publish_status(engine, "shopee", shop, order, "SHIPPED")
    # The COMPLETED push was lost; the marketplace knows it.
    shopee.orders[order] = api_order("shopee", shop, order, "COMPLETED", minutes=60)
    await backstop_once(Database(engine, SCHEMA), deps, TOPICS)
    assert shopee.calls == []  # checked just now (first seen): not due yet
    await _age(engine, key, 5)
    await backstop_once(Database(engine, SCHEMA), deps, TOPICS)
    events = await outbox_events(engine, TOPICS.order_events, key)
    assert [e["data"]["raw_status"] for e in events] == ["SHIPPED", "COMPLETED"]
    assert events[1]["data"]["lines"][0]["quantity"] == 2
    assert await outbox_events(engine, TOPICS.settlements, key) == []  # not settled yet
    assert await _seen(engine, key) == ("COMPLETED", False, False)
    await backstop_once(Database(engine, SCHEMA), deps, TOPICS)
    assert shopee.calls.count(("detail", order)) == 1  # re-checked only after min age
    shopee.settlements[order] = api_settlement("shopee", shop, order)
    await _age(engine, key, 5)
    await backstop_once(Database(engine, SCHEMA), deps, TOPICS)
    assert len(await outbox_events(engine, TOPICS.settlements, key)) == 1
    assert len(await outbox_events(engine, TOPICS.order_events, key)) == 2  # nothing republished
    assert await _seen(engine, key) == ("COMPLETED", True, True)  # done: the backstop lets it go
    await _age(engine, key, 5)
    await backstop_once(Database(engine, SCHEMA), deps, TOPICS)
    assert shopee.calls.count(("detail", order)) == 2


async def test_backstop_skips_final_orders_and_survives_api_errors(engine: AsyncEngine) -> None:
    shop = "7494"
    cancelled, failing = f"C{uid()}", f"F{uid()}"
    tiktok = FakeClient("tiktok_shop")
    tiktok.failures[failing] = 1
    tiktok.orders[failing] = api_order("tiktok_shop", shop, failing, "IN_TRANSIT", minutes=30)
    deps = _deps({"tiktok_shop": tiktok})
    await _publish_status(engine, "tiktok_shop", shop, cancelled, "CANCELLED")
    await _publish_status(engine, "tiktok_shop", shop, failing, "AWAITING_SHIPMENT")
    for order in (cancelled, failing):
        await _age(engine, f"tiktok_shop:{shop}:{order}", 10)
    assert await backstop_once(Database(engine, SCHEMA), deps, TOPICS) == 0  # the failing order is logged, not fatal
    assert ("detail", cancelled) not in tiktok.calls
    await _age(engine, f"tiktok_shop:{shop}:{failing}", 10)
    assert await backstop_once(Database(engine, SCHEMA), deps, TOPICS) == 1
    events = await outbox_events(engine, TOPICS.order_events, f"tiktok_shop:{shop}:{failing}")
    assert [e["data"]["raw_status"] for e in events] == ["AWAITING_SHIPMENT", "IN_TRANSIT"]
