"""End to end by published webhooks alone: signed bodies in the marketplaces' published shapes → gateway →
normaliser → Kafka → orders service, on the real broker and database, with no backstop poller running.

- A Tokopedia order moves paid → shipped → delivered → completed by its order notification and three
  ``order_status`` webhooks that carry no time (ordered by status rank and arrival); its units are consumed.
- A TikTok Shop order paid by a type 1 push goes through a type 11 cancellation request (``cancel_status``
  PENDING → cancel requested) to cancelled (COMPLETE), and its allocated units are released.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from infra.db.engine import make_engine
from infra.db.roles import RoleUrls
from infra.messaging.topics import MARKETPLACE_ORDER_EVENTS
from tests.integration.gateway_support import RunningGateway, api_order, post, running_gateway, unix
from tests.integration.messaging_support import wait_for
from tests.integration.orders_support import load, orders_by_key, orders_consumer, small_catalogue, stock_of, uid

pytestmark = pytest.mark.integration


@pytest.fixture
async def gateway(database: RoleUrls, kafka_bootstrap: str) -> AsyncIterator[RunningGateway]:
    async with running_gateway(RunningGateway, database.gateway, kafka_bootstrap, "pl", max_attempts=3) as running:
        yield running


async def _reaches(database: RoleUrls, key: str, state: str) -> None:
    engine = make_engine(database.service)
    try:

        async def there() -> bool:
            order = (await orders_by_key(engine, [key])).get(key)
            return order is not None and order["state"] == state

        await wait_for(there, timeout=60, what=f"{key} {state}")
    finally:
        await engine.dispose()


def _prefix(gw: RunningGateway) -> str:
    """The session's topic prefix, so the orders consumer reads what this gateway publishes."""
    return gw.topics.order_events.removesuffix(MARKETPLACE_ORDER_EVENTS)


async def _send(gw: RunningGateway, route: str, doc: dict[str, Any]) -> None:
    answer = await post(gw.client, route, json.dumps(doc).encode())
    assert answer.status_code == 200, answer.text


async def test_tokopedia_order_completes_by_status_webhooks_alone(
    gateway: RunningGateway, database: RoleUrls, kafka_bootstrap: str
) -> None:
    gw, u = gateway, uid()
    engine = make_engine(database.service)
    await load(engine, small_catalogue(u, [("w1", 10, date(2026, 3, 1))]))
    shop, order = f"shop-{u}", str(930_000_000 + int(u, 16) % 1_000_000)
    key = f"tokopedia:{shop}:{order}"
    paid_at = unix(datetime.now(UTC) - timedelta(minutes=30))
    product = {"id": f"p-{u}", "Name": "Sarung tangan", "quantity": 2, "price": 50000, "sku": f"SKU-{u}"}
    notification = {
        "fs_id": 13398,
        "order_id": order,
        "invoice_ref_num": f"INV/{order}",
        "products": [product],
        "customer": {"id": 1, "Name": "", "phone": "", "email": ""},
        "shop_id": shop,
        "warehouse_id": 0,
        "amt": {"ttl_product_price": 100000, "shipping_cost": 9000, "insurance_cost": 0, "ttl_amount": 109000},
        "order_status": 220,
        "create_time": paid_at,
    }
    try:
        async with orders_consumer(database, kafka_bootstrap, _prefix(gw)):
            await _send(gw, "tokopedia/order-notification", notification)
            await _reaches(database, key, "awaiting_fulfilment")
            for status, state in [(500, "shipped"), (600, "delivered"), (700, "completed")]:
                published = {
                    "fs_id": 13398,
                    "order_status": status,
                    "order_id": order,
                    "shop_id": shop,
                    "warehouse_id": 0,
                    "product_details": [product],
                }  # exactly the published fields: no update_time, no create_time
                await _send(gw, "tokopedia/order-status", published)
                await _reaches(database, key, state)
        (row,) = (await orders_by_key(engine, [key])).values()
        assert (row["state"], row["reservations"]) == ("completed", ["consumed"])
        assert (await stock_of(engine, f"SKU-{u}"))["on_hand"] == 8
        # Lines came with the notification; settlement and refunds are asked for at completion only.
        assert [c for c in gw.fakes["tokopedia"].calls if c[0] == "detail"] == []
    finally:
        await engine.dispose()


async def test_tiktok_shop_cancellation_request_to_cancelled_releases_stock(
    gateway: RunningGateway, database: RoleUrls, kafka_bootstrap: str
) -> None:
    gw, u = gateway, uid()
    engine = make_engine(database.service)
    await load(engine, small_catalogue(u, [("w1", 10, date(2026, 3, 1))]))
    shop, order = f"shop-{u}", f"5764{int(u, 16)}"
    key = f"tiktok_shop:{shop}:{order}"
    gw.fakes["tiktok_shop"].orders[order] = api_order(
        "tiktok_shop", shop, order, "AWAITING_SHIPMENT", price=50000, quantity=3, product=f"p-{u}"
    )
    t0 = unix(datetime.now(UTC) - timedelta(minutes=20))
    paid = {"order_id": order, "order_status": "AWAITING_SHIPMENT", "is_on_hold_order": False, "update_time": t0}
    base = {"shop_id": shop, "data": {}}

    def type_11(n: int, cancel_status: str) -> dict[str, Any]:
        data = {
            "order_id": order,
            "cancellations_role": "BUYER",
            "cancel_status": cancel_status,
            "cancel_id": f"40{int(u, 16)}",
            "create_time": t0 + 60,
        }
        return base | {"type": 11, "tts_notification_id": f"{u}-{n}", "timestamp": t0 + 60 * n, "data": data}

    try:
        async with orders_consumer(database, kafka_bootstrap, _prefix(gw)):
            await _send(
                gw,
                "tiktok-shop/order-status",
                base
                | {"type": 1, "tts_notification_id": f"{u}-0"}
                | {
                    "timestamp": t0,
                    "data": paid,
                },
            )
            await _reaches(database, key, "awaiting_fulfilment")
            assert (await stock_of(engine, f"SKU-{u}"))["allocated"] == 3
            await _send(gw, "tiktok-shop/cancellation", type_11(1, "CANCELLATION_REQUEST_PENDING"))
            await _reaches(database, key, "cancel_requested")
            await _send(gw, "tiktok-shop/cancellation", type_11(2, "CANCELLATION_REQUEST_COMPLETE"))
            await _reaches(database, key, "cancelled")
        (row,) = (await orders_by_key(engine, [key])).values()
        assert row["reservations"] == ["released"]
        stock = await stock_of(engine, f"SKU-{u}")
        assert (stock["on_hand"], stock["allocated"], stock["available"]) == (10, 0, 10)
    finally:
        await engine.dispose()
