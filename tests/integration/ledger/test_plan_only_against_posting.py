"""``python -m bench.plan_only`` simulates the posting use case's load and write steps in memory
(:class:`bench.plan_only.InMemoryLedger`). Its figures mean something only while that simulation posts what the use
case posts: the same batches through the real :class:`~services.ledger.posting.PostEvents` on the database must give
the same posting keys, request hashes and balances, settlements parked ahead of their sales included."""

from __future__ import annotations

import pytest

from bench.plan_only import InMemoryLedger, run_plan
from infra.db.engine import make_engine
from infra.messaging.envelope import Envelope
from tests.conftest import Services
from tests.integration.ledger_support import balances, fresh_database, new_processor, post
from tests.unit.ledger.ledger_support import DEMO_POLICIES
from tests.unit.test_bench_plan_only import parking_cut, workload

pytestmark = pytest.mark.integration


async def test_the_in_memory_ledger_posts_what_the_posting_use_case_posts(services: Services) -> None:
    batches = parking_cut(workload())
    simulated = InMemoryLedger()
    run_plan(batches, DEMO_POLICIES, simulated)
    assert simulated.times_parked > 0  # the comparison covers parking and release
    async with fresh_database(services.admin_url) as db:
        engine = make_engine(db.urls.service, pool_size=1)
        try:
            processor = new_processor()
            for batch in batches:
                assert await post(engine, processor, [Envelope.from_bytes(value) for _, _, value in batch]) == []
            async with engine.connect() as conn:
                rows = await conn.exec_driver_sql("SELECT posting_key, request_hash FROM ledger.journal_entries")
                posted = {r.posting_key: r.request_hash for r in rows}
                stored = {a: b for a, b in (await balances(conn)).items() if b}
                parked = (await conn.exec_driver_sql("SELECT count(*) FROM ledger.pending_events")).scalar_one()
        finally:
            await engine.dispose()
    assert posted == simulated.hashes
    assert stored == {a: b for a, b in simulated.balances.items() if b}
    assert parked == 0 and not simulated.parked
