"""A posting batch costs a fixed handful of round trips to PostgreSQL, whatever it holds: two reads of the batch's
orders (facts locked first, with closed periods and the policy stamp; then parked events taken and ended orders, in
a snapshot taken after the locks), one read of the posted keys and, for refunds, the balances they may take back
from, one lock of the journal (accounts opened, segment heads locked, sequence numbers drawn, posted keys read) and
ONE statement of writes (facts, entries and lines, heads, slips, parked events, the outbox). Every round trip waits
for a PostgreSQL that shares the box with the broker and the services, so this is the shape the latency depends
on."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import event, text

from infra.db.engine import make_engine
from infra.db.unit_of_work import UnitOfWork
from infra.messaging.envelope import Envelope, make_envelope
from services.ledger.adapters.batch_reads import OrdersRead, read_orders
from tests.conftest import Services
from tests.integration.ledger_support import fresh_database, new_processor, post
from tests.unit.test_bench_plan_only import workload

pytestmark = pytest.mark.integration


def _kind(sql: str) -> str:
    """What a statement of the posting use case is, by the tables it names."""
    if sql.startswith("WITH k AS MATERIALIZED") and "order_facts" in sql:
        return "lock orders"
    if sql.startswith("WITH k AS MATERIALIZED") and "pending_events" in sql:
        return "take parked"
    if sql.startswith("WITH a AS (") and "chain_segments" in sql:
        return "lock journal"
    if sql.startswith(("WITH w0 AS", "INSERT", "UPDATE")):  # several parts, or one alone
        return "writes"
    if "journal_entries" in sql and "account_balances" in sql:
        return "posted keys and balances"
    for table, kind in (
        ("closed_periods", "closed periods"),
        ("split_policies", "policies"),
        ("tax_settings", "tax settings"),
        ("journal_entries", "posted keys"),
        ("account_balances", "balances"),
    ):
        if table in sql:
            return kind
    return sql[:60]


async def test_a_batch_posts_in_a_fixed_handful_of_round_trips(services: Services) -> None:
    records = workload()
    market = [Envelope.from_bytes(v) for topic, _, v in records if topic == "market"]
    orders = [Envelope.from_bytes(v) for topic, _, v in records if topic == "orders"]
    async with fresh_database(services.admin_url) as db:
        engine = make_engine(db.urls.service, pool_size=1)
        statements: list[str] = []

        def record(*args: Any) -> None:
            statements.append(str(args[2]))

        event.listen(engine.sync_engine, "before_cursor_execute", record)
        try:
            processor = new_processor()
            assert await post(engine, processor, market) == []  # every settlement and refund waits for its sale
            parked = [_kind(s) for s in statements]
            statements.clear()
            assert await post(engine, processor, orders) == []  # the sales, and with them everything parked
            posted = [_kind(s) for s in statements]
            async with engine.connect() as conn:
                entries = (await conn.exec_driver_sql("SELECT count(*) FROM ledger.journal_entries")).scalar_one()
                waiting = (await conn.exec_driver_sql("SELECT count(*) FROM ledger.pending_events")).scalar_one()
                announced = (await conn.exec_driver_sql("SELECT count(*) FROM ledger.outbox")).scalar_one()
        finally:
            event.remove(engine.sync_engine, "before_cursor_execute", record)
            await engine.dispose()
    assert entries > 24 and waiting == 0  # sales, settlements, refunds: all posted
    assert announced >= entries  # each entry announced (and the settled orders), through the outbox
    # The first batch also reads the policies and tax settings once (the cache is empty); nothing is posted.
    assert parked == ["lock orders", "take parked", "policies", "tax settings", "posted keys", "writes"]
    # The second posts the sales and releases every settlement and refund (their keys and balances: one read).
    assert posted == ["lock orders", "take parked", "posted keys and balances", "lock journal", "writes"]


async def test_an_event_parked_while_the_batch_waited_for_its_order_is_taken(services: Services) -> None:
    """The parked events are taken in a statement after the facts' locks, so they include one parked by the
    transaction holding a lock (another ledger process, during a rebalance): taken in the locking statement, whose
    snapshot predates that commit, it would stay parked until the order's next event."""
    key = "tokopedia:shop-race:o1"
    parked = make_envelope(type="karya.test.parked.v1", source="test", subject=key, data={})
    async with fresh_database(services.admin_url) as db:
        engine = make_engine(db.urls.service, pool_size=2)
        try:
            async with engine.begin() as conn:
                await conn.execute(
                    text("INSERT INTO ledger.order_facts (order_key, lapas_id, completion) VALUES (:k, 'L1', '{}')"),
                    {"k": key},
                )
            async with engine.connect() as holder:
                await holder.begin()
                await holder.execute(
                    text("SELECT 1 FROM ledger.order_facts WHERE order_key = :k FOR UPDATE"), {"k": key}
                )
                await holder.execute(
                    text(
                        "INSERT INTO ledger.pending_events (event_id, order_key, type, envelope, waiting_for) "
                        "VALUES (:i, :k, :t, CAST(:e AS jsonb), 'settlement')"
                    ),
                    {"i": parked.event_id, "k": key, "t": parked.type, "e": parked.model_dump_json()},
                )

                async def read() -> OrdersRead:
                    async with engine.begin() as conn:
                        return await read_orders(UnitOfWork(conn, "ledger"), [key], [])

                reading = asyncio.create_task(read())
                await asyncio.sleep(0.5)
                assert not reading.done()  # waiting for the order's facts
                await holder.commit()
                found = await asyncio.wait_for(reading, 30)
            async with engine.connect() as conn:
                left = (await conn.execute(text("SELECT count(*) FROM ledger.pending_events"))).scalar_one()
        finally:
            await engine.dispose()
    assert list(found.facts) == [key]
    assert [e.event_id for e in found.parked] == [parked.event_id] and left == 0
