"""Issue 18 acceptance: a marketplace API unreachable for 30 s while webhooks arrive.

The simulator's seller APIs (in-process, the real Shopee and TikTok Shop clients signing every call) answer 503
to everything for 30 s (``POST /_sim/outage/{channel}``) while Shopee and TikTok Shop pushes arrive, before and
during the outage; the real broker and database carry them. No delivery is dead-lettered: they are parked
(and retried meanwhile), a Tokopedia delivery that needs no API is applied at once during the outage, and once
the APIs answer every parked delivery is applied exactly once (one canonical event per delivery, none left
parked). A push for an order the marketplace does not know (Shopee: HTTP 200, error_not_found) is still a rejection.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from infra.db.engine import make_engine
from infra.db.roles import RoleUrls
from services.contracts.channels import Channel
from services.gateway.app import build_runtime
from services.gateway.clients.shopee import ShopeeClient
from services.gateway.clients.tiktok_shop import TikTokShopClient
from services.gateway.emit import GatewayTopics
from sim.state import SimState
from tests.integration.gateway.test_normaliser import Gateway as _Queries
from tests.integration.gateway_support import (
    FakeClient,
    body_for,
    gateway_settings,
    kafka,
    post,
    prepare_topics,
    scalar,
)
from tests.integration.messaging_support import wait_for
from tests.naming import topic_prefix
from tests.unit.sim.sim_support import SETTINGS, add_order, listings, simulator_app, tokens_for, transport

pytestmark = pytest.mark.integration

OUTAGE_S = 30.0
ROUTE = {Channel.SHOPEE: "shopee/order-status", Channel.TIKTOK_SHOP: "tiktok-shop/order-status"}
STATUSES = {Channel.SHOPEE: ["UNPAID", "READY_TO_SHIP"], Channel.TIKTOK_SHOP: ["UNPAID", "AWAITING_SHIPMENT"]}


class Outage(_Queries):
    state: SimState
    sim: FastAPI

    async def switch(self, channel: Channel, on: bool) -> None:
        async with httpx.AsyncClient(transport=transport(self.sim), base_url="http://sim") as sim:
            answer = await sim.post(f"/_sim/outage/{channel.value}", params={"on": str(on).lower()})
            assert answer.status_code == 200

    async def parked(self, keys: list[str]) -> int:
        sql = "SELECT count(*) FROM gateway.parked_deliveries WHERE order_key = ANY(:k)"
        return int(await scalar(self.engine, sql, k=keys))

    async def tries(self, keys: list[str]) -> int:
        sql = "SELECT coalesce(max(attempts), 0) FROM gateway.parked_deliveries WHERE order_key = ANY(:k)"
        return int(await scalar(self.engine, sql, k=keys))


def _clients(app: FastAPI) -> dict[str, Any]:
    shops = {c: listings(c)[0].shop_id for c in (Channel.SHOPEE, Channel.TIKTOK_SHOP)}
    found: dict[str, Any] = {c: FakeClient(c) for c in ("tokopedia", "blibli")}
    found["shopee"] = ShopeeClient(
        "http://sim/shopee",
        SETTINGS.shopee_partner_id,
        SETTINGS.shopee_partner_key,
        tokens_for(app, "shopee", shops[Channel.SHOPEE]),
        transport=transport(app),
    )
    found["tiktok_shop"] = TikTokShopClient(
        "http://sim/tiktok_shop",
        SETTINGS.tiktok_app_key,
        SETTINGS.tiktok_app_secret,
        tokens_for(app, "tiktok_shop", shops[Channel.TIKTOK_SHOP]),
        transport=transport(app),
    )
    return found


@pytest.fixture
async def outage(database: RoleUrls, kafka_bootstrap: str) -> AsyncIterator[Outage]:
    state = SimState()
    app = simulator_app(state, clock=time.time)
    clients = _clients(app)
    topics = GatewayTopics.with_prefix(topic_prefix("go"))
    await prepare_topics(kafka_bootstrap, topics)
    consumer = f"gateway-normaliser-{uuid.uuid4().hex[:8]}"
    settings = gateway_settings(api_retry_base_s=0.5, api_retry_max_s=3.0)  # retried within seconds of the end
    runtime = build_runtime(
        make_engine(database.gateway),
        kafka(kafka_bootstrap, max_attempts=3),
        settings=settings,
        clients=clients,
        topics=topics,
        consumer_name=consumer,
        pollers=False,
    )
    await runtime.start()
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=runtime.http_app()), base_url="http://gateway")
    try:
        running = Outage(runtime, http, runtime.engine, topics, consumer, clients)
        running.state, running.sim = state, app
        yield running
    finally:
        await http.aclose()
        await runtime.stop()
        await runtime.engine.dispose()


async def _push(gw: Outage, channel: Channel, count: int) -> list[str]:
    """``count`` orders of ``channel`` known to the marketplace, each announced by one push; their order keys."""
    keys = []
    for _ in range(count):
        order_id = f"26{uuid.uuid4().hex[:12].upper()}"
        order = add_order(gw.state, channel, order_id, STATUSES[channel])
        body = body_for(ROUTE[channel], order_id, STATUSES[channel][-1], minutes=1, shop=order.shop_id)
        assert (await post(gw.client, ROUTE[channel], body)).status_code == 200
        keys.append(f"{channel.value}:{order.shop_id}:{order_id}")
    return keys


async def test_thirty_seconds_without_the_marketplace_apis_dead_letter_nothing_and_apply_everything_once(
    outage: Outage,
) -> None:
    gw = outage
    for channel in ROUTE:
        await gw.switch(channel, on=True)
    started = time.monotonic()
    keys = [*await _push(gw, Channel.SHOPEE, 4), *await _push(gw, Channel.TIKTOK_SHOP, 3)]

    async def all_parked() -> bool:
        return await gw.parked(keys) == len(keys)

    await wait_for(all_parked, timeout=30, what="the deliveries parked")
    # Another channel whose delivery needs no API is not held by the outage.
    toko = f"tokopedia:77001:{int(uuid.uuid4().int % 10**9)}"
    toko_order = toko.rsplit(":", 1)[1]
    body = body_for("tokopedia/order-notification", toko_order, 220)
    assert (await post(gw.client, "tokopedia/order-notification", body)).status_code == 200

    async def toko_applied() -> bool:
        return len(await gw.events(toko)) == 1

    await wait_for(toko_applied, timeout=30, what="the Tokopedia delivery applied during the outage")
    await asyncio.sleep(max(0.0, OUTAGE_S / 2 - (time.monotonic() - started)))
    keys += await _push(gw, Channel.SHOPEE, 2)  # pushes keep arriving while the APIs are down

    async def retried() -> bool:
        return await gw.tries(keys) >= 3

    await wait_for(retried, timeout=30, what="parked deliveries retried during the outage")

    async def gauged() -> bool:  # what on-call sees: karya_gateway_parked_deliveries{channel}
        registry = gw.runtime.metrics.registry
        parked = registry.get_sample_value("karya_gateway_parked_deliveries", {"channel": "shopee"})
        return (parked or 0) >= 4

    await wait_for(gauged, timeout=30, what="the parked-deliveries gauge")
    await asyncio.sleep(max(0.0, OUTAGE_S - (time.monotonic() - started)))
    assert await gw.parked(keys) == len(keys)
    assert [k for k in keys if await gw.dead_letters(k)] == []
    assert [k for k in keys if await gw.events(k)] == []

    for channel in ROUTE:
        await gw.switch(channel, on=False)

    async def all_applied() -> bool:
        return all([len(await gw.events(k)) >= 1 for k in keys])

    await wait_for(all_applied, timeout=60, what="every parked delivery applied once the APIs answer")
    assert await gw.parked(keys) == 0
    for key in keys:
        (event,) = await gw.events(key)  # exactly once
        assert event["data"]["lines"], key  # completed from the order-detail API
        assert await gw.dead_letters(key) == []

    # A push for an order the marketplace does not know is a rejection, not parked: Shopee answers HTTP 200 with
    # error_not_found in the body, TikTok Shop a success (HTTP 200) that leaves the order out.
    await unknown_order_rejected(gw, "shopee/order-status", f"26{uuid.uuid4().hex[:12].upper()}", "READY_TO_SHIP")
    await unknown_order_rejected(gw, "tiktok-shop/order-status", f"579{uuid.uuid4().int % 10**15:015d}", "ON_HOLD")


async def unknown_order_rejected(gw: Outage, route: str, order_id: str, status: str) -> None:
    """A push for ``order_id``, which the simulated marketplace does not know, is dead-lettered and not parked."""
    channel = Channel.SHOPEE if route.startswith("shopee") else Channel.TIKTOK_SHOP
    shop = listings(channel)[0].shop_id
    assert (await post(gw.client, route, body_for(route, order_id, status, minutes=1, shop=shop))).status_code == 200
    key = f"{channel.value}:{shop}:{order_id}"

    async def rejected() -> bool:
        return len(await gw.dead_letters(key)) == 1

    await wait_for(rejected, timeout=60, what=f"the unknown order's delivery dead-lettered ({channel.value})")
    assert "MarketplaceRefused" in (await gw.dead_letters(key))[0]
    assert await gw.parked([key]) == 0
