"""Anchors over the segment heads on the real database (issue 19 item 1): a periodic anchor with nothing posted
since the last is skipped (the process's task still exports its tick, and the newest anchor's time whoever took it),
two takers at once get consecutive numbers (the second waits for the first's commit and
plans again, postings never wait), and ``karya ledger verify`` names the first broken link or anchor when an anchor
row, a segment head or an entry of a segment is altered — and when a segment is rewritten consistently (entry,
hashes and head recomputed), the anchor that pinned its head."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import text
from typer.testing import CliRunner

from infra.db.engine import make_engine
from infra.db.unit_of_work import Database
from services.ledger.adapters.anchors_repo import latest_anchor
from services.ledger.adapters.journal_repo import post_entries
from services.ledger.app import SCHEMA
from services.ledger.chain_anchor import AnchorGauges, run_anchors, take_anchor, verify_anchors
from services.ledger.cli import ledger_app
from services.ledger.domain.hashchain import GENESIS_HASH, chain_hash
from services.ledger.reports import _committed
from tests.integration.ledger.test_chain_segments_db import guarded, order_in, pid_of, sale, waiting_on_a_lock
from tests.integration.ledger_support import LedgerDatabase, as_superuser, ledger_cli_root, ledger_uow
from tests.integration.messaging_support import count, wait_for

pytestmark = pytest.mark.integration

NOW = datetime(2026, 12, 3, 8, 0, 0, 250000, tzinfo=UTC)


async def test_anchors_are_skipped_when_nothing_moved_and_numbered_once_under_concurrency(
    own_database: LedgerDatabase,
) -> None:
    engine = make_engine(own_database.urls.service, pool_size=4)
    watcher = make_engine(own_database.urls.service, pool_size=1)  # sees the waits of its own role's sessions
    try:
        async with engine.begin() as conn:
            first = await take_anchor(ledger_uow(conn), "interval", NOW)
            assert first is not None and first.anchor_no == 1 and first.prev_hash == GENESIS_HASH
            assert all(h.sequence == 0 and h.hash == GENESIS_HASH for h in first.heads), "an empty journal"
            assert await take_anchor(ledger_uow(conn), "interval", NOW + timedelta(minutes=1)) is None
        async with engine.begin() as conn:
            posted = (await post_entries(ledger_uow(conn), [sale(order_in("s1"))])).posted
        async with engine.begin() as conn:
            second = await take_anchor(ledger_uow(conn), "interval", NOW + timedelta(minutes=2))
        assert second is not None and second.anchor_no == 2 and second.prev_hash == first.anchor_hash
        head = next(h for h in second.heads if h.segment == "s1")
        assert head.sequence == posted[0].sequence and head.hash == posted[0].chain_hash

        async with engine.connect() as one, engine.connect() as other:
            await one.begin()
            third = await take_anchor(ledger_uow(one), "manual", NOW + timedelta(minutes=3))
            await other.begin()
            pid = await pid_of(other)
            racing = asyncio.create_task(take_anchor(ledger_uow(other), "manual", NOW + timedelta(minutes=4)))
            await guarded(waiting_on_a_lock(watcher, pid))  # on anchor 3's number, until its taker commits
            async with engine.begin() as conn:  # postings do not wait on anchor takers
                await guarded(post_entries(ledger_uow(conn), [sale(order_in("s2"))]))
            await one.commit()
            fourth = await guarded(racing)
            await other.commit()
        assert third is not None and fourth is not None
        assert (third.anchor_no, fourth.anchor_no, fourth.prev_hash) == (3, 4, third.anchor_hash)
        assert {h.segment for h in fourth.heads if h.sequence > 0} == {"s1", "s2"}, "planned again: heads re-read"
        async with watcher.connect() as conn:
            checked = await verify_anchors(ledger_uow(conn))
        assert (checked.anchors, checked.first_broken, checked.latest) == (4, None, fourth)
    finally:
        await engine.dispose()
        await watcher.dispose()


async def test_the_process_task_anchors_what_moved_and_exports_each_tick(own_database: LedgerDatabase) -> None:
    engine = make_engine(own_database.urls.service, pool_size=2)
    db, stop, registry = Database(engine, SCHEMA), asyncio.Event(), CollectorRegistry()
    gauges = AnchorGauges(registry, SCHEMA, 0.05)

    def gauge(name: str) -> float | None:
        return registry.get_sample_value(name, {"schema": SCHEMA})

    async def newest_exported() -> float | None:
        """The newest anchor's taken_at once the gauge shows it (None: not yet)."""
        async with engine.connect() as conn:
            newest = await latest_anchor(ledger_uow(conn))
        at = None if newest is None else newest.taken_at.timestamp()
        return at if at is not None and gauge("karya_ledger_last_anchor_timestamp_seconds") == at else None

    async def exported() -> bool:
        return await newest_exported() is not None

    try:
        assert gauge("karya_ledger_anchor_interval_seconds") == 0.05
        assert gauge("karya_ledger_anchor_last_tick_timestamp_seconds") is None, "no sample before a tick"
        started = time.time()
        task = asyncio.create_task(run_anchors(db, stop, gauges))

        async def anchors() -> int:
            return await count(engine, "SELECT count(*) FROM ledger.chain_anchors")

        await wait_for(lambda: _at_least(anchors, 1), what="the first anchor")
        await wait_for(exported, what="the first anchor exported")
        first_at, first_tick = await newest_exported(), gauge("karya_ledger_anchor_last_tick_timestamp_seconds")
        assert first_tick is not None and first_tick >= started
        await asyncio.sleep(0.3)  # several ticks: nothing moved, nothing more
        assert await anchors() == 1
        assert gauge("karya_ledger_last_anchor_timestamp_seconds") == first_at, "a tick that skips keeps the anchor"
        assert (gauge("karya_ledger_anchor_last_tick_timestamp_seconds") or 0) > first_tick, "and still ticks"

        async with engine.begin() as conn:  # another taker's anchor (a period close, `karya ledger anchor`) counts
            manual = await take_anchor(ledger_uow(conn), "manual", datetime.now(UTC))
        assert manual is not None
        await wait_for(lambda: _exported_at(gauge, manual.taken_at.timestamp()), what="the manual anchor exported")
        assert await anchors() == 2, "the task took none: no head moved since the manual anchor"

        async with engine.begin() as conn:
            await post_entries(ledger_uow(conn), [sale(order_in("s3"))])
        await wait_for(lambda: _at_least(anchors, 3), what="the anchor of the posting")
        await wait_for(exported, what="the anchor of the posting exported")
        assert (gauge("karya_ledger_last_anchor_timestamp_seconds") or 0) > manual.taken_at.timestamp()
        stop.set()
        await guarded(task)
        async with engine.connect() as conn:
            reasons = (
                (await conn.execute(text("SELECT reason FROM ledger.chain_anchors ORDER BY anchor_no"))).scalars().all()
            )
        assert reasons == ["interval", "manual", "interval"]
    finally:
        stop.set()
        await engine.dispose()


async def _exported_at(gauge: Callable[[str], float | None], at: float) -> bool:
    return gauge("karya_ledger_last_anchor_timestamp_seconds") == at


async def _at_least(counted: Callable[[], Awaitable[int]], n: int) -> bool:
    return await counted() >= n


def _karya(db: LedgerDatabase, *args: str) -> Any:
    return CliRunner().invoke(ledger_app, list(args), obj=ledger_cli_root(db.urls))


async def _verify(db: LedgerDatabase) -> Any:
    return await asyncio.to_thread(_karya, db, "verify")


async def test_verify_names_an_altered_anchor_segment_head_and_entry(own_database: LedgerDatabase) -> None:
    db = own_database
    engine = make_engine(db.urls.service, pool_size=2)
    try:
        async with engine.begin() as conn:
            posted = (await post_entries(ledger_uow(conn), [sale(order_in("s1")), sale(order_in("s2"))])).posted
        one = await asyncio.to_thread(_karya, db, "anchor")
        assert one.exit_code == 0 and "anchor 1 taken at" in one.output and "over 7 segments" in one.output, one.output
        async with engine.begin() as conn:
            await post_entries(ledger_uow(conn), [sale(order_in("s1"))])
        assert (await asyncio.to_thread(_karya, db, "anchor", "--json")).exit_code == 0
        ok = await _verify(db)
        assert ok.exit_code == 0 and "anchors intact: 2 anchors; latest anchor 2" in ok.output, ok.output
        s1, s2 = (next(p for p in posted if p.segment == s) for s in ("s1", "s2"))

        async def altered(undo: str, *change: str) -> str:
            await as_superuser(db.admin_url, *change)
            try:
                found = await _verify(db)
                assert found.exit_code == 1, found.output
                return str(found.output)
            finally:
                await as_superuser(db.admin_url, undo)

        out = await altered(
            "UPDATE ledger.chain_anchors SET reason = 'manual' WHERE anchor_no = 1",
            "UPDATE ledger.chain_anchors SET reason = 'interval' WHERE anchor_no = 1",
        )
        assert "anchors BROKEN at anchor 1: anchor 1 does not match its hash" in out
        root = await _scalar(engine, "SELECT heads_root FROM ledger.chain_anchors WHERE anchor_no = 2")
        out = await altered(
            f"UPDATE ledger.chain_anchors SET heads_root = '{root}' WHERE anchor_no = 2",
            f"UPDATE ledger.chain_anchors SET heads_root = '{'f' * 64}' WHERE anchor_no = 2",
        )
        assert "anchors BROKEN at anchor 2: anchor 2: its heads do not hash to its heads root" in out
        out = await altered(
            f"UPDATE ledger.chain_segments SET hash = '{s2.chain_hash}' WHERE segment = 's2'",
            f"UPDATE ledger.chain_segments SET hash = '{'f' * 64}' WHERE segment = 's2'",
        )
        assert f"chain BROKEN at entry {s2.sequence}: the chain head of segment s2 (entry {s2.sequence})" in out
        memo = await _scalar(engine, f"SELECT memo FROM ledger.journal_entries WHERE sequence = {s1.sequence}")
        out = await altered(
            f"UPDATE ledger.journal_entries SET memo = '{memo}' WHERE sequence = {s1.sequence}",
            f"UPDATE ledger.journal_entries SET memo = 'edited' WHERE sequence = {s1.sequence}",
        )
        assert f"chain BROKEN at entry {s1.sequence}: entry {s1.sequence} ({s1.entry.posting_key}) in segment s1" in out
        assert "anchors intact" in out, "the anchors pin the heads, and the heads are intact"

        # The administrator rewrites segment s1 consistently: the chain verifies, the anchors do not.
        async with engine.connect() as conn:
            rows = [row async for row in _committed(ledger_uow(conn), "s1", 0, 2**62)]
        prev, statements = GENESIS_HASH, [f"UPDATE ledger.journal_entries SET memo = 'edited' WHERE sequence = "
                                          f"{s1.sequence}"]  # fmt: skip
        for committed, _ in rows:
            committed = committed if committed.sequence != s1.sequence else _with_memo(committed, "edited")
            new = chain_hash(prev, committed)
            statements.append(f"UPDATE ledger.journal_entries SET prev_hash = '{prev}', chain_hash = '{new}' "
                              f"WHERE sequence = {committed.sequence}")  # fmt: skip
            prev = new
        statements.append(f"UPDATE ledger.chain_segments SET hash = '{prev}' WHERE segment = 's1'")
        await as_superuser(db.admin_url, *statements)
        out = str((await _verify(db)).output)
        assert "chain intact" in out
        assert (
            f"anchors BROKEN at anchor 1: anchor 1: entry {s1.sequence}, the head of segment s1 it pins, DIFFERS"
            in (out)
        )
        await as_superuser(db.admin_url, "DELETE FROM ledger.chain_anchors WHERE anchor_no = 1")
        assert "anchors BROKEN at anchor 2: anchor 2 follows anchor 0" in str((await _verify(db)).output)
    finally:
        await engine.dispose()


def _with_memo(committed: Any, memo: str) -> Any:
    import dataclasses

    return dataclasses.replace(committed, entry=dataclasses.replace(committed.entry, memo=memo))


async def _scalar(engine: Any, sql: str) -> Any:
    async with engine.connect() as conn:
        return (await conn.execute(text(sql))).scalar_one()
