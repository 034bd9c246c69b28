"""TikTok Shop statement poller against the simulator served on loopback (the real client signing every call), the
real database and broker: an adjustment that only appears in a later statement — no webhook announces it —
reaches Kafka as a second settlement (the order's cumulative totals), exactly once however often the statements are
read again; a later claw-back row lowers the totals in a third."""

from __future__ import annotations

import asyncio
import json
import socket
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiokafka import ConsumerRecord
from sqlalchemy import text

from infra.db.engine import make_engine
from infra.db.roles import RoleUrls
from infra.messaging.admin import read_to_end
from infra.messaging.metrics import MessagingMetrics
from infra.messaging.topics import dead_letter_topic
from infra.runtime import ServiceRuntime
from services.contracts.channels import Channel
from services.gateway.app import build_runtime
from services.gateway.clients.http import MarketplaceUnavailable
from services.gateway.clients.tiktok_shop import TikTokShopClient
from services.gateway.deps import GatewayDeps
from services.gateway.emit import GatewayTopics
from services.gateway.pollers import read_cursor
from services.gateway.statement_poller import CONSUMER, CURSOR_CHANNEL, poll_tiktok_statements, run_statement_poller
from services.orders.catalogue import load_catalogue
from sim.fees import SettlementAmounts, compute_settlement
from sim.server import DEFAULT_CATALOGUE, Simulator
from sim.state import SimSettlement
from tests.integration.gateway_support import FakeClient, gateway_settings, kafka, outbox_events, prepare_topics
from tests.integration.messaging_support import wait_for
from tests.naming import topic_prefix
from tests.unit.sim.sim_support import SETTINGS, add_order, listings, tokens_for

pytestmark = pytest.mark.integration

SHOP = listings(Channel.TIKTOK_SHOP)[0].shop_id
RATES = {"platform_commission": 600, "transaction_fee": 200}
DAY = 86_400


@dataclass
class Polled:
    """The simulator on loopback, the gateway runtime (its relay publishes the outbox) and the poller's deps."""

    sim: Simulator
    runtime: ServiceRuntime
    deps: GatewayDeps
    topics: GatewayTopics
    bootstrap: str

    async def poll(self) -> int:
        return await poll_tiktok_statements(self.runtime.db, self.deps, SHOP, self.topics, datetime.now(UTC))

    async def rewind_cursor(self) -> None:
        """Move the shop's cursor back six days: the next poll reads every statement of this test again (and an
        earlier run's cursor cannot hide day one's statement)."""
        async with self.runtime.engine.begin() as conn:
            await conn.execute(
                text(
                    "UPDATE gateway.poll_cursors SET cursor = clock_timestamp() - interval '6 days' "
                    "WHERE channel = :c AND shop_id = :s"
                ),
                {"c": CURSOR_CHANNEL, "s": SHOP},
            )

    async def in_kafka(self, key: str) -> list[dict[str, Any]]:
        records = await read_to_end(self.bootstrap, self.topics.settlements)
        return [json.loads(r.value) for r in records if r.key == key.encode() and r.value]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
async def polled(database: RoleUrls, kafka_bootstrap: str) -> AsyncIterator[Polled]:
    sim = Simulator(load_catalogue(DEFAULT_CATALOGUE), SETTINGS)
    port = _free_port()
    async with sim.serve("127.0.0.1", port):
        tiktok = TikTokShopClient(
            f"http://127.0.0.1:{port}/tiktok_shop",
            SETTINGS.tiktok_app_key,
            SETTINGS.tiktok_app_secret,
            tokens_for(sim.app, "tiktok_shop", SHOP),
        )
        clients: dict[str, Any] = {c: FakeClient(c) for c in ("tokopedia", "shopee", "blibli")}
        clients["tiktok_shop"] = tiktok
        topics = GatewayTopics.with_prefix(topic_prefix("gs"))
        await prepare_topics(kafka_bootstrap, topics)
        runtime = build_runtime(
            make_engine(database.gateway),
            kafka(kafka_bootstrap, max_attempts=3),
            settings=gateway_settings(),
            clients=clients,
            topics=topics,
            consumer_name=f"gateway-normaliser-{uuid.uuid4().hex[:8]}",
            pollers=False,
        )
        await runtime.start()
        try:
            polled = Polled(sim, runtime, GatewayDeps(gateway_settings(), clients), topics, kafka_bootstrap)
            await polled.rewind_cursor()
            yield polled
        finally:
            await runtime.stop()
            await runtime.engine.dispose()
            await tiktok.aclose()


async def test_an_adjustment_in_a_later_statement_is_published_once(polled: Polled) -> None:
    now = int(time.time())
    order_id = f"5773{uuid.uuid4().int % 10**14:014d}"
    order = add_order(polled.sim.state, Channel.TIKTOK_SHOP, order_id, ["UNPAID", "COMPLETED"], start=now - 3 * DAY)
    polled.sim.state.settle(
        order, SimSettlement(f"8{order_id[-6:]}", now - 2 * DAY, (compute_settlement(50_000, RATES),))
    )
    key = f"tiktok_shop:{SHOP}:{order_id}"

    assert await polled.poll() == 1  # day one's statement: the order's first row

    # Two days later a statement holds an adjustment row of the order; nothing is pushed.
    adjustment = SimSettlement(f"8{order_id[-6:]}01", now - 60, (compute_settlement(5_000, RATES),))
    polled.sim.state.settle(order, adjustment)
    assert await polled.poll() == 1
    assert await polled.poll() == 0  # the same statements read again
    await polled.rewind_cursor()
    assert await polled.poll() == 0  # both statements read again: nothing is new

    # A later row takes 2,000 back (negative revenue and net; its fees and PPh 22 given back): the totals go down.
    back = compute_settlement(2_000, RATES)
    taken = SettlementAmounts(-back.gross, {n: -f for n, f in back.fees.items()}, -back.pph22, -back.net)
    polled.sim.state.settle(order, SimSettlement(f"8{order_id[-6:]}02", now - 30, (taken,)))
    assert await polled.poll() == 1
    assert await polled.poll() == 0

    async def all_in_kafka() -> bool:
        return len(await polled.in_kafka(key)) >= 3

    await wait_for(all_in_kafka, timeout=60, what="the three settlements published to Kafka")
    published = [e["data"] for e in await polled.in_kafka(key)]
    # Each row publishes the order's cumulative totals under its first row's id; the ledger posts the differences.
    first = f"8{order_id[-6:]}"
    assert [(s["marketplace_settlement_id"], s["gross_amount"], s["net_payout"]) for s in published] == [
        (first, 50_000, 50_000 - 3_000 - 1_000 - 250),
        (first, 55_000, 55_000 - 3_300 - 1_100 - 275),
        (first, 53_000, 53_000 - 3_180 - 1_060 - 265),
    ]
    assert len(await outbox_events(polled.runtime.engine, polled.topics.settlements, key, polled.bootstrap)) == 3


async def test_an_order_with_an_impossible_claw_back_is_dead_lettered_and_the_shop_goes_on(polled: Polled) -> None:
    """One order whose only row takes back money never paid (a cumulative revenue below zero) and one good order
    in the same statement: the good one is published once, the bad one's rows are dead-lettered once (the error
    naming the field, counted), the cursor moves past them; reading the statements again adds nothing."""
    now = int(time.time())
    bad_id, good_id = (f"577{d}{uuid.uuid4().int % 10**14:014d}" for d in (5, 6))
    bad = add_order(polled.sim.state, Channel.TIKTOK_SHOP, bad_id, ["UNPAID", "COMPLETED"], start=now - 3 * DAY)
    good = add_order(polled.sim.state, Channel.TIKTOK_SHOP, good_id, ["UNPAID", "COMPLETED"], start=now - 3 * DAY)
    back = compute_settlement(20_000, RATES)
    taken = SettlementAmounts(-back.gross, {n: -f for n, f in back.fees.items()}, -back.pph22, -back.net)
    polled.sim.state.settle(bad, SimSettlement(f"8{bad_id[-6:]}", now - 60, (taken,)))
    polled.sim.state.settle(good, SimSettlement(f"8{good_id[-6:]}", now - 60, (compute_settlement(40_000, RATES),)))
    bad_key, good_key = (f"tiktok_shop:{SHOP}:{o}" for o in (bad_id, good_id))
    metrics = MessagingMetrics()

    async def poll() -> int:
        db, deps, topics = polled.runtime.db, polled.deps, polled.topics
        return await poll_tiktok_statements(db, deps, SHOP, topics, datetime.now(UTC), metrics)

    before = datetime.now(UTC)
    assert await poll() == 1  # the good order; the bad one does not fail the round
    cursor = await read_cursor(polled.runtime.db, CURSOR_CHANNEL, SHOP)
    assert cursor is not None and cursor >= before - timedelta(seconds=1)  # moved past the bad order
    assert await poll() == 0
    await polled.rewind_cursor()
    assert await poll() == 0  # both orders read again: nothing published, nothing dead-lettered again
    dead_topic = dead_letter_topic(polled.topics.raw_deliveries)

    async def dead_in_kafka() -> list[ConsumerRecord[bytes, bytes]]:
        return [r for r in await read_to_end(polled.bootstrap, dead_topic) if r.key == bad_key.encode()]

    async def both_in_kafka() -> bool:
        return len(await polled.in_kafka(good_key)) >= 1 and len(await dead_in_kafka()) >= 1

    await wait_for(both_in_kafka, timeout=60, what="the good settlement and the bad order's dead letter")
    assert [e["data"]["gross_amount"] for e in await polled.in_kafka(good_key)] == [40_000]
    assert await polled.in_kafka(bad_key) == []
    [dead] = await dead_in_kafka()
    rows = json.loads(dead.value or b"")
    assert [r["id"] for r in rows] == [f"8{bad_id[-6:]}"]  # the order's statement rows, as the API answered them
    error = dict(dead.headers)["karya-dlq-error"].decode()
    assert "cumulative revenue_amount" in error and "below zero" in error  # names the field, not the value
    assert metrics.dead_letters.labels(CONSUMER, polled.topics.raw_deliveries)._value.get() == 1
    async with polled.runtime.engine.connect() as conn:
        stored = await conn.execute(
            text("SELECT count(*) FROM gateway.dead_letters WHERE consumer = :c AND key = :k"),
            {"c": CONSUMER, "k": bad_key.encode()},
        )
        assert stored.scalar_one() == 1


async def test_a_marketplace_that_cannot_answer_fails_the_round_and_keeps_the_cursor(polled: Polled) -> None:
    """An unreachable API (nothing listens on the port) is transient: the round raises, the cursor stays."""
    cursor = await read_cursor(polled.runtime.db, CURSOR_CHANNEL, SHOP)
    down = TikTokShopClient(
        f"http://127.0.0.1:{_free_port()}/tiktok_shop",
        SETTINGS.tiktok_app_key,
        SETTINGS.tiktok_app_secret,
        tokens_for(polled.sim.app, "tiktok_shop", SHOP),
    )
    try:
        deps = GatewayDeps(gateway_settings(), {**polled.deps.clients, "tiktok_shop": down})
        with pytest.raises(MarketplaceUnavailable):
            await poll_tiktok_statements(polled.runtime.db, deps, SHOP, polled.topics, datetime.now(UTC))
    finally:
        await down.aclose()
    assert await read_cursor(polled.runtime.db, CURSOR_CHANNEL, SHOP) == cursor


@pytest.mark.parametrize("enabled", [True, False])
async def test_without_a_tiktok_client_or_with_pollers_off_the_task_waits_for_stop(
    polled: Polled, enabled: bool
) -> None:
    clients: dict[str, Any] = {} if enabled else {"tiktok_shop": polled.deps.client("tiktok_shop")}
    deps = GatewayDeps(gateway_settings(pollers_enabled=enabled), clients)
    stop = asyncio.Event()
    task = asyncio.create_task(run_statement_poller(polled.runtime.db, deps, stop, polled.topics))
    await asyncio.sleep(0)
    assert not task.done()  # supervised: ending early would be restarted, so it idles until stop
    stop.set()
    await asyncio.wait_for(task, timeout=10)
