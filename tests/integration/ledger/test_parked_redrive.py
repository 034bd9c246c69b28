"""The re-drive of parked events, on the real database: an event stranded by two overlapping ledger transactions
(a settlement parked for want of a completion that the other posted, neither seeing the other's rows) is posted by
the next re-drive; one a rule refuses is dead-lettered with its rule; one that legitimately waits parks again,
keeping when it first arrived, and is not planned again before ``after`` has passed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import Counter
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from infra.db.engine import make_engine
from infra.db.unit_of_work import Database, UnitOfWork
from infra.messaging.envelope import Envelope
from infra.messaging.metrics import MessagingMetrics
from services.ledger.names import CONSUMER, SCHEMA
from services.ledger.outbound import LedgerTopics
from services.ledger.posting import PostEvents
from services.ledger.redrive import RedriveMetrics, RedriveOutcome, due_orders, redrive_parked, run_redrive
from tests.integration.ledger.scenario_support import journal_of
from tests.integration.ledger_support import (
    Batch,
    LedgerDatabase,
    completed,
    inbound,
    new_inmate,
    new_order_key,
    new_processor,
    post,
    refunded,
    run_karya,
    settled,
)
from tests.integration.plan_support import explained, plans, reads_by_index_condition, rows_read, scans

pytestmark = pytest.mark.integration

T = datetime(2026, 5, 4, 9, tzinfo=UTC)
NOW = timedelta(0)


@pytest.fixture
async def engine(own_database: LedgerDatabase) -> AsyncIterator[AsyncEngine]:
    """The service role's engine on a database of the test's own: a re-drive plans every order's parked events."""
    engine = make_engine(own_database.urls.service, pool_size=3)
    yield engine
    await engine.dispose()


def _completed(key: str) -> Envelope:
    batch = Batch(f"B-{key[-8:]}", "CPN-WDW-001", "cipinang", 3, 40_000, 10_000, "sup-kayu", ((new_inmate(), 1),))
    return completed(key, [batch], T)


async def _overlapping(engine: AsyncEngine, parks: Sequence[Envelope], posts: Sequence[Envelope]) -> None:
    """``parks`` handled in one transaction and ``posts`` in another that starts before the first commits and
    commits first: the interleaving of two ledger processes in a rebalance, with no facts row to lock."""
    processor = new_processor()
    async with engine.connect() as first, engine.connect() as second:
        await first.begin()
        assert await processor(first, [inbound(e) for e in parks]) == []
        await second.begin()
        assert await processor(second, [inbound(e) for e in posts]) == []
        await second.commit()
        await first.commit()


async def _parked(engine: AsyncEngine, key: str) -> dict[str, tuple[str, datetime, datetime]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT event_id::text, waiting_for, received_at, planned_at FROM ledger.pending_events "
                "WHERE order_key = :k"
            ),
            {"k": key},
        )
        return {r[0]: (r[1], r[2], r[3]) for r in rows}


async def _posting_keys(engine: AsyncEngine, key: str) -> list[str]:
    """The order's posting keys (without the order key) in journal order."""
    return list(await journal_of(engine, key))


async def _as_owner(db: LedgerDatabase, statement: str, params: dict[str, object] | None = None) -> None:
    """Run ``statement`` as the schema owner (the service role may not rewrite parked events' times)."""
    owner = make_engine(db.urls.migrator, pool_size=1)
    try:
        async with owner.begin() as conn:
            await conn.execute(text(statement), params or {})
    finally:
        await owner.dispose()


async def _redrive(engine: AsyncEngine, after: timedelta, limit: int = 1000) -> RedriveOutcome:
    topics = LedgerTopics()
    async with Database(engine, SCHEMA).begin() as uow:
        return await redrive_parked(uow, PostEvents(topics), topics.settlements, after, limit)


async def test_a_settlement_stranded_by_an_overlapping_completion_posts_at_the_next_redrive(
    engine: AsyncEngine,
) -> None:
    key = new_order_key()
    settlement = settled(key, 120_000, T)
    await _overlapping(engine, parks=[settlement], posts=[_completed(key)])
    # Stranded: the completion is in the journal, the settlement still waits for it.
    assert {e: w for e, (w, *_) in (await _parked(engine, key)).items()} == {str(settlement.event_id): "completion"}
    before = await _posting_keys(engine, key)
    assert not any("settle" in k for k in before)

    outcome = await _redrive(engine, NOW)

    assert (outcome.orders, outcome.released, outcome.refused, outcome.conflicts) == (1, 1, [], 0)
    assert await _parked(engine, key) == {}
    after = await _posting_keys(engine, key)
    assert after[: len(before)] == before and len(after) > len(before)  # the settlement's entries, after
    # Nothing left to re-drive for it; a second pass posts nothing twice.
    await _redrive(engine, NOW)
    assert await _posting_keys(engine, key) == after


async def test_a_stranded_refund_a_rule_refuses_is_dead_lettered_not_parked_again(engine: AsyncEngine) -> None:
    key = new_order_key()
    too_much = refunded(key, "R-BIG", 5_000_000, T)
    await _overlapping(engine, parks=[too_much], posts=[_completed(key), settled(key, 120_000, T)])
    assert str(too_much.event_id) in await _parked(engine, key)

    outcome = await _redrive(engine, NOW)

    assert (outcome.orders, outcome.released) == (1, 1)
    (refusal,) = outcome.refused
    assert "refund_within_gross" in refusal.reason
    assert await _parked(engine, key) == {}
    async with engine.connect() as conn:
        dead = (
            await conn.execute(
                text('SELECT topic, "partition", "offset", error FROM ledger.dead_letters WHERE event_id = :e'),
                {"e": too_much.event_id},
            )
        ).one()
    # It came through no inbox (the test's processor writes none): dead-lettered from the settlements topic.
    assert (dead.topic, dead.partition, dead.offset) == (LedgerTopics().settlements, -1, -1)
    assert "refund_within_gross" in dead.error


async def test_the_ledger_process_redrive_counts_what_it_released_and_reports_its_dead_letters(
    engine: AsyncEngine,
) -> None:
    key, other = new_order_key(), new_order_key()
    settlement, too_much = settled(key, 120_000, T), refunded(other, "R-BIG", 5_000_000, T)
    await _overlapping(engine, parks=[settlement], posts=[_completed(key)])
    await _overlapping(engine, parks=[too_much], posts=[_completed(other), settled(other, 120_000, T)])
    messaging, conflicts = MessagingMetrics(), Counter("conflicts", "posting conflicts", registry=None)
    metrics = RedriveMetrics(messaging, conflicts)
    topics, stop = LedgerTopics(), asyncio.Event()
    task = asyncio.create_task(
        run_redrive(Database(engine, SCHEMA), topics, stop, interval_s=0.05, after_s=0, limit=10, metrics=metrics)
    )
    try:
        for _ in range(400):  # bounded: 20 s
            if await _parked(engine, key) == {} and await _parked(engine, other) == {}:
                break
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await task

    assert await _parked(engine, key) == {} and await _parked(engine, other) == {}
    assert messaging.registry.get_sample_value("karya_ledger_parked_redriven_total") == 2
    dead = messaging.registry.get_sample_value(
        "karya_dead_letters_total", {"consumer": CONSUMER, "topic": topics.settlements}
    )
    assert dead == 1


async def test_an_event_that_still_waits_keeps_its_arrival_and_is_planned_once_per_after(
    engine: AsyncEngine, own_database: LedgerDatabase
) -> None:
    key = new_order_key()
    orphan = settled(key, 80_000, T)  # its order never completes here
    assert await post(engine, new_processor(), [orphan]) == []
    await _as_owner(
        own_database,
        "UPDATE ledger.pending_events SET received_at = now() - interval '2 days', "
        "planned_at = now() - interval '2 days' WHERE event_id = :e",
        {"e": orphan.event_id},
    )

    outcome = await _redrive(engine, timedelta(hours=1))

    assert (outcome.orders, outcome.released, outcome.refused) == (1, 0, [])
    waiting, received, planned = (await _parked(engine, key))[str(orphan.event_id)]
    assert waiting == "completion"
    assert datetime.now(UTC) - received > timedelta(days=2) - timedelta(minutes=1)  # still when it arrived
    assert datetime.now(UTC) - planned < timedelta(hours=1)  # planned again just now
    # Planned within the hour: the next re-drive leaves it alone.
    again = await _redrive(engine, timedelta(hours=1))
    assert (await _parked(engine, key))[str(orphan.event_id)][2] == planned
    assert again.released == 0

    # A posting batch that takes it with another event of its order parks it again with its arrival kept too.
    refund = refunded(key, "R1", 10_000, T)
    assert await post(engine, new_processor(), [refund]) == []
    parked = await _parked(engine, key)
    assert parked[str(orphan.event_id)][1] == received
    assert parked[str(refund.event_id)][1] > received


async def test_karya_ledger_redrive_runs_the_pass_now(engine: AsyncEngine, own_database: LedgerDatabase) -> None:
    key = new_order_key()
    settlement = settled(key, 120_000, T)
    await _overlapping(engine, parks=[settlement], posts=[_completed(key)])

    bad = await run_karya(own_database.urls, "ledger", "redrive", "--after", "soon")
    assert bad.returncode == 2 and "not a duration" in bad.stderr
    assert str(settlement.event_id) in await _parked(engine, key)  # nothing done
    waiting = await run_karya(own_database.urls, "ledger", "redrive", "--after", "1h")
    assert waiting.returncode == 0, waiting.stderr
    assert "of 0 orders again: 0 released" in waiting.stdout and str(settlement.event_id) in await _parked(engine, key)

    done = await run_karya(own_database.urls, "ledger", "redrive")

    assert done.returncode == 0, done.stderr
    assert "of 1 order again: 1 released (0 dead-lettered)" in done.stdout
    assert await _parked(engine, key) == {}
    assert any("settle" in k for k in await _posting_keys(engine, key))


async def test_the_due_orders_are_read_oldest_first_and_no_further_than_the_limit(
    engine: AsyncEngine, own_database: LedgerDatabase
) -> None:
    """20,000 parked events, the 100 oldest due: a tick reads the due ones along the planned-at index, at most its
    limit, and names their orders oldest first — it neither groups every parked event by order nor reads past the
    due ones."""
    await _as_owner(
        own_database,
        "INSERT INTO ledger.pending_events (event_id, order_key, type, envelope, waiting_for, received_at, "
        "planned_at) SELECT gen_random_uuid(), 'bulk-' || lpad((i % 7000)::text, 5, '0'), 'settlement', "
        "'{}', 'completion', now() - interval '3 days', CASE WHEN i < 100 THEN now() - interval '2 days' "
        "+ i * interval '1 second' ELSE now() - interval '1 minute' END FROM generate_series(0, 19999) i",
    )
    await _as_owner(own_database, "ANALYZE ledger.pending_events")

    async def due(limit: int) -> tuple[list[str], int]:
        admin = make_engine(own_database.admin_url, pool_size=1)
        try:
            async with admin.connect() as conn, explained(conn, analyze=True) as messages:
                messages.clear()
                keys = await due_orders(UnitOfWork(conn, SCHEMA), timedelta(hours=1), limit)
                await conn.rollback()
        finally:
            await admin.dispose()
        [plan] = [p for p in plans(messages) if "pending_events" in p["Query Text"]]
        reads = [n for n in scans(plan["Plan"]) if n.get("Relation Name") == "pending_events"]
        assert reads and all(reads_by_index_condition(n) for n in reads), reads
        return keys, rows_read(plan["Plan"], "pending_events")

    # The due events are i = 0..99, oldest first: orders bulk-00000 .. bulk-00099, each first seen in that order.
    assert await due(50) == ([f"bulk-{i:05d}" for i in range(50)], 50)
    assert await due(500) == ([f"bulk-{i:05d}" for i in range(100)], 100)
