"""Shop tokens against the simulator and the real database: connect, expiry, refresh, failed refresh.

The simulator (in-process) issues codes and tokens and checks every API call's token; the store is
``gateway.shop_tokens`` of this session's database, used as the gateway role. One clock drives the simulator,
the token APIs, the clients and the store, so expiry is reached by moving it, not by waiting.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import httpx
import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from infra.cli_root import CliRoot
from infra.db.engine import make_engine
from infra.db.roles import RoleUrls
from infra.db.unit_of_work import Database
from infra.errors import sqlstate_of
from infra.settings import KafkaSettings
from karya.processes import free_port
from karya.services import SERVICES
from services.contracts.channels import Channel
from services.gateway.app import SCHEMA
from services.gateway.clients.settings import ClientSettings
from services.gateway.clients.shopee import ShopeeClient
from services.gateway.clients.tiktok_shop import TikTokShopClient
from services.gateway.clients.tokens import ShopNotConnected
from services.gateway.shops.auth import ShopeeAuth, TikTokAuth, TokenApi
from services.gateway.shops.connect import ShopTools, connect_shop
from services.gateway.shops.crypto import TokenCipher
from services.gateway.shops.refresher import TokenMetrics, refresh_due
from services.gateway.shops.store import ShopTokenStore
from sim.api import create_app
from sim.state import SimState
from sim.tokens import SimTokens
from tests.unit.sim.sim_support import NOW, SETTINGS, add_order

pytestmark = pytest.mark.integration

MARGIN = timedelta(minutes=30)


class Clock:
    """A settable clock shared by everything in a test."""

    def __init__(self, at: float) -> None:
        self.at = at

    def __call__(self) -> float:
        return self.at


@dataclass
class World:
    clock: Clock
    state: SimState
    issued: SimTokens
    tools: ShopTools
    transport: httpx.ASGITransport
    metrics: TokenMetrics
    registry: CollectorRegistry
    engine: AsyncEngine

    def shopee(self) -> ShopeeClient:
        partner = SETTINGS.shopee_partner_id
        return ShopeeClient(
            "http://sim/shopee",
            partner,
            SETTINGS.shopee_partner_key,
            self.tools.store,
            transport=self.transport,
            clock=self.clock,
        )

    def tiktok(self) -> TikTokShopClient:
        return TikTokShopClient(
            "http://sim/tiktok_shop",
            SETTINGS.tiktok_app_key,
            SETTINGS.tiktok_app_secret,
            self.tools.store,
            transport=self.transport,
            clock=self.clock,
        )

    def sample(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0

    async def authorised(self, channel: str, shop_id: str) -> None:
        await connect_shop(self.tools, channel, self.issued.authorize(channel, shop_id), shop_id)


@pytest.fixture
async def world(database: RoleUrls) -> AsyncIterator[World]:
    clock = Clock(NOW)
    state = SimState()
    app = create_app(state, SETTINGS, clock)
    transport = httpx.ASGITransport(app=app)
    engine = make_engine(database.gateway, pool_size=2)
    apis: dict[str, TokenApi] = {
        "shopee": ShopeeAuth(
            "http://sim/shopee",
            (SETTINGS.shopee_partner_id, SETTINGS.shopee_partner_key),
            "http://karya/cb",
            transport=transport,
            clock=clock,
        ),
        "tiktok_shop": TikTokAuth(
            "http://sim/tiktok_auth",
            "http://sim/tiktok_shop",
            "http://sim/tiktok_services",
            SETTINGS.tiktok_app_key,
            SETTINGS.tiktok_app_secret,
            "svc",
            transport=transport,
            clock=clock,
        ),
    }
    store = ShopTokenStore(Database(engine, SCHEMA), TokenCipher(secrets.token_bytes(32)), clock)
    registry = CollectorRegistry()
    yield World(
        clock, state, app.state.tokens, ShopTools(apis, store), transport, TokenMetrics(registry), registry, engine
    )
    for api in apis.values():
        await api.aclose()
    async with engine.begin() as conn:
        await conn.execute(text("DELETE FROM gateway.shop_tokens"))
    await engine.dispose()


async def test_connected_shops_call_the_apis_with_sealed_tokens_only_the_gateway_reads(
    world: World, database: RoleUrls
) -> None:
    shopee_order = add_order(world.state, Channel.SHOPEE, "261101TOKEN001", ["UNPAID", "READY_TO_SHIP"])
    tts_order = add_order(world.state, Channel.TIKTOK_SHOP, "576000000000000901", ["UNPAID", "AWAITING_SHIPMENT"])
    with pytest.raises(ShopNotConnected, match="karya shops connect shopee"):
        await world.shopee().order_detail(shopee_order.shop_id, shopee_order.order_id)
    await world.authorised("shopee", shopee_order.shop_id)
    await world.authorised("tiktok_shop", tts_order.shop_id)

    assert (
        await world.shopee().order_detail(shopee_order.shop_id, shopee_order.order_id)
    ).raw_status == "READY_TO_SHIP"
    assert (await world.tiktok().order_detail(tts_order.shop_id, tts_order.order_id)).raw_status == "AWAITING_SHIPMENT"

    token = (await world.tools.store.access("shopee", shopee_order.shop_id)).access_token
    async with world.engine.connect() as conn:
        rows = (await conn.execute(text("SELECT * FROM gateway.shop_tokens ORDER BY channel"))).mappings().all()
    assert [(r["channel"], r["shop_id"]) for r in rows] == [
        ("shopee", shopee_order.shop_id),
        ("tiktok_shop", tts_order.shop_id),
    ]
    assert rows[1]["shop_cipher"] == SimTokens.cipher(tts_order.shop_id)
    assert all(token.encode() not in bytes(r["access_token"]) for r in rows)
    service = make_engine(database.service, pool_size=1)
    auditor = make_engine(database.auditor, pool_size=1)
    try:
        for engine in (service, auditor):
            with pytest.raises(DBAPIError) as refused:
                async with engine.connect() as conn:
                    await conn.execute(text("SELECT shop_id FROM gateway.shop_tokens"))
            assert sqlstate_of(refused.value) == "42501"
    finally:
        await service.dispose()
        await auditor.dispose()


async def test_a_token_about_to_expire_is_refreshed_and_the_old_one_stops_working(world: World) -> None:
    order = add_order(world.state, Channel.SHOPEE, "261101TOKEN002", ["UNPAID", "READY_TO_SHIP"])
    await world.authorised("shopee", order.shop_id)
    client = world.shopee()
    assert await refresh_due(world.tools.store, world.tools.apis, MARGIN, world.metrics) == (0, 0)  # 4 h left

    world.clock.at += 4 * 3600 - 10 * 60  # ten minutes before the access token expires
    assert await refresh_due(world.tools.store, world.tools.apis, MARGIN, world.metrics) == (1, 0)
    assert world.issued.refreshes == 1
    assert world.sample("karya_gateway_token_refreshes_total", channel="shopee", outcome="refreshed") == 1
    assert world.sample("karya_gateway_token_refresh_failing", channel="shopee", shop_id=order.shop_id) == 0

    world.clock.at += 20 * 60  # the first access token has expired; the refreshed one is used
    assert (await client.order_detail(order.shop_id, order.order_id)).order_id == order.order_id
    shop = (await world.tools.store.shops())[0]
    assert shop.refresh_failures == 0 and shop.access_expires_at.timestamp() == NOW + 4 * 3600 - 10 * 60 + 4 * 3600


async def test_two_replicas_never_spend_the_same_refresh_token(world: World) -> None:
    """While one gateway holds a shop's row for its refresh, another skips that shop (Shopee retires the token)."""
    order = add_order(world.state, Channel.SHOPEE, "261101TOKEN004", ["UNPAID"])
    await world.authorised("shopee", order.shop_id)
    world.clock.at += 4 * 3600 - 10 * 60
    async with world.tools.store.claim("shopee", order.shop_id, MARGIN) as held:
        assert held is not None and held.token.shop_id == order.shop_id
        assert await refresh_due(world.tools.store, world.tools.apis, MARGIN, world.metrics) == (0, 0)
    assert await refresh_due(world.tools.store, world.tools.apis, MARGIN, world.metrics) == (1, 0)
    assert await refresh_due(world.tools.store, world.tools.apis, MARGIN, world.metrics) == (0, 0)  # done
    assert world.issued.refreshes == 1


async def test_a_failed_refresh_raises_the_alert_metric_and_a_readable_error(world: World) -> None:
    order = add_order(world.state, Channel.SHOPEE, "261101TOKEN003", ["UNPAID", "READY_TO_SHIP"])
    await world.authorised("shopee", order.shop_id)
    world.issued.refuse_refresh.add(("shopee", order.shop_id))  # the seller revoked Karya's authorisation
    world.clock.at += 4 * 3600 - 10 * 60

    assert await refresh_due(world.tools.store, world.tools.apis, MARGIN, world.metrics) == (0, 1)
    assert world.sample("karya_gateway_token_refresh_failing", channel="shopee", shop_id=order.shop_id) == 1
    assert world.sample("karya_gateway_token_refreshes_total", channel="shopee", outcome="failed") == 1
    shop = (await world.tools.store.shops())[0]
    assert shop.refresh_failures == 1
    assert shop.refresh_error == (
        f"refresh of shopee shop {order.shop_id} failed: shopee API POST /api/v2/auth/access_token/get: "
        "HTTP 403: error_auth: authorization revoked by the seller"
    )

    world.clock.at += 20 * 60  # past expiry: calls are refused with the reason, and nothing is sent
    with pytest.raises(ShopNotConnected, match=r"access token expired at .*; last refresh failed: refresh of shopee"):
        await world.shopee().order_detail(order.shop_id, order.order_id)

    world.issued.refuse_refresh.clear()  # re-authorised: the next round succeeds and clears the alert
    assert await refresh_due(world.tools.store, world.tools.apis, MARGIN, world.metrics) == (1, 0)
    assert world.sample("karya_gateway_token_refresh_failing", channel="shopee", shop_id=order.shop_id) == 0
    assert (await world.shopee().order_detail(order.shop_id, order.order_id)).order_id == order.order_id


async def test_karya_shops_connect_and_list_against_a_served_simulator(database: RoleUrls) -> None:
    """The CLI as an operator runs it: its root (the gateway role, the API clients' settings), a code from the
    (simulated) redirect, the table."""
    from typer.testing import CliRunner

    from services.gateway.shops.cli import app
    from services.orders.catalogue import load_catalogue
    from sim.server import DEFAULT_CATALOGUE, Simulator

    simulator = Simulator(load_catalogue(DEFAULT_CATALOGUE), SETTINGS)
    port = free_port()
    sim = f"http://127.0.0.1:{port}"
    settings = ClientSettings(  # the API clients' settings, as the command's root would read them
        token_key=secrets.token_hex(32),
        shopee_api_url=f"{sim}/shopee",
        tokopedia_api_token=SETTINGS.tokopedia_api_token,
        tiktok_app_key=SETTINGS.tiktok_app_key,
        tiktok_app_secret=SETTINGS.tiktok_app_secret,
        shopee_partner_id=int(SETTINGS.shopee_partner_id),
        shopee_partner_key=SETTINGS.shopee_partner_key,
        blibli_api_client_id=SETTINGS.blibli_api_client_id,
        blibli_api_client_key=SETTINGS.blibli_api_client_key,
        blibli_api_key=SETTINGS.blibli_api_key,
        blibli_api_secret=SETTINGS.blibli_api_secret,
    )
    root = CliRoot(KafkaSettings(), {"gateway": database.gateway}, SERVICES, {ClientSettings: settings})
    runner = CliRunner()
    async with simulator.serve("127.0.0.1", port):
        code = simulator.tokens.authorize("shopee", "77001")
        # The CLI runs its own event loop: run it in a thread while this loop serves the simulator.
        connected = await asyncio.to_thread(
            runner.invoke, app, ["connect", "shopee", "--shop-id", "77001", "--code", code], obj=root
        )
        listed = await asyncio.to_thread(runner.invoke, app, ["list"], obj=root)
        reused = await asyncio.to_thread(
            runner.invoke, app, ["connect", "shopee", "--shop-id", "77001", "--code", code], obj=root
        )
    assert connected.exit_code == 0, connected.output
    assert "connected shopee shop 77001" in connected.output
    assert listed.exit_code == 0 and "77001" in listed.output
    assert not re.search(r"[0-9a-f]{32}", listed.output + connected.output)  # the simulator's tokens: 32 hex
    assert reused.exit_code == 2 and "error_auth: Invalid code." in reused.output  # a code works once
    engine = make_engine(database.gateway, pool_size=1)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("DELETE FROM gateway.shop_tokens"))
    finally:
        await engine.dispose()
