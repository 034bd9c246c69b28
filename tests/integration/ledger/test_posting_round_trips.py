"""A posting batch costs a fixed handful of round trips to PostgreSQL, whatever it holds: one read of the batch's
orders (facts locked first, parked events taken, ended orders, closed periods, policy stamp), for refunds the posted
keys and the balances they may take back from, one lock of the journal (accounts opened, segment heads locked,
sequence numbers drawn, posted keys read) and ONE statement of writes (facts, entries and lines, heads, slips,
parked events, the outbox). Every round trip waits for a PostgreSQL that shares the box with the broker and the
services, so this is the shape the latency depends on."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event

from infra.db.engine import make_engine
from infra.messaging.envelope import Envelope
from tests.conftest import Services
from tests.integration.ledger_support import fresh_database, new_processor, post
from tests.unit.test_bench_plan_only import workload

pytestmark = pytest.mark.integration


def _kind(sql: str) -> str:
    """What a statement of the posting use case is, by the tables it names."""
    if sql.startswith("WITH k AS MATERIALIZED") and "pending_events" in sql:
        return "read orders"
    if sql.startswith("WITH a AS (") and "chain_segments" in sql:
        return "lock journal"
    if sql.startswith(("WITH w0 AS", "INSERT", "UPDATE")):  # several parts, or one alone
        return "writes"
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
    assert parked == ["read orders", "policies", "tax settings", "posted keys", "writes"]
    # The second posts the sales and releases every settlement and refund (their keys and balances: one read each).
    assert posted == ["read orders", "posted keys", "balances", "lock journal", "writes"]
