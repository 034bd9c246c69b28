"""A buyer's name, phone and address pushed through every path of the gateway stay in their place.

Deliveries carry the buyer where marketplaces put them (``recipient``, ``customer``, ``buyer_*`` keys); some are
refused (a half-rupiah price, a body that is not JSON, an order-detail answer pydantic refuses with a message that
quotes the buyer). The dead letters' error texts, the ``karya-dlq-error`` headers read back from Kafka and every
log line carry none of the buyer's values; neither the auditor nor the service role (orders, ledger) can read
``gateway.raw_deliveries`` or a dead letter's payload, and the redacted view shows none of them; after the
retention the raw table itself no longer holds them, while dedupe still works.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
import structlog
from prometheus_client import CollectorRegistry
from pydantic import BaseModel, ValidationError
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine
from structlog.testing import capture_logs

from infra.db.engine import make_engine
from infra.db.roles import RoleUrls
from infra.errors import sqlstate_of
from infra.messaging.topics import dead_letter_topic
from services.gateway.deps import GatewayDeps
from services.gateway.retention import RetentionMetrics, redact_due, run_raw_retention
from tests.integration.gateway_support import (
    RunningGateway,
    api_order,
    body_for,
    gateway_settings,
    post,
    running_gateway,
    uid,
)
from tests.integration.messaging_support import read_topic, wait_for

pytestmark = pytest.mark.integration
_TABLES = ("raw_deliveries", "dead_letters")

NAME, PHONE, ADDRESS, EMAIL = "Siti Rahayu", "0812-3456-7890", "Jl. Melati No. 5", "siti.rahayu@example.id"
PERSONAL = (NAME, PHONE, ADDRESS, EMAIL)
# Where the marketplaces put the buyer (Tokopedia recipient/customer, Shopee buyer_username, TikTok buyer_email).
BUYER: dict[str, Any] = {
    "recipient": {"name": NAME, "phone": PHONE, "address": {"address_full": ADDRESS, "district": "Coblong"}},
    "customer": {"id": 8812, "name": NAME, "phone": PHONE, "email": EMAIL},
    "buyer_username": NAME,
    "buyer_email": EMAIL,
    "items": [{"id": 1, "note_to_seller": f"call {PHONE}"}],
}


def _value_free(thing: object) -> None:
    dumped = thing if isinstance(thing, str) else json.dumps(thing, default=repr)
    found = [p for p in PERSONAL if p in dumped]
    assert not found, (found, dumped[:2000])


def _with_buyer(body: bytes) -> bytes:
    return json.dumps(json.loads(body) | BUYER).encode()


class _ApiRecipient(BaseModel):
    name: int
    phone: int


def _refused_answer(what: str) -> ValidationError:
    """What an API client raises when pydantic refuses an answer: its message quotes the buyer."""
    try:
        _ApiRecipient.model_validate({"name": NAME, "phone": f"{PHONE} / {ADDRESS}"})
    except ValidationError as exc:
        assert NAME in str(exc)
        return exc
    raise AssertionError("the answer validated")


class Gateway(RunningGateway):
    """The gateway under test."""


@pytest.fixture
async def gateway(database: RoleUrls, kafka_bootstrap: str) -> AsyncIterator[Gateway]:
    async with running_gateway(Gateway, database.gateway, kafka_bootstrap, "gpd", max_attempts=2) as running:
        yield running


async def _rows(engine: AsyncEngine, sql: str, **params: Any) -> list[Any]:
    async with engine.connect() as conn:
        return list((await conn.execute(text(sql), params)).all())


async def _refused(engine: AsyncEngine, sql: str, **params: Any) -> str | None:
    """The SQLSTATE ``sql`` fails with (None if it runs)."""
    try:
        async with engine.begin() as conn:
            await conn.execute(text(sql), params)
    except DBAPIError as exc:
        return sqlstate_of(exc)
    return None


async def test_buyer_data_stays_in_the_raw_delivery_until_the_retention_redacts_it(
    gateway: Gateway, database: RoleUrls
) -> None:
    gw = gateway
    tts = gw.fakes["tiktok_shop"]
    half, api, fine = str(930_000_000 + int(uid(), 16) % 1_000_000), f"57{uid()}", f"SN{uid().upper()}"
    tts.orders[api] = api_order("tiktok_shop", "77001", api, "AWAITING_SHIPMENT")
    tts.failures[api] = 99
    tts.error = _refused_answer
    gw.fakes["shopee"].orders[fine] = api_order("shopee", "77001", fine, "READY_TO_SHIP")
    # Valid JSON up to the buyer, then cut off: not JSON, so nothing of it can be redacted key by key.
    broken = json.dumps({"fs_id": 1, "order_id": 5, **BUYER}).encode()[:-1] + b", }"
    posted = {
        "half": ("tokopedia/order-notification", _with_buyer(body_for("tokopedia/order-notification", half, 220))),
        "broken": ("tokopedia/order-status", broken),
        "api": (
            "tiktok-shop/order-status",
            _with_buyer(body_for("tiktok-shop/order-status", api, "AWAITING_SHIPMENT")),
        ),
        "fine": ("shopee/order-status", _with_buyer(body_for("shopee/order-status", fine, "READY_TO_SHIP"))),
    }
    half_doc = json.loads(posted["half"][1])
    half_doc["products"][0]["price"] = 25000.5
    posted["half"] = (posted["half"][0], json.dumps(half_doc).encode())

    # The two bodies that cannot be used are refused at the edge (422, kept, not published); the others go on.
    answers = {"half": 422, "broken": 422, "api": 200, "fine": 200}
    with capture_logs(processors=[structlog.processors.format_exc_info]) as logs:
        refusals = []
        for name, (route, body) in posted.items():
            answer = await post(gw.client, route, body)
            assert answer.status_code == answers[name], (name, answer.text)
            if answer.status_code == 422:
                refusals.append(answer.json()["error"])
        _value_free(refusals)
        non_integral = "non-integral amount: NonIntegralAmount: products[0].price: not a whole number of rupiah"
        assert any(non_integral in e for e in refusals)
        assert any("unparseable: ParseError: body is not JSON" in e for e in refusals)

        async def settled() -> bool:
            dead = await _rows(
                gw.engine, "SELECT count(*) FROM gateway.dead_letters WHERE consumer = :c", c=gw.consumer
            )
            applied = await _rows(
                gw.engine,
                "SELECT count(*) FROM gateway.inbox WHERE consumer = :c AND status = 'applied'",
                c=gw.consumer,
            )
            return int(dead[0][0]) == 1 and int(applied[0][0]) == 1

        await wait_for(settled, timeout=60, what="one delivery dead-lettered and one applied")
        dlq = await read_topic(gw.runtime.kafka.bootstrap_servers, dead_letter_topic(gw.topics.raw_deliveries), 1)

        # Dead letters: the error text names the refusal by codes and field paths only.
        errors = [
            r[0]
            for r in await _rows(gw.engine, "SELECT error FROM gateway.dead_letters WHERE consumer = :c", c=gw.consumer)
        ]
        _value_free(errors)
        assert not any("tokopedia" in e for e in errors)  # refused at the edge, never dead-lettered
        assert any(f"tiktok_shop order detail of tiktok_shop:77001:{api}: invalid" in e for e in errors)
        assert any("fields name (int_parsing), phone (int_parsing)" in e for e in errors)
        # The same texts on Kafka, in the DLQ records' headers.
        headers = [dict(r.headers)["karya-dlq-error"].decode() for r in dlq]
        assert sorted(headers) == sorted(errors)
        _value_free(headers)

        # The gateway's own role holds the bodies as received, buyer included (their place).
        digests = {name: hashlib.sha256(body).digest() for name, (_, body) in posted.items()}
        rows = await _rows(
            gw.engine,
            "SELECT body_sha256, delivery_id, body, body_bytes FROM gateway.raw_deliveries WHERE body_sha256 = ANY(:d)",
            d=list(digests.values()),
        )
        by_name = {name: next(r for r in rows if bytes(r[0]) == digest) for name, digest in digests.items()}
        ids = [int(r[1]) for r in by_name.values()]
        assert all(NAME.encode() in bytes(r[2]) for r in by_name.values())
        assert all(r[3] == len(posted[name][1]) for name, r in by_name.items())

        # The auditor: no access to the raw table; the redacted view shows metadata and bodies without the buyer.
        auditor = make_engine(database.auditor)
        try:
            assert await _refused(auditor, "SELECT body FROM gateway.raw_deliveries LIMIT 1") == "42501"
            assert await _refused(auditor, "SELECT payload FROM gateway.dead_letters LIMIT 1") == "42501"
            audited = await _rows(auditor, "SELECT error FROM gateway.dead_letters WHERE consumer = :c", c=gw.consumer)
            assert sorted(r[0] for r in audited) == sorted(errors)
            assert await _refused(auditor, "SELECT gateway.redact_raw_deliveries(interval '30 days', 10)") == "42501"
            view = {
                int(r[0]): r
                for r in await _rows(
                    auditor,
                    "SELECT delivery_id, channel, order_key, body_sha256, body_bytes, signature_verified, body, "
                    "headers, redacted_at FROM gateway.raw_deliveries_redacted WHERE delivery_id = ANY(:ids)",
                    ids=ids,
                )
            }
        finally:
            await auditor.dispose()
        assert set(view) == set(ids)
        _value_free([list(r) for r in view.values()])
        for name, row in by_name.items():
            seen = view[int(row[1])]
            assert seen.body_sha256 == digests[name].hex() and seen.body_bytes == len(posted[name][1])
            assert seen.signature_verified and seen.redacted_at is None
        assert view[int(by_name["broken"][1])].body is None  # not JSON: nothing shown
        shown = view[int(by_name["fine"][1])].body
        assert shown["data"]["ordersn"] == fine and shown["shop_id"] == 77001  # what is not personal stays
        assert shown["recipient"] == shown["customer"] == shown["buyer_username"] == "[redacted]"
        assert shown["items"] == [{"id": 1, "note_to_seller": "[redacted]"}]

        # The service role (orders, ledger): the same refusals, with the buyer's rows right there.
        service = make_engine(database.service)
        try:
            assert await _refused(service, "SELECT body FROM gateway.raw_deliveries LIMIT 1") == "42501"
            assert await _refused(service, "SELECT payload FROM gateway.dead_letters LIMIT 1") == "42501"
            assert await _refused(service, "SELECT gateway.redact_dead_letters(interval '30 days', 10)") == "42501"
            seen_errors = await _rows(
                service, "SELECT error FROM gateway.dead_letters WHERE consumer = :c", c=gw.consumer
            )
            assert sorted(r[0] for r in seen_errors) == sorted(errors)
            redacted_ids = "SELECT delivery_id FROM gateway.raw_deliveries_redacted WHERE delivery_id = ANY(:ids)"
            assert {int(r[0]) for r in await _rows(service, redacted_ids, ids=ids)} == set(ids)
        finally:
            await service.dispose()

        # The dead letters keep the delivery event, body and buyer included (readable by the gateway role only).
        payloads = "SELECT payload FROM gateway.dead_letters WHERE consumer = :c"
        assert all(NAME.encode() in bytes(r[0]) for r in await _rows(gw.engine, payloads, c=gw.consumer))

        # Retention: the gateway's task redacts them in place once they are older than the retention.
        migrator = make_engine(database.migrator)
        try:
            async with migrator.begin() as conn:
                await conn.execute(
                    text(
                        "UPDATE gateway.raw_deliveries SET received_at = received_at - interval '31 days' "
                        "WHERE delivery_id = ANY(:ids)"
                    ),
                    {"ids": ids},
                )
                await conn.execute(
                    text(
                        "UPDATE gateway.dead_letters SET created_at = created_at - interval '31 days' "
                        "WHERE consumer = :c"
                    ),
                    {"c": gw.consumer},
                )
        finally:
            await migrator.dispose()
        settings = gateway_settings(gateway_raw_retention_batch=2, gateway_raw_retention_interval_s=0.2)
        registry = CollectorRegistry()
        metrics = RetentionMetrics(registry)
        stop = asyncio.Event()
        task = asyncio.create_task(run_raw_retention(gw.runtime.db, GatewayDeps(settings, gw.fakes), stop, metrics))
        try:

            async def redacted() -> bool:
                dead = "SELECT count(*) FROM gateway.dead_letters WHERE consumer = :c AND payload_redacted_at IS NULL"
                if int((await _rows(gw.engine, dead, c=gw.consumer))[0][0]) > 0:
                    return False
                left = (
                    "SELECT count(*) FROM gateway.raw_deliveries WHERE delivery_id = ANY(:ids) AND redacted_at IS NULL"
                )
                return int((await _rows(gw.engine, left, ids=ids))[0][0]) == 0

            await wait_for(redacted, timeout=30, what="the retention task redacting the backdated deliveries")
        finally:
            stop.set()
            await task
        counted = {t: registry.get_sample_value("karya_gateway_raw_redacted_total", {"table": t}) or 0 for t in _TABLES}
        assert counted["raw_deliveries"] >= len(ids) and counted["dead_letters"] >= 1

    _value_free(logs)
    assert any(e["event"] == "raw_deliveries_redacted" for e in logs)

    after = await _rows(
        gw.engine,
        "SELECT body_sha256, body, headers, body_bytes FROM gateway.raw_deliveries WHERE delivery_id = ANY(:ids)",
        ids=ids,
    )
    _value_free([[bytes(r[1]).decode(), r[2]] for r in after])
    assert {bytes(r[0]) for r in after} == set(digests.values())  # what arrived can still be proven
    assert sorted(r[3] for r in after) == sorted(len(b) for _, b in posted.values())
    redacted_fine = next(json.loads(bytes(r[1])) for r in after if bytes(r[0]) == digests["fine"])
    assert redacted_fine["data"]["ordersn"] == fine and redacted_fine["recipient"] == "[redacted]"
    assert next(bytes(r[1]) for r in after if bytes(r[0]) == digests["broken"]) == b""
    dead = [json.loads(bytes(r[0])) for r in await _rows(gw.engine, payloads, c=gw.consumer)]
    _value_free(dead)
    assert [d["data"]["delivery_id"] for d in dead] == [int(by_name["api"][1])]

    # Dedupe does not depend on the stored body: the same deliveries again change nothing.
    for name, (route, body) in posted.items():
        assert (await post(gw.client, route, body)).status_code == answers[name]
    count = "SELECT count(*) FROM gateway.raw_deliveries WHERE body_sha256 = ANY(:d) OR delivery_id = ANY(:ids)"
    assert int((await _rows(gw.engine, count, d=list(digests.values()), ids=ids))[0][0]) == len(ids)


async def test_only_the_retention_function_changes_a_raw_delivery(gateway: Gateway) -> None:
    gw = gateway
    assert await _refused(gw.engine, "UPDATE gateway.raw_deliveries SET body = ''::bytea") == "42501"
    assert await _refused(gw.engine, "DELETE FROM gateway.raw_deliveries") == "42501"
    # Never bodies younger than a day, whatever the caller asks.
    assert await _refused(gw.engine, "SELECT gateway.redact_raw_deliveries(interval '1 hour', 10)") == "22023"
    assert await redact_due(gw.runtime.db, timedelta(days=3650), 10) == 0


@pytest.mark.parametrize(
    ("body", "shown"),
    [
        (
            b'{"Recipient-Name": "Siti Rahayu", "data": {"buyerPhone": "0812-3456-7890", "status": "PAID"}}',
            {"Recipient-Name": "[redacted]", "data": {"buyerPhone": "[redacted]", "status": "PAID"}},
        ),
        (
            b'{"orders": [{"id": 1, "shipping": {"Address_Line": "Jl. Melati No. 5", "zip_code": "40132"}}], "n": 1}',
            {"orders": [{"id": 1, "shipping": {"Address_Line": "[redacted]", "zip_code": "[redacted]"}}], "n": 1},
        ),
        (
            b'{"customer": null, "email_verified": true, "note": ["x"]}',
            {"customer": "[redacted]", "email_verified": "[redacted]", "note": "[redacted]"},
        ),
        (b'"Siti Rahayu"', None),  # not an object: nothing shown
        (b'["Siti Rahayu"]', None),
        (b"\xff\xfe not utf-8", None),
        (b'{"name": "Siti', None),
    ],
)
async def test_personal_keys_are_blanked_at_any_depth_in_any_spelling(
    service_engine: AsyncEngine, body: bytes, shown: object
) -> None:
    (row,) = await _rows(service_engine, "SELECT gateway.redacted_body(:b)", b=body)
    assert row[0] == shown
