"""Webhook acceptance against the real database: verify, store once, answer as each channel expects."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from infra.db.engine import make_engine
from infra.db.roles import RoleUrls
from infra.runtime import ServiceRuntime
from services.gateway.app import build_runtime, read_settings
from services.gateway.emit import GatewayTopics
from services.gateway.settings import REQUIRED_SECRETS, env_name
from tests.contract_validation import validate_published
from tests.integration.gateway_support import (
    BASE_URL,
    ROUTES,
    SECRETS,
    body_for,
    gateway_settings,
    kafka,
    post,
    prepare_topics,
    scalar,
    signature,
    uid,
)
from tests.naming import topic_prefix

pytestmark = pytest.mark.integration
TOPICS = GatewayTopics.with_prefix(topic_prefix("gw"))
ORDER_STATUS: dict[str, str | int] = {"tokopedia": 220, "tiktok_shop": "AWAITING_SHIPMENT", "shopee": "READY_TO_SHIP"}
CANCEL_STATUS: dict[str, str | int] = {
    "tokopedia": 0,
    "tiktok_shop": "CANCELLATION_REQUEST_SUCCESS",
    "shopee": "CANCELLED",
}


Client = tuple[httpx.AsyncClient, AsyncEngine]


async def _client(database: RoleUrls, bootstrap: str, *, rotation: bool) -> tuple[ServiceRuntime, httpx.AsyncClient]:
    await prepare_topics(bootstrap, TOPICS)  # the relay of a later test publishes these rows
    runtime = build_runtime(
        make_engine(database.gateway),
        kafka(bootstrap),
        settings=gateway_settings(rotation=rotation),
        clients={},
        topics=TOPICS,
        pollers=False,
    )
    transport = httpx.ASGITransport(app=runtime.http_app())
    return runtime, httpx.AsyncClient(transport=transport, base_url=BASE_URL)


@pytest.fixture
async def gateway(database: RoleUrls, kafka_bootstrap: str) -> AsyncIterator[Client]:
    runtime, client = await _client(database, kafka_bootstrap, rotation=False)
    async with client:
        yield client, runtime.engine
    await runtime.engine.dispose()


@pytest.fixture
async def rotating(database: RoleUrls, kafka_bootstrap: str) -> AsyncIterator[Client]:
    runtime, client = await _client(database, kafka_bootstrap, rotation=True)
    async with client:
        yield client, runtime.engine
    await runtime.engine.dispose()


def _body(route: str, order: str) -> bytes:
    channel, kind = ROUTES[route]
    status = CANCEL_STATUS[channel] if kind == "order_cancellation" else ORDER_STATUS[channel]
    return body_for(route, order, status)


async def _count(engine: AsyncEngine, body: bytes) -> int:
    return int(await scalar(engine, "SELECT count(*) FROM gateway.raw_deliveries WHERE body = :b", b=body))


async def _stored(engine: AsyncEngine) -> tuple[int, int]:
    return (
        await scalar(engine, "SELECT count(*) FROM gateway.raw_deliveries"),
        await scalar(engine, "SELECT count(*) FROM gateway.outbox"),
    )


@pytest.mark.parametrize("route", sorted(ROUTES))
async def test_valid_delivery_is_stored_with_its_outbox_row(route: str, gateway: Client) -> None:
    client, engine = gateway
    order = str(10_000_000 + hash(route) % 1_000_000)
    body = _body(route, order)
    response = await post(client, route, body, headers={"User-Agent": "marketplace-push/1.0"})
    assert response.status_code == 200
    if route.startswith("shopee"):
        assert response.content == b""  # Shopee expects 2xx with an empty body
    else:
        assert response.json()["status"] == "ok"
    channel, kind = ROUTES[route]
    row_id, stored_body, headers, order_key = await _row(engine, body)
    assert stored_body == body  # the exact bytes
    assert order_key == f"{channel}:77001:{order}"
    assert headers["user-agent"] == "marketplace-push/1.0"
    assert not {"authorization", "authorization-hmac"} & set(headers)  # the signature is not kept
    payloads = await _outbox_for(engine, row_id)
    assert len(payloads) == 1
    envelope = validate_published(payloads[0])
    assert envelope["type"] == "karya.gateway.delivery_received.v1"
    assert envelope["subject"] == order_key
    assert envelope["data"]["webhook_type"] == kind and envelope["data"]["body"] == body.decode()


async def _row(engine: AsyncEngine, body: bytes) -> tuple[int, bytes, dict[str, str], str]:
    from sqlalchemy import text

    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text("SELECT delivery_id, body, headers, order_key FROM gateway.raw_deliveries WHERE body = :b"),
                {"b": body},
            )
        ).one()
    return int(row[0]), bytes(row[1]), dict(row[2]), str(row[3])


async def _outbox_for(engine: AsyncEngine, delivery_id: int) -> list[bytes]:
    from sqlalchemy import text

    async with engine.connect() as conn:
        rows = (
            (
                await conn.execute(
                    text(
                        "SELECT payload FROM gateway.outbox WHERE topic = :t "
                        "AND (convert_from(payload, 'UTF8')::jsonb -> 'data' ->> 'delivery_id')::bigint = :id"
                    ),
                    {"t": TOPICS.raw_deliveries, "id": delivery_id},
                )
            )
            .scalars()
            .all()
        )
    return [bytes(r) for r in rows]


@pytest.mark.parametrize("route", sorted(ROUTES))
@pytest.mark.parametrize("case", ["tampered body", "wrong secret", "missing header", "previous secret, no rotation"])
async def test_bad_signature_is_401_and_nothing_is_stored(route: str, case: str, gateway: Client) -> None:
    client, engine = gateway
    body = _body(route, "55555")
    before = await _stored(engine)
    headers = {"Content-Type": "application/json"}
    if case == "tampered body":
        headers |= signature(route, body)
        body = body.replace(b"55555", b"55556")
    elif case == "wrong secret":
        headers |= signature(route, body, secret="guessed-secret")
    elif case == "previous secret, no rotation":
        headers |= signature(route, body, secret=SECRETS[ROUTES[route][0]][1])
    response = await client.post(f"/webhooks/{route}", content=body, headers=headers)
    assert response.status_code == 401
    assert await _stored(engine) == before


@pytest.mark.parametrize("route", sorted(ROUTES))
async def test_previous_secret_is_accepted_during_rotation(route: str, rotating: Client) -> None:
    client, engine = rotating
    channel = ROUTES[route][0]
    old, new = _body(route, "60001"), _body(route, "60002")
    assert (await post(client, route, old, secret=SECRETS[channel][1])).status_code == 200
    assert (await post(client, route, new, secret=SECRETS[channel][0])).status_code == 200
    for body in (old, new):
        assert await _count(engine, body) == 1


async def test_oversize_is_413_with_or_without_content_length(gateway: Client) -> None:
    client, engine = gateway
    route = "tokopedia/order-status"
    limit = 64 * 1024
    padding = json.loads(_body(route, "70001"))
    padding["padding"] = "x" * (limit - len(json.dumps(padding)) - len(', "padding": ""'))
    at_limit = json.dumps(padding).encode()
    assert len(at_limit) == limit
    over = at_limit[:-1] + b" }"
    before = await _stored(engine)
    response = await post(client, route, over)
    assert response.status_code == 413

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: the limit holds while streaming
        for i in range(0, len(over), 4096):
            yield over[i : i + 4096]

    streamed = await client.post(
        f"/webhooks/{route}",
        content=chunks(),
        headers={"Content-Type": "application/json", **signature(route, over)},
    )
    assert "content-length" not in streamed.request.headers
    assert streamed.status_code == 413
    assert await _stored(engine) == before
    assert (await post(client, route, at_limit)).status_code == 200  # exactly the limit is fine


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", ""])
async def test_non_json_content_type_is_415(content_type: str, gateway: Client) -> None:
    client, engine = gateway
    route = "shopee/order-status"
    body = _body(route, "SN415")
    before = await _stored(engine)
    response = await client.post(
        f"/webhooks/{route}", content=body, headers={"Content-Type": content_type, **signature(route, body)}
    )
    assert response.status_code == 415
    assert await _stored(engine) == before
    ok = await post(client, route, body, headers={"Content-Type": "application/json; charset=utf-8"})
    assert ok.status_code == 200


@pytest.mark.parametrize("route", sorted(ROUTES))
async def test_ten_identical_deliveries_are_stored_once(route: str, gateway: Client) -> None:
    client, engine = gateway
    body = _body(route, "80001")
    responses = [await post(client, route, body) for _ in range(10)]
    assert {r.status_code for r in responses} == {200}
    if not route.startswith("shopee"):
        assert [r.json()["duplicate"] for r in responses] == [False] + [True] * 9
    delivery_id, *_ = await _row(engine, body)
    assert await _count(engine, body) == 1
    assert len(await _outbox_for(engine, delivery_id)) == 1


async def test_gateway_refuses_to_serve_without_secrets(
    database: RoleUrls, kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for field in REQUIRED_SECRETS:
        monkeypatch.delenv(env_name(field), raising=False)
    monkeypatch.setenv("KARYA_TIKTOK_APP_KEY", "present")
    with pytest.raises(SystemExit) as info:
        read_settings()  # what the composition root calls before it builds a gateway to serve
    message = str(info.value)
    assert "KARYA_TOKOPEDIA_WEBHOOK_SECRET" in message and "KARYA_SHOPEE_PARTNER_KEY" in message
    assert "KARYA_TIKTOK_APP_KEY" not in message
    runtime = build_runtime(
        make_engine(database.gateway), kafka(kafka_bootstrap), topics=TOPICS, pollers=False
    )  # builds without settings (to be described), and refuses to serve
    try:
        with pytest.raises(SystemExit, match="without its settings"):
            runtime.http_app()
    finally:
        await runtime.engine.dispose()


async def test_a_refused_tiktok_push_does_not_take_its_notification_id(gateway: Client) -> None:
    client, engine = gateway
    route = "tiktok-shop/cancellation"
    good = json.loads(body_for(route, "80077", "CANCELLATION_REQUEST_PENDING", notification_id=f"n-{uid()}"))
    bad = {**good, "data": {k: v for k, v in good["data"].items() if k != "cancel_status"}}
    refused = await post(client, route, json.dumps(bad).encode())
    assert refused.status_code == 422 and "data.cancel_status" in refused.json()["error"]
    accepted = await post(client, route, json.dumps(good).encode())
    assert accepted.status_code == 200 and accepted.json()["duplicate"] is False  # same tts_notification_id
    delivery_id, *_ = await _row(engine, json.dumps(good).encode())
    assert len(await _outbox_for(engine, delivery_id)) == 1
