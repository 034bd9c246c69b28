"""Chain segments on the real database: postings of different segments run side by side, postings of one segment
queue on its head, the journal lock stops them all; the heads' root in ``ledger.chain_head`` is the domain's; the
balance rows are per segment and an account's balance is their sum."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from infra.db.engine import make_engine
from services.ledger.adapters.journal_repo import normal_balances, post_entries
from services.ledger.adapters.locks import lock_journal
from services.ledger.domain.accounts import Side
from services.ledger.domain.hashchain import SEGMENTS, heads_root, segment_of
from services.ledger.domain.journal import EntryKind, JournalEntry, Line
from services.ledger.reports import segment_heads, verify_balances, verify_chain
from tests.integration.ledger_support import LedgerDatabase, ledger_uow, uid

pytestmark = pytest.mark.integration

T = datetime(2026, 5, 4, 9, tzinfo=UTC)
BANK = "asset:marketplace_receivable:cipinang:shopee"
PROCEEDS = "clearing:undistributed_proceeds:cipinang"
WAIT_S = 60  # a guard against a hang, not a measure: the assertions are on what waited for what


def order_in(segment: str) -> str:
    """A fresh order key whose entries belong to ``segment``."""
    prefix = uid()
    return next(k for n in itertools.count() if segment_of(k := f"shopee:shop-seg:{prefix}-{n}") == segment)


def sale(order_key: str, amount: int = 100_000) -> tuple[JournalEntry, str | None]:
    entry = JournalEntry(
        posting_key=f"{order_key}:completed",
        request_hash=f"{abs(hash(order_key)):064x}"[-64:],
        kind=EntryKind.SALE_COMPLETED,
        memo="order completed",
        effective_at=T,
        lines=(Line(BANK, Side.DEBIT, amount), Line(PROCEEDS, Side.CREDIT, amount)),
        order_key=order_key,
    )
    return entry, None


async def waiting_on_a_lock(engine: AsyncEngine, pid: int) -> None:
    """Return once backend ``pid`` waits on a lock (bounded by the caller)."""
    while True:
        async with engine.connect() as conn:
            row = await conn.execute(text("SELECT wait_event_type FROM pg_stat_activity WHERE pid = :p"), {"p": pid})
            if row.scalar_one_or_none() == "Lock":
                return
        await asyncio.sleep(0.05)


async def pid_of(conn: AsyncConnection) -> int:
    return int((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())


async def guarded(step: Awaitable[Any]) -> Any:
    return await asyncio.wait_for(step, WAIT_S)


async def open_the_accounts(engine: AsyncEngine) -> None:
    """Post (and commit) one sale first: a posting that opens an account makes another opening the same one wait
    for its commit (the account's unique key), which is not what these tests are about."""
    async with engine.begin() as conn:
        await post_entries(ledger_uow(conn), [sale(order_in("s0"))])


async def test_segments_post_side_by_side_and_queue_within_one(own_database: LedgerDatabase) -> None:
    engine = make_engine(own_database.urls.service, pool_size=4)
    watcher = make_engine(own_database.admin_url, pool_size=1)  # sees other roles' waits
    try:
        await open_the_accounts(engine)
        async with engine.connect() as first, engine.connect() as second, engine.connect() as third:
            await first.begin()
            await post_entries(ledger_uow(first), [sale(order_in("s1"))])  # holds s1's head, not committed
            # Another segment: posts and commits while the first is open.
            await second.begin()
            await guarded(post_entries(ledger_uow(second), [sale(order_in("s2"))]))
            await guarded(second.commit())
            # The same segment: waits on s1's head until the first commits.
            await third.begin()
            pid = await pid_of(third)
            queued = asyncio.create_task(post_entries(ledger_uow(third), [sale(order_in("s1"))]))
            await guarded(waiting_on_a_lock(watcher, pid))
            assert not queued.done()
            await first.commit()
            await guarded(queued)
            await third.commit()
        async with engine.connect() as conn:
            uow = ledger_uow(conn)
            segments = (await conn.execute(text("SELECT order_key, segment FROM ledger.journal_entries"))).all()
            assert sorted(s for _, s in segments) == ["s0", "s1", "s1", "s2"]
            assert all(segment_of(k) == s for k, s in segments)
            check = await verify_chain(uow)
            assert check.first_broken is None and check.entries == 4, check
            heads = await segment_heads(uow)
            assert set(heads) == {"legacy", *(f"s{k}" for k in range(SEGMENTS))}
            assert check.head_hash == heads_root(heads.values())
            view = (await conn.execute(text("SELECT sequence, hash FROM ledger.chain_head"))).one()
            assert view.hash == heads_root(heads.values())
            assert view.sequence == max(h.sequence for h in heads.values())
            # One balance row per (account, segment); the balance is their sum, and equals the lines.
            rows = await conn.execute(
                text("SELECT segment, debit_total FROM ledger.account_balances WHERE account = :a"), {"a": BANK}
            )
            assert {r.segment: r.debit_total for r in rows} == {"s0": 100_000, "s1": 200_000, "s2": 100_000}
            assert (await normal_balances(uow, [BANK]))[BANK] == 400_000
            assert (await verify_balances(uow))[1] == []
    finally:
        await engine.dispose()
        await watcher.dispose()


async def test_the_journal_lock_waits_for_postings_in_flight_and_holds_off_new_ones(
    own_database: LedgerDatabase,
) -> None:
    engine = make_engine(own_database.urls.service, pool_size=4)
    watcher = make_engine(own_database.admin_url, pool_size=1)  # sees other roles' waits
    try:
        await open_the_accounts(engine)
        async with engine.connect() as posting, engine.connect() as deciding, engine.connect() as later:
            await posting.begin()
            await post_entries(ledger_uow(posting), [sale(order_in("s3"))])
            await deciding.begin()
            locking = asyncio.create_task(lock_journal(ledger_uow(deciding)))
            await guarded(waiting_on_a_lock(watcher, await pid_of(deciding)))
            assert not locking.done()
            await posting.commit()
            await guarded(locking)
            # Now a posting of any other segment waits for the decision's transaction.
            await later.begin()
            pid = await pid_of(later)
            queued = asyncio.create_task(post_entries(ledger_uow(later), [sale(order_in("s4"))]))
            await guarded(waiting_on_a_lock(watcher, pid))
            assert not queued.done()
            await deciding.commit()
            assert len((await guarded(queued)).posted) == 1
            await later.commit()
        async with engine.connect() as conn:
            assert (await verify_chain(ledger_uow(conn))).first_broken is None
    finally:
        await engine.dispose()
        await watcher.dispose()
