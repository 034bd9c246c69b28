"""``karya dlq parked`` against the real database: a delivery parked by the gateway's own :func:`park` (as the
gateway role, the only one that may read the table) is listed in text and JSON with its channel, order key,
attempts, age, next retry and reason, and never its body; a channel with nothing parked says so and exits 0.

Each test parks under a channel name of its own, so parked rows of concurrent tests never show up in it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import datetime

import pytest
from sqlalchemy import text
from typer.testing import CliRunner, Result

from infra.cli_root import CliRoot
from infra.db.engine import make_engine
from infra.db.roles import RoleUrls
from infra.db.unit_of_work import UnitOfWork
from infra.messaging.consumer import InboundEvent
from infra.messaging.delivery import Delivery
from infra.messaging.envelope import make_envelope
from infra.settings import KafkaSettings
from karya.dlq_cli import dlq_app
from karya.services import SERVICES
from services.gateway.app import SCHEMA, arrival
from services.gateway.parking import park
from tests.integration.gateway_support import gateway_settings, uid

pytestmark = pytest.mark.integration

NAME, ADDRESS = "Siti Rahayu", "Jl. Melati No. 5"
REASON = "order detail: unreachable: ConnectError"


@pytest.fixture
async def channel(database: RoleUrls) -> AsyncIterator[str]:
    """A channel name no other test parks under; its rows are deleted afterwards."""
    name = f"test_{uid()}"
    yield name
    engine = make_engine(database.gateway, pool_size=1)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("DELETE FROM gateway.parked_deliveries WHERE channel = :c"), {"c": name})
    finally:
        await engine.dispose()


async def _park(url: str, channel: str, key: str) -> InboundEvent:
    body = {"order_key": key, "buyer_name": NAME, "shipping": {"address": ADDRESS}}
    envelope = make_envelope(type="karya.gateway.delivery_received.v1", source="karya/tests", subject=key, data=body)
    event = InboundEvent(envelope, Delivery("raw", 0, 7, key.encode(), envelope.to_bytes(), (("h", NAME.encode()),)))
    engine = make_engine(url, pool_size=1)
    try:
        async with engine.begin() as conn:
            await park(UnitOfWork(conn, SCHEMA), [(arrival(event), channel, key, REASON)], settings=gateway_settings())
    finally:
        await engine.dispose()
    return event


async def _karya_dlq(database: RoleUrls, *args: str) -> Result:
    root = CliRoot(KafkaSettings(), {"service": database.service, "gateway": database.gateway}, SERVICES)
    # In a thread: the command runs its own event loop (asyncio.run), as it does from a shell.
    return await asyncio.to_thread(lambda: CliRunner().invoke(dlq_app, list(args), obj=root))


async def test_a_parked_delivery_is_listed_in_text_and_json_without_its_body(database: RoleUrls, channel: str) -> None:
    key = f"{channel}:s1:o-{uid()}"
    event = await _park(database.gateway, channel, key)

    listed = await _karya_dlq(database, "parked", "--channel", channel)
    assert listed.exit_code == 0, listed.output
    [line, footer] = listed.output.splitlines()
    assert line.startswith(f"{event.envelope.event_id}  {channel}  {key}  attempts=1  since=")
    assert "age=0m" in line and "next=" in line and line.endswith(REASON)
    assert footer == f"1 parked delivery(ies) for {channel}"

    as_json = await _karya_dlq(database, "parked", "--channel", channel, "--json")
    assert as_json.exit_code == 0, as_json.output
    [row] = [json.loads(x) for x in as_json.output.splitlines()]
    assert set(row) == {
        "event_id", "channel", "order_key", "attempts", "parked_at", "age_s", "next_attempt_at", "reason"
    }  # fmt: skip
    assert (row["event_id"], row["channel"], row["order_key"], row["attempts"], row["reason"]) == (
        str(event.envelope.event_id), channel, key, 1, REASON
    )  # fmt: skip
    since, retry = datetime.fromisoformat(row["parked_at"]), datetime.fromisoformat(row["next_attempt_at"])
    assert row["age_s"] >= 0 and retry > since
    for output in (listed.output, as_json.output):
        assert NAME not in output and ADDRESS not in output


async def test_nothing_parked_is_said_plainly_and_exits_zero(database: RoleUrls, channel: str) -> None:
    listed = await _karya_dlq(database, "parked", "--channel", channel)
    assert (listed.exit_code, listed.output) == (0, f"nothing parked for {channel}\n")
    as_json = await _karya_dlq(database, "parked", "--channel", channel, "--json")
    assert (as_json.exit_code, as_json.output) == (0, "")


async def test_only_the_gateway_role_url_is_used_and_its_absence_is_an_error(database: RoleUrls) -> None:
    root = CliRoot(KafkaSettings(), {"service": database.service}, SERVICES)  # a process without the gateway's URL
    result = await asyncio.to_thread(lambda: CliRunner().invoke(dlq_app, ["parked"], obj=root))
    assert result.exit_code == 2 and "KARYA_GATEWAY_DATABASE_URL is not set" in result.output
