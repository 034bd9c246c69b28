"""Returns from the simulator's returns APIs reach the books' input: a return created in the simulated
marketplace, a completion webhook, and the gateway's normaliser — with the real Shopee and TikTok Shop clients
signing every call, the real broker and database — publishes ``refund_reported`` with the refund's lines, what
the marketplace gave back (0: the returns APIs do not say) and whether the payout already deducted it. Also how an
order's refunds and payouts end up: a return of every unit ends the order, and each TikTok Shop statement row that
paid it is a settlement of its own."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from infra.db.engine import make_engine
from infra.db.roles import RoleUrls
from services.contracts.channels import Channel
from services.gateway.app import build_runtime
from services.gateway.clients.shopee import ShopeeClient
from services.gateway.clients.tiktok_shop import TikTokShopClient
from services.gateway.emit import GatewayTopics
from sim.fees import compute_settlement
from sim.state import SimOrder, SimRefund, SimRefundLine, SimSettlement, SimState
from tests.contract_validation import validate_published
from tests.integration.gateway_support import (
    FakeClient,
    RunningGateway,
    body_for,
    gateway_settings,
    kafka,
    outbox_events,
    post,
    prepare_topics,
)
from tests.integration.messaging_support import wait_for
from tests.naming import topic_prefix
from tests.unit.sim.sim_support import SETTINGS, add_order, listings, simulator_app, tokens_for, transport

pytestmark = pytest.mark.integration

REFUND = "karya.marketplace.refund_reported.v1"
SETTLEMENT = "karya.marketplace.settlement_reported.v1"


class Gateway(RunningGateway):
    state: SimState

    async def published(self, key: str) -> list[dict[str, Any]]:
        return await outbox_events(self.engine, self.topics.settlements, key, self.runtime.kafka.bootstrap_servers)


@pytest.fixture
async def gateway(database: RoleUrls, kafka_bootstrap: str) -> AsyncIterator[Gateway]:
    state = SimState()
    app = simulator_app(state, clock=time.time)
    shopee_shop, tts_shop = listings(Channel.SHOPEE)[0].shop_id, listings(Channel.TIKTOK_SHOP)[0].shop_id
    clients: dict[str, Any] = {c: FakeClient(c) for c in ("tokopedia", "blibli")}
    clients["shopee"] = ShopeeClient(
        "http://sim/shopee",
        SETTINGS.shopee_partner_id,
        SETTINGS.shopee_partner_key,
        tokens_for(app, "shopee", shopee_shop),
        transport=transport(app),
    )
    clients["tiktok_shop"] = TikTokShopClient(
        "http://sim/tiktok_shop",
        SETTINGS.tiktok_app_key,
        SETTINGS.tiktok_app_secret,
        tokens_for(app, "tiktok_shop", tts_shop),
        transport=transport(app),
    )
    topics = GatewayTopics.with_prefix(topic_prefix("gr"))
    await prepare_topics(kafka_bootstrap, topics)
    consumer = f"gateway-normaliser-{uuid.uuid4().hex[:8]}"
    runtime = build_runtime(
        make_engine(database.gateway),
        kafka(kafka_bootstrap, max_attempts=3),
        settings=gateway_settings(),
        clients=clients,
        topics=topics,
        consumer_name=consumer,
        pollers=False,
    )
    await runtime.start()
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=runtime.http_app()), base_url="http://gateway")
    try:
        running = Gateway(runtime, http, runtime.engine, topics, consumer, clients)
        running.state = state
        yield running
    finally:
        await http.aclose()
        await runtime.stop()
        await runtime.engine.dispose()


def completed_order(state: SimState, channel: Channel, order_id: str) -> SimOrder:
    now = int(time.time())
    return add_order(
        state, channel, order_id, ["UNPAID", "COMPLETED"], lines=((2, 25_000), (1, 40_000)), start=now - 600
    )


async def refunds_of(gw: Gateway, key: str, count: int) -> list[dict[str, Any]]:
    async def arrived() -> bool:
        return len([e for e in await gw.published(key) if e["type"] == REFUND]) >= count

    await wait_for(arrived, timeout=60, what=f"refund_reported of {key}")
    return [e for e in await gw.published(key) if e["type"] == REFUND]


async def test_a_shopee_return_refunded_before_the_escrow_is_published_netted_with_its_line(gateway: Gateway) -> None:
    gw, now = gateway, int(time.time())
    order_id = f"2612{uuid.uuid4().hex[:10].upper()}"
    order = completed_order(gw.state, Channel.SHOPEE, order_id)
    gw.state.refund(order, SimRefund(f"RS{order_id}", 40_000, "return", now - 120, (SimRefundLine(1, 1, 40_000),)))
    gw.state.settle(order, SimSettlement("7" + order_id[-6:], now - 60, ()))
    body = body_for("shopee/order-status", order_id, "COMPLETED", minutes=30, shop=order.shop_id)
    assert (await post(gw.client, "shopee/order-status", body)).status_code == 200
    key = f"shopee:{order.shop_id}:{order_id}"
    (event,) = await refunds_of(gw, key, 1)
    validate_published(json.dumps(event).encode())
    data = event["data"]
    assert (data["refund_id"], data["amount"], data["reason"]) == (f"RS{order_id}", 40_000, "return")
    assert data["netted_in_settlement"] is True
    assert (data["fees_returned"], data["pph22_returned"]) == (0, 0)
    mat = order.lines[1].listing
    assert data["lines"] == [
        {
            "channel_product_id": mat.channel_product_id,
            "channel_sku_id": mat.channel_sku_id,
            "seller_sku": mat.sku,
            "quantity": 1,
            "amount": 40_000,
        }
    ]


async def test_a_tiktok_partial_refund_after_the_statement_is_published_not_netted(gateway: Gateway) -> None:
    gw, now = gateway, int(time.time())
    order_id = f"5769{uuid.uuid4().int % 10**14:014d}"
    order = completed_order(gw.state, Channel.TIKTOK_SHOP, order_id)
    gw.state.settle(order, SimSettlement("7" + order_id[-6:], now - 300, ()))
    gw.state.refund(order, SimRefund(f"RT{order_id}", 50_000, "return", now - 60, (SimRefundLine(0, 2, 50_000),)))
    body = body_for("tiktok-shop/order-status", order_id, "COMPLETED", minutes=30, shop=order.shop_id)
    assert (await post(gw.client, "tiktok-shop/order-status", body)).status_code == 200
    key = f"tiktok_shop:{order.shop_id}:{order_id}"
    (event,) = await refunds_of(gw, key, 1)
    data = event["data"]
    assert (data["amount"], data["netted_in_settlement"], data["fees_returned"]) == (50_000, False, 0)
    glove = order.lines[0].listing
    assert [(x["channel_sku_id"], x["seller_sku"], x["quantity"], x["amount"]) for x in data["lines"]] == [
        (glove.channel_sku_id or None, glove.sku, 2, 50_000)
    ]


async def returned_order(gw: Gateway, units_back: int) -> tuple[str, SimOrder]:
    """A delivered TikTok Shop order of 2 + 1 units whose return of ``units_back`` units (the first line's first)
    was refunded; its DELIVERED status pushed again, as TikTok Shop does for a return."""
    now = int(time.time())
    order_id = f"5771{uuid.uuid4().int % 10**14:014d}"
    order = add_order(
        gw.state, Channel.TIKTOK_SHOP, order_id, ["UNPAID", "DELIVERED"], lines=((2, 25_000), (1, 40_000)), start=now
    )
    parts = (
        (SimRefundLine(0, 2, 50_000), SimRefundLine(1, 1, 40_000))
        if units_back == 3
        else (SimRefundLine(0, 1, 25_000),)
    )
    amount = sum(p.amount for p in parts)
    gw.state.refund(order, SimRefund(f"RT{order_id}", amount, "return", now + 60, parts))
    body = body_for("tiktok-shop/order-status", order_id, "DELIVERED", minutes=30, shop=order.shop_id)
    assert (await post(gw.client, "tiktok-shop/order-status", body)).status_code == 200
    return f"tiktok_shop:{order.shop_id}:{order_id}", order


async def statuses_of(gw: Gateway, key: str) -> list[str]:
    events = await outbox_events(gw.engine, gw.topics.order_events, key, gw.runtime.kafka.bootstrap_servers)
    return [e["data"]["raw_status"] for e in events]


async def test_a_return_refunded_for_every_unit_ends_the_order_returned(gateway: Gateway) -> None:
    """No order status says a return ended (TikTok Shop keeps it DELIVERED): the returns API's refunded return of
    every unit does, so the gateway records the order returned (KARYA_RETURN_COMPLETED → RETURNED) at the refund's
    time, and the orders service announces the end the ledger waits for."""
    gw = gateway
    key, order = await returned_order(gw, units_back=3)
    await refunds_of(gw, key, 1)

    async def ended() -> bool:
        return "KARYA_RETURN_COMPLETED" in await statuses_of(gw, key)

    await wait_for(ended, timeout=60, what=f"the end of {key}'s return")
    events = await outbox_events(gw.engine, gw.topics.order_events, key, gw.runtime.kafka.bootstrap_servers)
    (end,) = [e["data"] for e in events if e["data"]["raw_status"] == "KARYA_RETURN_COMPLETED"]
    (pushed,) = [e["data"] for e in events if e["data"]["raw_status"] == "DELIVERED"]
    refunded = datetime.fromtimestamp(order.refunds[0].refunded_at, UTC)
    # at the refund's time, never before the status that told of it (else the orders service finds it stale)
    expected = max(refunded, datetime.fromisoformat(pushed["update_time"]))
    assert datetime.fromisoformat(end["update_time"]) == expected


async def test_a_return_of_some_units_leaves_the_order_open_and_its_refund_for_the_completion(
    gateway: Gateway,
) -> None:
    """The order goes on: its refund is published at completion, when the payout says whether it deducted it."""
    gw = gateway
    key, _ = await returned_order(gw, units_back=1)

    async def delivered() -> bool:
        return "DELIVERED" in await statuses_of(gw, key)

    await wait_for(delivered, timeout=60, what=f"the DELIVERED status of {key}")  # with its refunds, if any
    assert "KARYA_RETURN_COMPLETED" not in await statuses_of(gw, key)
    assert [e for e in await gw.published(key) if e["type"] == REFUND] == []


async def test_a_tiktok_adjustment_row_is_published_as_the_orders_new_totals(gateway: Gateway) -> None:
    """The daily statement pays the order; an adjustment row in a later statement is read at the next push and
    published as the order's cumulative totals under the first row's id (the ledger posts the difference)."""
    gw, now = gateway, int(time.time())
    order_id = f"5772{uuid.uuid4().int % 10**14:014d}"
    order = completed_order(gw.state, Channel.TIKTOK_SHOP, order_id)
    rates = {"platform_commission": 600, "transaction_fee": 200}
    gw.state.settle(order, SimSettlement(f"7{order_id[-6:]}", now - 300, (compute_settlement(80_000, rates),)))
    key = f"tiktok_shop:{order.shop_id}:{order_id}"

    async def settlements(count: int) -> list[dict[str, Any]]:
        async def arrived() -> bool:
            return len([e for e in await gw.published(key) if e["type"] == SETTLEMENT]) >= count

        await wait_for(arrived, timeout=60, what=f"{count} settlement_reported of {key}")
        return [e["data"] for e in await gw.published(key) if e["type"] == SETTLEMENT]

    body = body_for("tiktok-shop/order-status", order_id, "COMPLETED", minutes=30, shop=order.shop_id)
    assert (await post(gw.client, "tiktok-shop/order-status", body)).status_code == 200
    (first,) = await settlements(1)
    gw.state.settle(order, SimSettlement(f"7{order_id[-6:]}01", now - 60, (compute_settlement(10_000, rates),)))
    again = body_for("tiktok-shop/order-status", order_id, "COMPLETED", minutes=31, shop=order.shop_id)
    assert (await post(gw.client, "tiktok-shop/order-status", again)).status_code == 200
    published = await settlements(2)
    assert published[0] == first
    assert [(s["marketplace_settlement_id"], s["gross_amount"], s["net_payout"]) for s in published] == [
        (f"7{order_id[-6:]}", 80_000, 80_000 - 4_800 - 1_600 - 400),
        (f"7{order_id[-6:]}", 90_000, 90_000 - 5_400 - 1_800 - 450),
    ]
