"""The ledger's periodic chain verification (``services/ledger/chain_watch.py``) on the real database: its task
sets the gauges; a row altered behind the service's back (as superuser, triggers off, as in test_ledger_tamper)
turns ``karya_ledger_chain_verified`` to 0, found by a full pass wherever it is and by an incremental pass when it
is after the last entry found intact; an incremental pass checks the anchors taken since the last one found intact."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from infra.db.engine import make_engine
from infra.db.unit_of_work import UnitOfWork
from services.ledger.app import SCHEMA
from services.ledger.chain_anchor import take_anchor
from services.ledger.chain_watch import ChainWatch
from tests.integration.ledger_support import (
    Batch,
    LedgerDatabase,
    as_superuser,
    completed,
    new_inmate,
    new_order_key,
    new_processor,
    post,
    settled,
    uid,
)

pytestmark = pytest.mark.integration

T = datetime(2026, 4, 1, 10, tzinfo=UTC)


def _gauge(registry: CollectorRegistry, name: str) -> float | None:
    return registry.get_sample_value(name, {"schema": SCHEMA})


async def _post_order(engine: AsyncEngine) -> str:
    """Complete and settle one order (4 entries: completion, settlement, one distribution per batch)."""
    key, batch = new_order_key(), f"B-{uid()}"
    a, b = new_inmate(), new_inmate()
    batches = [
        Batch(f"{batch}-1", "CPN-GLV-001", "cipinang", 2, 30_000, 8_000, "sup-benang", ((a, 2), (b, 1))),
        Batch(f"{batch}-2", "CPN-WDW-001", "cipinang", 1, 90_000, 30_000, "sup-kayu", ((b, 1),)),
    ]
    processor = new_processor()
    assert await post(engine, processor, [completed(key, batches, T)]) == []
    assert await post(engine, processor, [settled(key, 150_000, T)]) == []
    return key


async def _settlement_seq(engine: AsyncEngine, key: str) -> int:
    async with engine.connect() as conn:
        return int(
            (
                await conn.execute(
                    text("SELECT sequence FROM ledger.journal_entries WHERE posting_key = :k"),
                    {"k": f"{key}:settlement:ESC-1"},
                )
            ).scalar_one()
        )


async def test_the_task_sets_the_gauges_and_a_tampered_row_turns_them_to_zero(own_database: LedgerDatabase) -> None:
    db = own_database
    engine = make_engine(db.urls.service, pool_size=2)
    registry = CollectorRegistry()
    watch = ChainWatch(engine, SCHEMA, registry, every_s=3600)
    try:
        first = await _post_order(engine)
        assert _gauge(registry, "karya_ledger_chain_verify_interval_seconds") == 3600
        assert _gauge(registry, "karya_ledger_chain_verified") is None  # no sample before a pass: no false page

        # 1. the supervised task's first pass (the whole chain) sets both gauges
        before = time.time()
        stop = asyncio.Event()
        task = asyncio.create_task(watch.run(stop))
        for _ in range(300):
            if _gauge(registry, "karya_ledger_chain_last_verified_timestamp_seconds") is not None:
                break
            await asyncio.sleep(0.1)
        stop.set()
        await asyncio.wait_for(task, 30)
        assert _gauge(registry, "karya_ledger_chain_verified") == 1
        assert (_gauge(registry, "karya_ledger_chain_last_verified_timestamp_seconds") or 0) >= before

        # 2. the next pass reads only the entries posted since
        second = await _post_order(engine)
        result = await watch.verify_once()
        assert result.first_broken is None and result.entries == 4

        # 3. an entry before the last one found intact is not read by an incremental pass, but by a full one
        old = await _settlement_seq(engine, first)
        await as_superuser(
            db.admin_url, f"UPDATE ledger.journal_entries SET memo = memo || ' (x)' WHERE sequence = {old}"
        )
        assert (await watch.verify_once()).entries == 0
        assert _gauge(registry, "karya_ledger_chain_verified") == 1
        found = await watch.verify_once(full=True)
        assert found.first_broken == old and "does not match its hash" in (found.problem or "")
        assert _gauge(registry, "karya_ledger_chain_verified") == 0

        # 4. restored: the pass after a broken one reads the whole chain again and finds it intact
        await as_superuser(
            db.admin_url, f"UPDATE ledger.journal_entries SET memo = left(memo, -4) WHERE sequence = {old}"
        )
        assert (await watch.verify_once()).entries == 8
        assert _gauge(registry, "karya_ledger_chain_verified") == 1

        # 5. an entry altered after the last one found intact is found by the incremental pass
        third = await _post_order(engine)
        new = await _settlement_seq(engine, third)
        await as_superuser(
            db.admin_url, f"UPDATE ledger.journal_entries SET memo = memo || ' (x)' WHERE sequence = {new}"
        )
        found = await watch.verify_once()
        assert found.first_broken == new and _gauge(registry, "karya_ledger_chain_verified") == 0
        assert second != third

        # 6. anchors: the pass after a broken one checks them all, the next ones only those taken since
        await as_superuser(
            db.admin_url, f"UPDATE ledger.journal_entries SET memo = left(memo, -4) WHERE sequence = {new}"
        )
        await _anchor(engine)
        await watch.verify_once()
        assert watch.anchors is not None and watch.anchors.anchors == 1
        assert _gauge(registry, "karya_ledger_chain_verified") == 1
        await _anchor(engine)
        assert (await watch.verify_once()).entries == 0 and watch.anchors.anchors == 1
        await _anchor(engine)
        await as_superuser(db.admin_url, "UPDATE ledger.chain_anchors SET reason = 'interval' WHERE anchor_no = 3")
        await watch.verify_once()
        assert (watch.anchors.anchors, watch.anchors.first_broken) == (1, 3)
        assert "anchor 3 does not match its hash" in (watch.anchors.problem or "")
        assert _gauge(registry, "karya_ledger_chain_verified") == 0
    finally:
        await engine.dispose()


async def _anchor(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        assert await take_anchor(UnitOfWork(conn, SCHEMA), "manual", datetime.now(UTC)) is not None
