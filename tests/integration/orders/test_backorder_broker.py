"""Scenario C by a backorder through the real broker: the orders and ledger processes as their roots build them, on
topics of their own and a database of the test's own. An order completes with no stock, its settlement is held in
unallocated proceeds; a catalogue load produces the batch, the orders relay publishes ``order_allocated`` and the
ledger consumer — which must not skip the type — releases and distributes it, once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import NamedTuple

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from infra.db.engine import make_engine
from infra.db.unit_of_work import UnitOfWork
from infra.messaging.admin import ensure_topics
from infra.settings import KafkaSettings
from services.ledger.app import build_runtime as ledger_runtime
from services.ledger.outbound import LedgerTopics
from services.orders.app import SCHEMA as ORDERS
from services.orders.app import build_runtime as orders_runtime
from services.orders.backorders import receive_catalogue
from services.orders.outbound import OrdersTopics
from tests.conftest import Services
from tests.integration.ledger.scenario_support import T, journal_of
from tests.integration.ledger.test_scenarios_unallocated import (
    scenario_c_batch,
    scenario_c_catalogue,
    scenario_c_distribution,
)
from tests.integration.ledger_support import fresh_database, new_inmate, settled
from tests.integration.messaging_support import wait_for
from tests.integration.orders_support import publish, status_event, uid
from tests.naming import topic_prefix

pytestmark = pytest.mark.integration


class Processes(NamedTuple):
    """Both services' topics, and the database they share."""

    orders: OrdersTopics
    ledger: LedgerTopics
    engine: AsyncEngine


@asynccontextmanager
async def both_services(services: Services) -> AsyncIterator[Processes]:
    """The orders and ledger runtimes (consumers and relays) in the test's event loop."""
    prefix = topic_prefix()
    kafka = KafkaSettings(
        bootstrap_servers=services.kafka_bootstrap,
        partitions=3,
        retry_backoff_ms=10,
        topic_prefix=prefix,
        completeness_audit_interval_s=0,
    )
    orders, ledger = OrdersTopics.with_prefix(prefix), LedgerTopics.with_prefix(prefix)
    await ensure_topics(
        services.kafka_bootstrap,
        [orders.order_events, orders.events, orders.stock_availability, ledger.settlements, ledger.entries],
        3,
    )
    async with fresh_database(services.admin_url) as db:
        runtimes = [
            orders_runtime(make_engine(db.urls.service), kafka, topics=orders),
            ledger_runtime(make_engine(db.urls.service), kafka, topics=ledger),
        ]
        engine = make_engine(db.urls.service, pool_size=2)
        for runtime in runtimes:
            await runtime.start()
        try:
            yield Processes(orders, ledger, engine)
        finally:
            for runtime in runtimes:
                await runtime.stop()
                await runtime.engine.dispose()
            await engine.dispose()


async def _posted(engine: AsyncEngine, key: str) -> set[str]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT posting_key FROM ledger.journal_entries WHERE order_key = :k"), {"k": key}
        )
        return {r[0].removeprefix(f"{key}:") for r in rows}


async def test_a_backorder_filled_by_a_catalogue_load_is_distributed_by_the_ledger_consumer(services: Services) -> None:
    u, (a, b) = uid(), sorted((new_inmate(), new_inmate()))
    bootstrap = services.kafka_bootstrap
    async with both_services(services) as run:
        async with run.engine.begin() as conn:
            await receive_catalogue(UnitOfWork(conn, ORDERS), scenario_c_catalogue(u), "test", run.orders)
        statuses = [
            status_event(u, "c-broker", raw, n, "shopee", qty=2, price=100_000, base=T)
            for n, raw in enumerate(["READY_TO_SHIP", "SHIPPED", "COMPLETED"])
        ]
        key = statuses[0].subject
        await publish(bootstrap, run.orders.order_events, statuses)
        fees = {"commission_fee": 12_000, "service_fee": 4_000}
        await publish(bootstrap, run.ledger.settlements, [settled(key, 200_000, T, fees=fees)])

        async def held() -> bool:
            return await _posted(run.engine, key) == {"completed", "settlement:ESC-1"}

        await wait_for(held, what="completion and settlement posted, the proceeds held")

        batch = scenario_c_batch(u, (a, 3), (b, 1))
        async with run.engine.begin() as conn:
            _, filled = await receive_catalogue(
                UnitOfWork(conn, ORDERS), scenario_c_catalogue(u, (batch,)), "test", run.orders
            )
        assert filled.order_keys == [key]
        expected = {"completed", "settlement:ESC-1", "release:s1", f"distribution:{batch.batch_id}"}

        async def distributed() -> bool:
            return await _posted(run.engine, key) == expected

        await wait_for(distributed, what="the allocation consumed, released and distributed")
        journal = await journal_of(run.engine, key)
        assert journal["release:s1"] == {
            ("clearing:unallocated_proceeds:sukamiskin", "D", 200_000),
            ("revenue:sales:sukamiskin", "C", 200_000),
        }
        assert journal[f"distribution:{batch.batch_id}"] == scenario_c_distribution(a, b)
        async with run.engine.connect() as conn:
            dead = "SELECT count(*) FROM ledger.dead_letters"
            assert (await conn.execute(text(dead))).scalar_one() == 0
