"""Helpers for gateway tests: settings with test secrets, signed requests, bodies, a fake API client."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from infra.db.engine import make_engine
from infra.messaging.admin import ensure_topics, read_to_end
from infra.runtime import ServiceRuntime
from infra.settings import KafkaSettings
from services.gateway.clients.base import ApiOrder, ApiOrderLine, ApiSettlement, MarketplaceApiError
from services.gateway.clients.refunds import ApiRefund
from services.gateway.emit import GatewayTopics
from services.gateway.settings import GatewaySettings

BASE_URL = "http://127.0.0.1:8083"
SECRETS = {
    "tokopedia": ("toko-secret-now-0001", "toko-secret-before-01"),
    "tiktok_shop": ("tts-secret-now-00001", "tts-secret-before-001"),
    "shopee": ("shopee-key-now-00001", "shopee-key-before-001"),
}
TIKTOK_APP_KEY = "tts-app-key"
ROUTES = {
    "tokopedia/order-notification": ("tokopedia", "order_notification"),
    "tokopedia/order-status": ("tokopedia", "order_status"),
    "tokopedia/order-cancellation": ("tokopedia", "order_cancellation"),
    "tiktok-shop/order-status": ("tiktok_shop", "order_status"),
    "tiktok-shop/cancellation": ("tiktok_shop", "order_cancellation"),
    "shopee/order-status": ("shopee", "order_status"),
}
NOW = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


def uid() -> str:
    """A short unique suffix."""
    return uuid.uuid4().hex[:8]


def gateway_settings(*, rotation: bool = False, **overrides: Any) -> GatewaySettings:
    """Settings with the test secrets (and the previous ones when ``rotation``)."""
    values: dict[str, Any] = {
        "tokopedia_webhook_secret": SECRETS["tokopedia"][0],
        "tiktok_app_key": TIKTOK_APP_KEY,
        "tiktok_app_secret": SECRETS["tiktok_shop"][0],
        "shopee_partner_id": "2001",
        "shopee_partner_key": SECRETS["shopee"][0],
        "blibli_api_key": "blibli-key",
        "blibli_api_secret": "blibli-api-secret-01",
        "gateway_public_url": BASE_URL,
        "backstop_min_age_s": 60.0,
        # Test bodies are stamped from NOW (an hour ago) up to hours ahead; the window's edges are unit-tested.
        "webhook_clock_skew_s": 86_400.0,
    }
    if rotation:
        values |= {
            "tokopedia_webhook_secret_previous": SECRETS["tokopedia"][1],
            "tiktok_app_secret_previous": SECRETS["tiktok_shop"][1],
            "shopee_partner_key_previous": SECRETS["shopee"][1],
        }
    return GatewaySettings(**(values | overrides))


def kafka(bootstrap: str, **overrides: Any) -> KafkaSettings:
    """Kafka settings for tests: few partitions, fast retries."""
    return KafkaSettings(bootstrap_servers=bootstrap, partitions=3, retry_backoff_ms=10, **overrides)


async def prepare_topics(bootstrap: str, topics: GatewayTopics) -> None:
    """Create the gateway's topics under a test prefix (with their dead-letter topics)."""
    await ensure_topics(bootstrap, [topics.raw_deliveries, topics.order_events, topics.settlements], 3)


def signature(route: str, body: bytes, secret: str | None = None) -> dict[str, str]:
    """The signature header a marketplace computes, written out from the channel contract."""
    channel = ROUTES[route][0]
    key = (secret or SECRETS[channel][0]).encode()
    if channel == "tokopedia":
        return {"Authorization-Hmac": hmac.new(key, body, hashlib.sha256).hexdigest()}
    if channel == "tiktok_shop":
        return {"Authorization": hmac.new(key, TIKTOK_APP_KEY.encode() + body, hashlib.sha256).hexdigest()}
    url = f"{BASE_URL}/webhooks/{route}".encode()
    return {"Authorization": hmac.new(key, url + b"|" + body, hashlib.sha256).hexdigest()}


async def post(
    client: httpx.AsyncClient,
    route: str,
    body: bytes,
    *,
    secret: str | None = None,
    sign: bool = True,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """POST a (signed) JSON body to a webhook route."""
    all_headers = {"Content-Type": "application/json", **(signature(route, body, secret) if sign else {})}
    return await client.post(f"/webhooks/{route}", content=body, headers=all_headers | (headers or {}))


def unix(moment: datetime) -> int:
    """Unix seconds."""
    return int(moment.timestamp())


def body_for(
    route: str,
    order: str,
    status: str | int,
    *,
    minutes: int = 0,
    shop: str = "77001",
    price: object = 25000,
    quantity: int = 2,
    notification_id: str | None = None,
) -> bytes:
    """A webhook body of ``route`` for ``order`` in ``status`` at NOW + minutes."""
    t = unix(NOW + timedelta(minutes=minutes))
    channel, kind = ROUTES[route]
    doc: dict[str, Any]
    if channel == "tokopedia":
        doc = {
            "fs_id": 13004,
            "order_id": int(order) if order.isdigit() else order,
            "shop_id": int(shop),
            "order_status": int(status),
            "update_time": t,
        }
        if kind == "order_notification":
            doc |= {
                "create_time": t,
                "invoice_ref_num": f"INV/{order}",
                "products": [{"id": 456, "Name": "Sarung tangan", "quantity": quantity, "price": price}],
                "amt": {
                    "ttl_product_price": 25000 * quantity,
                    "shipping_cost": 9000,
                    "insurance_cost": 0,
                    "ttl_amount": 25000 * quantity + 9000,
                    "voucher_amount": 0,
                },
            }
        if kind == "order_cancellation":
            doc["reason"] = "buyer asked"
    elif channel == "tiktok_shop":
        data: dict[str, Any] = {"order_id": order, "order_status": status, "update_time": t}
        if kind == "order_cancellation":  # type 11 as published: a cancel_status, no order_status
            data = {
                "order_id": order,
                "cancellations_role": "BUYER",
                "cancel_status": status,
                "cancel_id": f"c-{order}",
                "create_time": t,
            }
        doc = {
            "type": 11 if kind == "order_cancellation" else 1,
            "tts_notification_id": notification_id or f"n-{order}-{status}-{minutes}",
            "shop_id": shop,
            "timestamp": t,
            "data": data,
        }
    else:
        doc = {
            "data": {"ordersn": order, "status": status, "update_time": t},
            "shop_id": int(shop),
            "code": 3,
            "timestamp": t,
        }
    return json.dumps(doc).encode()


@dataclass
class FakeClient:
    """An in-memory marketplace API (the real HTTP clients are tested against the simulator elsewhere)."""

    channel: str
    orders: dict[str, ApiOrder] = field(default_factory=dict)
    settlements: dict[str, ApiSettlement] = field(default_factory=dict)
    listed: list[ApiOrder] = field(default_factory=list)
    failures: dict[str, int] = field(default_factory=dict)
    error: Callable[[str], Exception] = lambda what: MarketplaceApiError(f"simulated outage on {what}")
    calls: list[tuple[str, str]] = field(default_factory=list)
    windows: list[tuple[datetime, datetime]] = field(default_factory=list)
    refunded: dict[str, list[ApiRefund]] = field(default_factory=dict)

    def _maybe_fail(self, what: str, order_id: str) -> None:
        self.calls.append((what, order_id))
        if self.failures.get(order_id, 0) > 0:
            self.failures[order_id] -= 1
            raise self.error(f"{what} {order_id}")

    async def order_detail(self, shop_id: str, order_id: str) -> ApiOrder:
        """The stored order."""
        self._maybe_fail("detail", order_id)
        if order_id not in self.orders:
            raise MarketplaceApiError(f"order {order_id} not found")
        return self.orders[order_id]

    async def settlement(self, shop_id: str, order_id: str) -> ApiSettlement | None:
        """The stored settlement, if any."""
        self._maybe_fail("settlement", order_id)
        return self.settlements.get(order_id)

    async def refunds(self, shop_id: str, order_id: str) -> list[ApiRefund]:
        """The stored refunds of an order."""
        self._maybe_fail("refunds", order_id)
        return list(self.refunded.get(order_id, []))

    async def orders_updated_between(self, shop_id: str, start: datetime, end: datetime) -> list[ApiOrder]:
        """Listed orders updated in [start, end)."""
        self.windows.append((start, end))
        return [o for o in self.listed if o.shop_id == shop_id and start <= o.update_time < end]


def api_order(
    channel: str,
    shop: str,
    order: str,
    status: str,
    minutes: int = 0,
    *,
    price: int = 25000,
    quantity: int = 2,
    product: str = "456",
) -> ApiOrder:
    """An order-detail answer with one line."""
    return ApiOrder(
        channel,
        shop,
        order,
        status,
        NOW + timedelta(minutes=minutes),
        (ApiOrderLine(product, None, quantity, price),),
        price * quantity,
    )


def api_settlement(channel: str, shop: str, order: str, *, gross: int = 50000, settled: bool = True) -> ApiSettlement:
    """A settlement of ``gross`` with a commission and PPh 22 (0.5 %)."""
    fee, tax = gross // 20, gross // 200
    return ApiSettlement(
        channel,
        shop,
        order,
        f"st-{order}",
        gross,
        {"commission_fee": fee},
        tax,
        gross - fee - tax,
        NOW + timedelta(days=1) if settled else None,
    )


async def scalar(engine: AsyncEngine, sql: str, **params: Any) -> Any:
    """One value."""
    async with engine.connect() as conn:
        return (await conn.execute(text(sql), params)).scalar_one()


async def outbox_events(
    engine: AsyncEngine, topic: str, key: str, bootstrap: str | None = None
) -> list[dict[str, Any]]:
    """Envelopes (as dicts) the gateway emitted for ``topic`` and subject ``key``, in order. With ``bootstrap`` (a
    test whose relay runs): what the relay already published to Kafka (it deletes those rows), then what is still
    in the outbox; without: the outbox only."""
    async with engine.connect() as conn:
        pending = (
            (
                await conn.execute(
                    text(
                        "SELECT payload FROM gateway.outbox WHERE topic = :t AND convert_from(key, 'UTF8') = :k "
                        "ORDER BY id"
                    ),
                    {"t": topic, "k": key},
                )
            )
            .scalars()
            .all()
        )
    events = [] if bootstrap is None else await _published(bootstrap, topic, key.encode())
    seen = {e["event_id"] for e in events}
    events += [e for e in (json.loads(bytes(r)) for r in pending) if e["event_id"] not in seen]
    return events


async def _published(bootstrap: str, topic: str, key: bytes) -> list[dict[str, Any]]:
    """Envelopes of ``topic`` with ``key`` published so far (one key: one partition, so in offset order)."""
    return [json.loads(r.value) for r in await read_to_end(bootstrap, topic) if r.key == key and r.value]


@dataclass
class RunningGateway:
    """A gateway runtime started for a test: its app client, engine, topics, normaliser name and fake APIs."""

    runtime: ServiceRuntime
    client: httpx.AsyncClient
    engine: AsyncEngine
    topics: GatewayTopics
    consumer: str
    fakes: dict[str, FakeClient]


_G = TypeVar("_G", bound=RunningGateway)


@asynccontextmanager
async def running_gateway(
    cls: type[_G], database_url: str, bootstrap: str, tag: str, *, max_attempts: int
) -> AsyncIterator[_G]:
    """Start the gateway as ``services.gateway.app`` wires it (no pollers) on this session's topics, with fake
    marketplace APIs; stop it on exit."""
    from services.gateway.app import build_runtime
    from tests.naming import topic_prefix

    topics = GatewayTopics.with_prefix(topic_prefix(tag))
    await prepare_topics(bootstrap, topics)
    fakes = {c: FakeClient(c) for c in ("tokopedia", "tiktok_shop", "shopee", "blibli")}
    consumer = f"gateway-normaliser-{uid()}"
    runtime = build_runtime(
        make_engine(database_url),
        kafka(bootstrap, max_attempts=max_attempts),
        settings=gateway_settings(),
        clients=fakes,
        topics=topics,
        consumer_name=consumer,
        pollers=False,
    )
    await runtime.start()
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=runtime.http_app()), base_url=BASE_URL)
    try:
        yield cls(runtime, client, runtime.engine, topics, consumer, fakes)
    finally:
        await client.aclose()
        await runtime.stop()
        await runtime.engine.dispose()
