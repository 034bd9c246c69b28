"""Taking an order's parked events finds where each first arrived by its inbox row's key: the plan PostgreSQL runs
reaches the ledger's inbox (a row per event ever consumed) only through an index condition on the consumer and the
event — joined, it hashed the whole inbox on every batch that took a parked event."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from infra.db.engine import make_engine
from tests.integration.ledger_support import (
    Batch,
    completed,
    inbound,
    new_inmate,
    new_order_key,
    new_processor,
    settled,
)
from tests.integration.plan_support import explained, plans, reads_by_index_condition, scans

pytestmark = pytest.mark.integration

T = datetime(2026, 5, 4, 9, tzinfo=UTC)


async def test_taking_parked_events_reaches_the_inbox_only_by_its_key(admin_db_url: str) -> None:
    engine = make_engine(admin_db_url, pool_size=1)
    processor = new_processor()
    try:
        async with engine.connect() as conn, explained(conn) as messages:  # one session: the settings stay on it
            await conn.commit()
            for _ in range(7):  # past the first custom plans, into the plan a session keeps
                key = new_order_key()
                inmates = ((new_inmate(), 1),)
                order = [Batch(f"B-{key[-8:]}", "TNG-MAT-001", "tangerang", 5, 60_000, 12_000, "sup-pandan", inmates)]
                assert await processor(conn, [inbound(settled(key, 300_000, T))]) == []  # parked: no completion yet
                await conn.commit()
                messages.clear()
                assert await processor(conn, [inbound(completed(key, order, T))]) == []  # takes the settlement
                await conn.commit()
    finally:
        await engine.dispose()
    ran = plans(messages)
    takes = [p for p in ran if "DELETE FROM ledger.pending_events" in p["Query Text"]]
    assert len(takes) == 1, [p["Query Text"][:80] for p in ran]
    inbox_reads = [n for n in scans(takes[0]["Plan"]) if n.get("Relation Name") == "inbox"]
    assert inbox_reads, "the parked events' origins come from the inbox"
    for node in inbox_reads:
        assert reads_by_index_condition(node) and "consumer" in node["Index Cond"], node
