"""Errors reach the logs as value-free facts (class, SQLSTATE, field paths), never with the values they quote.

Each test puts a recognisable personal value (a buyer's name, phone, address) into an exception's text and
checks that no captured log line carries it, while the facts an on-call engineer needs are there. The log lines
are captured after ``format_exc_info``, so a traceback logged with the message would be caught too.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any, cast

import httpx
import pytest
import structlog
from fastapi import FastAPI
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine
from structlog.testing import capture_logs

from infra.db.unit_of_work import Database
from infra.errors import describe_error, sqlstate_of
from infra.messaging.metrics import MessagingMetrics
from infra.messaging.relay import OutboxRelay
from services.gateway.clients.base import MarketplaceApiError
from services.gateway.deliveries import DeliveryStore
from services.gateway.deps import GatewayDeps
from services.gateway.emit import GatewayTopics
from services.gateway.pollers import _every, run_blibli_poller
from services.gateway.webhooks import make_webhook_router
from services.ledger.domain.errors import RefundError
from services.orders.outbound import OrdersTopics
from services.orders.sweeper import run_sweeper
from tests.integration.gateway_support import BASE_URL, gateway_settings, post

NAME, PHONE, ADDRESS = "Siti Rahayu", "+6281234567890", "Jl. Merdeka 17, Bandung"
PERSONAL = (NAME, PHONE, ADDRESS)


class _Buyer(BaseModel):
    name: int
    phone: str = Field(pattern=r"^[0-9]+$")
    notes: dict[str, int]


def _validation_error() -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        _Buyer.model_validate({"name": NAME, "phone": PHONE, "notes": {ADDRESS: ADDRESS}})
    return caught.value


class _PgError(Exception):
    """Stands in for asyncpg's error: PostgreSQL quotes the value it refused."""

    sqlstate = "22P02"


def _db_error() -> DBAPIError:
    driver = _PgError(f'invalid input syntax for type uuid: "{NAME} {PHONE}"')
    try:
        try:
            raise driver
        except _PgError as exc:
            raise DBAPIError("SELECT CAST(CAST($1 AS text) AS uuid)", None, exc) from exc
    except DBAPIError as wrapped:
        return wrapped


def _assert_value_free(logs: Sequence[Mapping[str, object]]) -> str:
    text = json.dumps(logs, default=repr)
    for value in PERSONAL:
        assert value not in text
    return text


@contextmanager
def _captured() -> Iterator[list[MutableMapping[str, Any]]]:
    with capture_logs(processors=[structlog.processors.format_exc_info]) as logs:
        yield logs


def test_a_validation_error_is_described_by_field_paths_and_types_only() -> None:
    exc = _validation_error()
    assert NAME in str(exc)  # pydantic quotes the input: what must not reach a log
    facts = describe_error(exc)
    assert facts["error"] == "ValidationError" and facts["model"] == "_Buyer"
    assert facts["fields"] == [
        {"loc": "name", "type": "int_parsing"},
        {"loc": "phone", "type": "string_pattern_mismatch"},
        {"loc": "notes.*", "type": "int_parsing"},  # a free-form mapping's key is input: not kept
    ]
    _assert_value_free([facts])


def test_a_database_error_is_described_by_class_and_sqlstate_only() -> None:
    exc = _db_error()
    assert NAME in str(exc)
    assert sqlstate_of(exc) == "22P02"
    facts = describe_error(exc)
    assert facts["error"] == "DBAPIError" and facts["sqlstate"] == "22P02"
    assert facts["causes"] == ["_PgError"]
    assert "detail" not in facts
    _assert_value_free([facts])


def test_sqlstate_is_read_from_the_drivers_cause_too() -> None:
    inner = _PgError("deadlock detected")
    outer = Exception("adapted")
    outer.__cause__ = inner
    assert sqlstate_of(DBAPIError("SELECT 1", None, outer)) == "22P02"
    assert sqlstate_of(ValueError("x")) is None


def test_only_messages_declared_loggable_are_kept() -> None:
    refund = RefundError("order shopee:s1:o1: refund r1 of 5000 brings refunds to 12000, more than the gross 10000")
    assert describe_error(refund)["detail"] == str(refund)
    assert "detail" not in describe_error(MarketplaceApiError(f"blibli API GET /orders: HTTP 500: {NAME}"))


def test_frames_name_project_code_without_the_message() -> None:
    def fail() -> None:
        raise MarketplaceApiError(f"answer is not a JSON object: [{{'buyer': '{NAME}'}}]")

    with pytest.raises(MarketplaceApiError) as caught:
        fail()
    at = describe_error(caught.value)["at"]
    assert isinstance(at, list) and at[-1].startswith("tests/unit/test_error_logging.py:")
    _assert_value_free([describe_error(caught.value)])


async def test_poller_round_failure_is_logged_without_the_api_answer() -> None:
    stop = asyncio.Event()

    async def work() -> int:
        stop.set()
        raise MarketplaceApiError(f"blibli API GET /orders: answer is not a JSON object: [{NAME}, {PHONE}]")

    with _captured() as logs:
        await _every("blibli", 0.01, stop, work)
    text = _assert_value_free(logs)
    assert [e["event"] for e in logs] == ["poller_round_failed"]
    assert logs[0]["error"] == "MarketplaceApiError" and "poller_round_failed" in text


async def test_blibli_store_failure_is_logged_without_the_database_text() -> None:
    stop = asyncio.Event()

    class _Engine:
        def connect(self) -> None:
            stop.set()
            raise _db_error()

    settings = SimpleNamespace(pollers_enabled=True, blibli_stores=["store-1"], blibli_poll_interval_s=0.01)
    deps = cast(GatewayDeps, SimpleNamespace(settings=settings))
    with _captured() as logs:
        await run_blibli_poller(Database(cast(AsyncEngine, _Engine()), "gateway"), deps, stop, GatewayTopics())
    _assert_value_free(logs)
    assert [(e["event"], e["store"], e["sqlstate"]) for e in logs] == [("blibli_poll_failed", "store-1", "22P02")]


async def test_sweeper_failure_is_logged_without_the_database_text() -> None:
    stop = asyncio.Event()

    class _Engine:
        def begin(self) -> None:
            stop.set()
            raise _db_error()

    with _captured() as logs:
        await run_sweeper(cast(AsyncEngine, _Engine()), "orders", stop, OrdersTopics(), interval_s=0.01)
    _assert_value_free(logs)
    assert [(e["event"], e["error"], e["sqlstate"]) for e in logs] == [("sweep_failed", "DBAPIError", "22P02")]
    assert "exception" not in logs[0]  # no traceback: its last line is the message


async def test_relay_publish_failure_is_logged_without_the_database_text() -> None:
    stop = asyncio.Event()

    class _Relay(OutboxRelay):
        async def recover_in_flight(self) -> int:
            return 0

        async def publish_once(self, producer: object) -> int:
            stop.set()
            raise _db_error()

    relay = _Relay(engine=cast(AsyncEngine, None), schema="s", bootstrap_servers="-", metrics=MessagingMetrics())
    with _captured() as logs:
        await relay._loop(cast(Any, None), stop)
    _assert_value_free(logs)
    assert [(e["event"], e["schema"], e["sqlstate"]) for e in logs] == [("outbox_publish_failed", "s", "22P02")]


async def test_a_webhook_that_cannot_be_stored_is_answered_and_logged_without_its_body() -> None:
    class _FailingStore:
        async def store(self, *args: object, **kwargs: object) -> None:
            raise _db_error()

    app = FastAPI()
    app.include_router(make_webhook_router(gateway_settings(), cast(DeliveryStore, _FailingStore())))
    body = json.dumps({"fs_id": 1, "order_id": 7, "order_status": 220, "recipient": {"name": NAME}}).encode()
    with _captured() as logs:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL) as client:
            answer = await post(client, "tokopedia/order-notification", body)
    assert answer.status_code == 500
    _assert_value_free(logs)
    assert [(e["event"], e["channel"], e["sqlstate"]) for e in logs] == [("webhook_store_failed", "tokopedia", "22P02")]
