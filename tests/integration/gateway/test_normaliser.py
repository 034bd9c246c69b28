"""Webhook → raw delivery → Kafka → normaliser → canonical events, through the real broker and database.

The marketplace API is an in-test fake (the HTTP clients are tested against the simulator elsewhere).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import text

from infra.db.roles import RoleUrls
from services.gateway.clients.refunds import ApiRefund
from services.gateway.values import NonIntegralAmount
from tests.contract_validation import validate_published
from tests.integration.gateway_support import (
    RunningGateway,
    api_order,
    api_settlement,
    body_for,
    outbox_events,
    post,
    running_gateway,
    scalar,
    uid,
)
from tests.integration.messaging_support import wait_for

pytestmark = pytest.mark.integration


class Gateway(RunningGateway):
    async def events(self, key: str, topic: str | None = None) -> list[dict[str, Any]]:
        bootstrap = self.runtime.kafka.bootstrap_servers
        return await outbox_events(self.engine, topic or self.topics.order_events, key, bootstrap)

    async def settlements(self, key: str) -> list[dict[str, Any]]:
        return await outbox_events(self.engine, self.topics.settlements, key, self.runtime.kafka.bootstrap_servers)

    async def dead_letters(self, key: str) -> list[str]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                text("SELECT error FROM gateway.dead_letters WHERE consumer = :c AND convert_from(key, 'UTF8') = :k"),
                {"c": self.consumer, "k": key},
            )
            return [r[0] for r in rows]

    async def processed(self, key: str) -> bool:
        """Every raw delivery of ``key`` has been through the normaliser (applied or dead-lettered)."""
        raw = await self.events(key, self.topics.raw_deliveries)
        async with self.engine.connect() as conn:
            applied = (
                await conn.execute(
                    text(
                        "SELECT count(*) FROM gateway.inbox "
                        "WHERE consumer = :c AND event_id = ANY(CAST(:ids AS uuid[]))"
                    ),
                    {"c": self.consumer, "ids": [e["event_id"] for e in raw]},
                )
            ).scalar_one()
        return int(applied) == len(raw)


@pytest.fixture
async def gateway(database: RoleUrls, kafka_bootstrap: str) -> AsyncIterator[Gateway]:
    async with running_gateway(Gateway, database.gateway, kafka_bootstrap, "gn", max_attempts=3) as running:
        yield running


async def _settle(gw: Gateway, key: str, *, events: int = 1) -> None:
    async def done() -> bool:
        return await gw.processed(key) and (len(await gw.events(key)) + len(await gw.dead_letters(key)) >= events)

    await wait_for(done, timeout=60, what=f"normalised deliveries of {key}")


async def test_the_same_delivery_ten_times_gives_one_canonical_event(gateway: Gateway) -> None:
    gw = gateway
    order = "900000001"
    body = body_for("tokopedia/order-notification", order, 220, price=25000.0)
    for _ in range(10):
        assert (await post(gw.client, "tokopedia/order-notification", body)).status_code == 200
    key = f"tokopedia:77001:{order}"
    await _settle(gw, key)
    raw = "SELECT count(*) FROM gateway.raw_deliveries WHERE order_key = :k"
    assert await scalar(gw.engine, raw, k=key) == 1
    assert len(await gw.events(key, gw.topics.raw_deliveries)) == 1
    events = await gw.events(key)
    assert len(events) == 1
    data = events[0]["data"]
    assert (data["raw_status"], data["gross_amount"], data["channel"]) == ("220", 50000, "tokopedia")
    assert data["lines"] == [{"channel_product_id": "456", "channel_sku_id": None, "quantity": 2, "unit_price": 25000}]
    validate_published(json.dumps(events[0]).encode())
    assert gw.fakes["tokopedia"].calls == []  # the notification carries its lines: no API call


async def test_shopee_trigger_gets_lines_from_detail_and_settlement_when_completed(gateway: Gateway) -> None:
    gw = gateway
    order, shop = f"SN{uid().upper()}", "77001"
    key = f"shopee:{shop}:{order}"
    shopee = gw.fakes["shopee"]
    shopee.orders[order] = api_order("shopee", shop, order, "READY_TO_SHIP", price=30000, quantity=3)
    shopee.settlements[order] = api_settlement("shopee", shop, order, gross=90000)
    for minutes, status in [(0, "READY_TO_SHIP"), (30, "SHIPPED"), (90, "COMPLETED")]:
        response = await post(
            gw.client, "shopee/order-status", body_for("shopee/order-status", order, status, minutes=minutes)
        )
        assert response.status_code == 200 and response.content == b""
    await _settle(gw, key, events=3)
    events = await gw.events(key)
    assert [e["data"]["raw_status"] for e in events] == ["READY_TO_SHIP", "SHIPPED", "COMPLETED"]
    first = events[0]["data"]
    assert first["lines"] == [{"channel_product_id": "456", "channel_sku_id": None, "quantity": 3, "unit_price": 30000}]
    assert first["gross_amount"] == 90000
    await wait_for(lambda: _has(gw.settlements(key), 1), what="settlement")
    (settlement,) = await gw.settlements(key)
    validate_published(json.dumps(settlement).encode())
    s = settlement["data"]
    assert (s["gross_amount"], s["pph22_withheld"], s["net_payout"]) == (90000, 450, 90000 - 4500 - 450)
    assert s["fees"] == [{"fee_type": "commission_fee", "amount": 4500}]
    assert settlement["correlation_id"] == events[2]["correlation_id"]  # caused by the COMPLETED delivery
    assert shopee.calls.count(("detail", order)) == 1  # lines are fetched once per order
    assert shopee.calls.count(("settlement", order)) == 1
    assert await scalar(gw.engine, "SELECT done FROM gateway.order_status_seen WHERE order_key = :k", k=key)


async def test_a_refund_listed_after_completion_is_published_once(gateway: Gateway) -> None:
    gw = gateway
    order, shop = f"SN{uid().upper()}", "77001"
    key = f"shopee:{shop}:{order}"
    shopee = gw.fakes["shopee"]
    shopee.orders[order] = api_order("shopee", shop, order, "COMPLETED", price=30000, quantity=2)
    shopee.settlements[order] = api_settlement("shopee", shop, order, gross=60000)
    await post(gw.client, "shopee/order-status", body_for("shopee/order-status", order, "COMPLETED", minutes=0))
    await wait_for(lambda: _has(gw.settlements(key), 1), what="settlement")
    refund = ApiRefund("shopee", shop, order, "RF-1", 15000, "partial", datetime(2026, 11, 3, tzinfo=UTC))
    shopee.refunded[order] = [refund]
    for minutes in (60, 120):  # the marketplace re-pushes the completed status; the refund is one fact
        await post(
            gw.client, "shopee/order-status", body_for("shopee/order-status", order, "COMPLETED", minutes=minutes)
        )
    await wait_for(lambda: _has(gw.settlements(key), 2), what="refund")
    await wait_for(lambda: gw.processed(key), what="all deliveries normalised")
    published = await gw.settlements(key)
    types = [e["type"] for e in published]
    assert types == ["karya.marketplace.settlement_reported.v1", "karya.marketplace.refund_reported.v1"]
    validate_published(json.dumps(published[1]).encode())
    assert published[1]["data"]["refund_id"] == "RF-1" and published[1]["data"]["amount"] == 15000


async def test_a_later_settlement_under_a_reused_id_is_published_and_a_reread_is_not(gateway: Gateway) -> None:
    """Dedupe by content: the marketplace reports a second (adjusted) payout under the same settlement id; the
    completion re-pushes publish it with a settlement id of its own, and re-reading an unchanged answer adds
    nothing."""
    gw = gateway
    order, shop = f"SN{uid().upper()}", "77001"
    key = f"shopee:{shop}:{order}"
    shopee = gw.fakes["shopee"]
    shopee.orders[order] = api_order("shopee", shop, order, "COMPLETED", price=30000, quantity=2)
    shopee.settlements[order] = api_settlement("shopee", shop, order, gross=60000)

    async def push(minutes: int) -> None:
        body = body_for("shopee/order-status", order, "COMPLETED", minutes=minutes)
        assert (await post(gw.client, "shopee/order-status", body)).status_code == 200

    await push(0)
    await wait_for(lambda: _has(gw.settlements(key), 1), what="first settlement")
    first = shopee.settlements[order]
    shopee.settlements[order] = dataclasses.replace(
        first, net_payout=first.net_payout - 5000, fees={"commission_fee": 8000}
    )
    await push(60)
    await wait_for(lambda: _has(gw.settlements(key), 2), what="adjusted settlement under the same id")
    await push(120)  # the same adjusted answer read again
    await wait_for(lambda: gw.processed(key), what="all deliveries normalised")
    assert shopee.calls.count(("settlement", order)) == 3
    published = [e["data"] for e in await gw.settlements(key)]
    assert [s["marketplace_settlement_id"] for s in published] == [f"st-{order}", f"st-{order}"]
    assert published[0]["settlement_id"] != published[1]["settlement_id"]
    assert [s["net_payout"] for s in published] == [first.net_payout, first.net_payout - 5000]


async def _has(awaitable: Any, n: int) -> bool:
    return len(await awaitable) >= n


async def test_completed_but_unsettled_is_left_for_the_backstop(gateway: Gateway) -> None:
    gw = gateway
    order, shop = f"57{uid()}", "7494033665013839814"
    key = f"tiktok_shop:{shop}:{order}"
    gw.fakes["tiktok_shop"].orders[order] = api_order("tiktok_shop", shop, order, "COMPLETED")
    body = body_for("tiktok-shop/order-status", order, "COMPLETED", shop=shop)
    assert (await post(gw.client, "tiktok-shop/order-status", body)).status_code == 200
    await _settle(gw, key)
    assert [e["data"]["raw_status"] for e in await gw.events(key)] == ["COMPLETED"]
    assert await gw.settlements(key) == []
    async with gw.engine.connect() as conn:
        row = (
            await conn.execute(
                text("SELECT completion_reached, settled, done FROM gateway.order_status_seen WHERE order_key = :k"),
                {"k": key},
            )
        ).one()
    assert tuple(row) == (True, False, False)


async def test_unusable_deliveries_are_refused_or_dead_lettered_with_the_reason(gateway: Gateway) -> None:
    gw = gateway
    half = str(910_000_000 + int(uid(), 16) % 1_000_000)
    body = body_for("tokopedia/order-notification", half, 220, price=150000.5)
    refused = await post(gw.client, "tokopedia/order-notification", body)
    # The body's own fault: answered at once, naming the field, never the value; kept, but not published.
    assert refused.status_code == 422
    assert "non-integral amount" in refused.json()["error"] and "products[0].price" in refused.json()["error"]
    assert "150000.5" not in refused.text
    stored = "SELECT count(*) FROM gateway.raw_deliveries WHERE order_key = :k AND dedupe_key LIKE '%:rejected:%'"
    assert await scalar(gw.engine, stored, k=f"tokopedia:77001:{half}") == 1
    unknown = f"SNX{uid().upper()}"
    body = body_for("shopee/order-status", unknown, "TELEPORTED")
    assert (await post(gw.client, "shopee/order-status", body)).status_code == 200  # well-formed: our table's gap
    bad_detail = f"57{uid()}"
    tiktok = gw.fakes["tiktok_shop"]
    tiktok.orders[bad_detail] = api_order("tiktok_shop", "77001", bad_detail, "AWAITING_SHIPMENT")
    gw.fakes["tiktok_shop"].failures[bad_detail] = 99
    gw.fakes["tiktok_shop"].error = lambda what: NonIntegralAmount(f"{what}: payment.sub_total: not a whole number")
    body = body_for("tiktok-shop/order-status", bad_detail, "AWAITING_SHIPMENT")
    assert (await post(gw.client, "tiktok-shop/order-status", body)).status_code == 200
    expectations = {
        f"shopee:77001:{unknown}": "unmappable order status 'TELEPORTED'",
        f"tiktok_shop:77001:{bad_detail}": "non-integral amount",
    }
    for key, reason in expectations.items():
        await _settle(gw, key)
        errors = await gw.dead_letters(key)
        assert len(errors) == 1 and reason in errors[0], (key, errors)
        assert errors[0].startswith("rejected:")
        assert await gw.events(key) == []
    assert gw.fakes["tiktok_shop"].calls.count(("detail", bad_detail)) == 1  # a rejection is not retried
    assert await gw.events(f"tokopedia:77001:{half}", gw.topics.raw_deliveries) == []


async def test_a_refused_delivery_leaves_its_dedupe_key_to_the_corrected_resend(gateway: Gateway) -> None:
    gw = gateway
    order = str(920_000_000 + int(uid(), 16) % 1_000_000)
    key = f"tokopedia:77001:{order}"
    bad = body_for("tokopedia/order-notification", order, 220, price=25000.5)
    good = body_for("tokopedia/order-notification", order, 220, price=25000)
    assert (await post(gw.client, "tokopedia/order-notification", bad)).status_code == 422
    assert (await post(gw.client, "tokopedia/order-notification", bad)).status_code == 422  # same bytes: one row
    answer = await post(gw.client, "tokopedia/order-notification", good)
    assert answer.status_code == 200 and answer.json()["duplicate"] is False  # same fs_id/order/type/status
    await _settle(gw, key)
    (event,) = await gw.events(key)
    assert (event["data"]["raw_status"], event["data"]["gross_amount"]) == ("220", 50000)
    rows = "SELECT count(*) FROM gateway.raw_deliveries WHERE order_key = :k"
    assert await scalar(gw.engine, rows, k=key) == 2  # the refused one kept as evidence, the valid one applied
    again = await post(gw.client, "tokopedia/order-notification", good)
    assert again.status_code == 200 and again.json()["duplicate"] is True


async def test_a_push_older_than_the_replay_window_is_refused_and_not_stored(gateway: Gateway) -> None:
    gw = gateway
    order = f"58{uid()}"
    stale = body_for("tiktok-shop/order-status", order, "AWAITING_SHIPMENT", minutes=-2 * 24 * 60)
    answer = await post(gw.client, "tiktok-shop/order-status", stale)
    assert answer.status_code == 400 and "replay" in answer.json()["error"]
    rows = "SELECT count(*) FROM gateway.raw_deliveries WHERE order_key = :k"
    assert await scalar(gw.engine, rows, k=f"tiktok_shop:77001:{order}") == 0


async def test_an_unreachable_marketplace_api_parks_deliveries_until_it_answers(gateway: Gateway) -> None:
    """Issue 18: an API that does not answer is not the delivery's fault: parked, never dead-lettered, and
    applied once the API answers (each retry a real call; the batch's other deliveries are not held)."""
    gw = gateway
    shopee = gw.fakes["shopee"]
    flaky, down = f"SNF{uid().upper()}", f"SND{uid().upper()}"
    for order in (flaky, down):
        shopee.orders[order] = api_order("shopee", "77001", order, "READY_TO_SHIP")
    shopee.failures[flaky] = 1  # one outage, then it answers
    shopee.failures[down] = 99  # does not answer until the test says so
    for order in (flaky, down):
        assert (
            await post(gw.client, "shopee/order-status", body_for("shopee/order-status", order, "READY_TO_SHIP"))
        ).status_code == 200
    await _settle(gw, f"shopee:77001:{flaky}")
    assert [e["data"]["raw_status"] for e in await gw.events(f"shopee:77001:{flaky}")] == ["READY_TO_SHIP"]
    assert shopee.calls.count(("detail", flaky)) == 2

    def parked_attempts() -> Any:
        sql = "SELECT coalesce(max(attempts), 0) FROM gateway.parked_deliveries WHERE order_key = :k"
        return scalar(gw.engine, sql, k=f"shopee:77001:{down}")

    async def retried() -> bool:
        return int(await parked_attempts()) >= 3

    await wait_for(retried, timeout=60, what="three tries of the parked delivery")
    assert await gw.dead_letters(f"shopee:77001:{down}") == []
    assert await gw.events(f"shopee:77001:{down}") == []
    shopee.failures[down] = 0  # the API answers again
    await _settle(gw, f"shopee:77001:{down}")
    assert [e["data"]["raw_status"] for e in await gw.events(f"shopee:77001:{down}")] == ["READY_TO_SHIP"]
    assert await parked_attempts() == 0
    assert await gw.dead_letters(f"shopee:77001:{down}") == []
