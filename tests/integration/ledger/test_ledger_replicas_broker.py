"""Two ledger replicas in one consumer group post what one pure plan posts (issue 19: parallel posting, tested for
correctness on the real broker and database).

A seeded workload — completions, settlements (some published before their completion) and partial refunds (some
before their settlement), over every lapas of the demo policies — is published in two halves. The first replica
posts the first half alone; the second joins while it posts, so the group rebalances mid-stream; both post the
rest. Both replicas take anchors every quarter second meanwhile. Then:

- every event is in the inbox once, nothing is parked, refused, conflicting or dead-lettered;
- the journal holds exactly the entries — posting key, request hash, kind and lines — that
  :func:`~services.ledger.posting_plan.plan_postings` plans for the whole workload in one batch: the replicas,
  whatever the batches, partitions and interleaving, posted the same books as one serial pass;
- the entries lie in several chain segments, and every segment's chain, every anchor and every balance verifies
  (:func:`~tests.integration.ledger_support.assert_journal_sound`, :func:`verify_anchors`).
"""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from infra.db.engine import make_engine
from infra.messaging.admin import ensure_topics
from infra.messaging.envelope import Envelope
from infra.runtime import ServiceRuntime
from infra.settings import KafkaSettings
from services.ledger.app import build_runtime
from services.ledger.chain_anchor import verify_anchors
from services.ledger.domain.journal import JournalEntry
from services.ledger.outbound import LedgerTopics
from services.ledger.posting_plan import PostingInputs, plan_postings
from services.ledger.requests import RecentCompletions
from services.ledger.settings import LedgerSettings
from tests.conftest import Services
from tests.integration.ledger_support import (
    Batch,
    assert_journal_sound,
    completed,
    fresh_database,
    ledger_uow,
    publish,
    refunded,
    settled,
    uid,
)
from tests.integration.messaging_support import count, wait_for
from tests.naming import topic_prefix
from tests.unit.ledger.ledger_support import DEMO_POLICIES, INMATES, LAPAS_SKUS, SUPPLIERS, T0

pytestmark = pytest.mark.integration

ORDERS = 48
PARTITIONS = 6

Line = tuple[str, str, int]
Posted = dict[str, tuple[str, str, tuple[Line, ...]]]
"""Posting key → (request hash, kind, lines sorted)."""


def workload(rng: random.Random) -> tuple[list[Envelope], list[Envelope]]:
    """The order events (completions) and the marketplace events (settlements, refunds) of ``ORDERS`` orders."""
    run = uid()
    order_events: list[Envelope] = []
    marketplace: list[Envelope] = []
    for n in range(ORDERS):
        lapas = rng.choice(sorted(LAPAS_SKUS))
        key = f"{rng.choice(['shopee', 'tokopedia', 'blibli'])}:shop-{n % 5}:{run}-{n:03d}"
        batches = [
            Batch(
                f"B-{run}-{n:03d}-{b}",
                sku,
                lapas,
                rng.randint(1, 4),
                rng.randrange(50_000, 250_000, 1_000),
                rng.randrange(5_000, 20_000, 500),
                rng.choice(SUPPLIERS),
                tuple((inmate, rng.randint(1, 3)) for inmate in rng.sample(INMATES[lapas], rng.randint(1, 3))),
            )
            for b, sku in enumerate(rng.sample(LAPAS_SKUS[lapas], rng.randint(1, 2)))
        ]
        at = T0 + timedelta(hours=n)
        gross = sum(b.value for b in batches)
        completion = completed(key, batches, at)
        settlement = settled(key, gross, at + timedelta(days=3), settlement_id=f"ESC-{n}")
        order_events.append(completion)
        marketplace.append(settlement)
        if n % 4 == 0:  # a partial refund, published before its settlement every other time
            refund = refunded(key, f"RF-{n}", gross // 5, at + timedelta(days=5))
            marketplace.insert(len(marketplace) - (1 if n % 8 == 0 else 0), refund)
    return order_events, marketplace


def planned(events: list[Envelope]) -> Posted:
    """What one serial pass posts for ``events``: the pure plan of them all in one batch."""
    plan = plan_postings(PostingInputs(events, {}, DEMO_POLICIES), RecentCompletions())
    assert plan.refused == [] and plan.parked == [] and plan.conflicts == []
    entries = (e for e, _ in plan.entries)
    return {e.posting_key: (e.request_hash, e.kind.value, tuple(sorted(_lines(e)))) for e in entries}


def _lines(entry: JournalEntry) -> list[Line]:
    return [(x.account, x.side.value, x.amount) for x in entry.lines]


async def posted(conn: AsyncConnection) -> tuple[Posted, int]:
    """The journal's entries as :func:`planned` has them, and how many segments hold them."""
    rows = await conn.execute(
        text(
            "SELECT e.posting_key, e.request_hash, e.kind, e.segment, "
            "array_agg(l.account ORDER BY l.line_no) AS accounts, array_agg(l.side ORDER BY l.line_no) AS sides, "
            "array_agg(l.amount ORDER BY l.line_no) AS amounts "
            "FROM ledger.journal_entries e JOIN ledger.journal_lines l USING (sequence) "
            "GROUP BY e.sequence, e.posting_key, e.request_hash, e.kind, e.segment"
        )
    )
    entries: Posted = {}
    segments = set()
    for r in rows:
        lines = tuple(sorted(zip(r.accounts, r.sides, (int(a) for a in r.amounts), strict=True)))
        entries[r.posting_key] = (r.request_hash, r.kind, lines)
        segments.add(r.segment)
    return entries, len(segments)


async def _assigned(runtime: ServiceRuntime) -> bool:
    return (await runtime.readiness())["consumers_assigned"]


async def _drained(engine: AsyncEngine, events: int) -> bool:
    return await count(engine, "SELECT count(*) FROM ledger.inbox") >= events


async def test_two_replicas_post_the_books_one_serial_plan_posts_and_every_chain_and_anchor_verifies(
    services: Services,
) -> None:
    order_events, marketplace = workload(random.Random(19))
    events = [*order_events, *marketplace]
    prefix = topic_prefix()
    kafka = KafkaSettings(
        bootstrap_servers=services.kafka_bootstrap,
        partitions=PARTITIONS,
        retry_backoff_ms=10,
        topic_prefix=prefix,
        completeness_audit_interval_s=0,
    )
    topics = LedgerTopics.with_prefix(prefix)
    await ensure_topics(
        services.kafka_bootstrap,
        [topics.orders_events, topics.settlements, topics.entries, topics.ledger_order_events],
        PARTITIONS,
    )
    settings = LedgerSettings.model_construct(anchor_interval_s=0.25)
    async with fresh_database(services.admin_url) as db:
        engine = make_engine(db.urls.service, pool_size=2)
        replicas = [build_runtime(make_engine(db.urls.service), kafka, topics=topics, settings=settings)]
        try:
            await replicas[0].start()
            await wait_for(lambda: _assigned(replicas[0]), 60, "the first replica's partitions")
            half_orders, half_market = len(order_events) // 2, len(marketplace) // 2
            await publish(services.kafka_bootstrap, topics.settlements, marketplace[:half_market])
            await publish(services.kafka_bootstrap, topics.orders_events, order_events[:half_orders])
            # The second replica joins while the first posts: the group rebalances mid-stream.
            replicas.append(build_runtime(make_engine(db.urls.service), kafka, topics=topics, settings=settings))
            await replicas[1].start()
            await wait_for(lambda: _assigned(replicas[1]), 60, "the second replica's partitions")
            await publish(services.kafka_bootstrap, topics.orders_events, order_events[half_orders:])
            await publish(services.kafka_bootstrap, topics.settlements, marketplace[half_market:])
            await wait_for(lambda: _drained(engine, len(events)), 120, f"{len(events)} events in the inbox")
            await wait_for(
                lambda: _no_pending(engine), 30, "nothing parked (each waiting event released by what it waited for)"
            )
        finally:
            for runtime in replicas:
                await runtime.stop()
                await runtime.engine.dispose()
        try:
            applied = [_applied(runtime) for runtime in replicas]
            assert all(applied), f"events applied per replica {applied}: one replica posted nothing"
            assert await count(engine, "SELECT count(*) FROM ledger.inbox") == len(events)
            for table in ("posting_conflicts", "dead_letters", "pending_events"):
                assert await count(engine, f"SELECT count(*) FROM ledger.{table}") == 0, table
            async with engine.connect() as conn:
                entries, segments = await posted(conn)
                expected = planned(events)
                assert len(expected) > 3 * ORDERS  # a sale, a settlement and a distribution at least, per order
                assert entries == expected
                assert segments >= 2, "every entry in one segment: the workload did not spread over partitions"
                await assert_journal_sound(conn)
                anchors = await verify_anchors(ledger_uow(conn))
                assert anchors.anchors >= 1, "the replicas took no anchor while they posted"
                assert anchors.first_broken is None, anchors.problem
        finally:
            await engine.dispose()


def _applied(runtime: ServiceRuntime) -> float:
    """Events ``runtime``'s consumer applied (its own registry)."""
    return sum(
        sample.value
        for metric in runtime.metrics.registry.collect()
        if metric.name == "karya_events_applied"
        for sample in metric.samples
        if sample.name == "karya_events_applied_total"
    )


async def _no_pending(engine: AsyncEngine) -> bool:
    return await count(engine, "SELECT count(*) FROM ledger.pending_events") == 0
