"""Idempotency through the real broker: redelivered and re-emitted settlements post once; a changed settlement
under the same key is a recorded conflict, an alert metric and a dead letter — never a second posting."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from infra.db.engine import make_engine
from infra.messaging.admin import ensure_topics
from infra.messaging.envelope import make_envelope
from infra.messaging.topics import dead_letter_topic
from infra.runtime import ServiceRuntime
from infra.settings import KafkaSettings
from services.contracts.ledger import ENTRY_POSTED, ORDER_SETTLED
from services.contracts.marketplace import REFUND_REPORTED
from services.ledger.app import build_runtime
from services.ledger.outbound import LedgerTopics
from tests.contract_validation import validate_published
from tests.integration.ledger_support import (
    Batch,
    LedgerDatabase,
    assert_journal_sound,
    completed,
    new_inmate,
    new_order_key,
    publish,
    reissued,
    settled,
)
from tests.integration.messaging_support import read_topic, wait_for
from tests.naming import topic_prefix

pytestmark = pytest.mark.integration

T = datetime(2026, 6, 2, 9, tzinfo=UTC)


@dataclass
class Ledger:
    """A ledger consumer (with its relay) in the test's event loop, on topics of its own."""

    runtime: ServiceRuntime
    name: str
    orders_topic: str
    settlements_topic: str
    entries_topic: str
    order_events_topic: str

    def metric(self, name: str) -> float:
        """Sum of the samples of metric ``name``."""
        return sum(s.value for f in self.runtime.metrics.registry.collect() for s in f.samples if s.name == name)


@asynccontextmanager
async def ledger_consumer(db: LedgerDatabase, bootstrap: str) -> AsyncIterator[Ledger]:
    """The ledger process as ``services.ledger.app`` builds it, under a topic prefix of this session's own."""
    prefix = topic_prefix()
    kafka = KafkaSettings(
        bootstrap_servers=bootstrap,
        partitions=3,
        retry_backoff_ms=10,
        topic_prefix=prefix,
        completeness_audit_interval_s=0,
    )
    topics = LedgerTopics.with_prefix(prefix)
    runtime = build_runtime(make_engine(db.urls.service), kafka, topics=topics)
    ledger = Ledger(
        runtime, "ledger", topics.orders_events, topics.settlements, topics.entries, topics.ledger_order_events
    )
    outputs = [ledger.entries_topic, ledger.order_events_topic]
    await ensure_topics(bootstrap, [ledger.orders_topic, ledger.settlements_topic, *outputs], 3)
    await runtime.start()
    try:
        yield ledger
    finally:
        await runtime.stop()
        await runtime.engine.dispose()


async def _scalar(engine: AsyncEngine, sql: str, **params: object) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text(sql), params)).scalar_one())


async def _posting_keys(engine: AsyncEngine, key: str) -> Counter[str]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT posting_key FROM ledger.journal_entries WHERE order_key = :k"), {"k": key}
        )
        return Counter(r[0].removeprefix(f"{key}:") for r in rows)


def _batches(key: str) -> list[Batch]:
    a, b = new_inmate(), new_inmate()
    return [
        Batch(f"B-{key[-8:]}-1", "CPN-GLV-001", "cipinang", 4, 25_000, 9_000, "sup-benang", ((a, 3), (b, 2))),
        Batch(f"B-{key[-8:]}-2", "CPN-WDW-001", "cipinang", 1, 120_000, 40_000, "sup-kayu", ((b, 1),)),
    ]


async def test_settlement_delivered_three_times_and_reemitted_posts_once_and_a_change_is_a_conflict(
    own_database: LedgerDatabase, kafka_bootstrap: str
) -> None:
    engine = make_engine(own_database.urls.service, pool_size=2)
    key = new_order_key()
    completion = completed(key, _batches(key), T)
    settlement = settled(key, 220_000, T)
    one_set = Counter(
        {
            "completed": 1,
            "settlement:ESC-1": 1,
            f"distribution:B-{key[-8:]}-1": 1,
            f"distribution:B-{key[-8:]}-2": 1,
        }
    )
    inbox = "SELECT count(*) FROM ledger.inbox WHERE consumer = :c"
    try:
        async with ledger_consumer(own_database, kafka_bootstrap) as ledger:
            await publish(kafka_bootstrap, ledger.orders_topic, [completion])
            await wait_for(lambda: _is(_posting_keys(engine, key), Counter({"completed": 1})), what="completion")

            # the same envelope three times, then the same payload under two new event ids
            again = [reissued(settlement), reissued(settlement)]
            await publish(kafka_bootstrap, ledger.settlements_topic, [settlement, settlement, settlement, *again])

            async def all_seen() -> bool:
                return (
                    await _scalar(engine, inbox, c=ledger.name) == 4
                    and ledger.metric("karya_events_duplicate_total") >= 2
                )

            await wait_for(all_seen, what="settlement copies consumed")
            assert await _posting_keys(engine, key) == one_set
            assert await _scalar(engine, "SELECT count(*) FROM ledger.posting_conflicts") == 0
            records = await read_topic(kafka_bootstrap, ledger.entries_topic, expected=4)
            events = [validate_published(r.value) for r in records]  # fits schemas/events/karya.ledger.*
            assert {e["type"] for e in events} == {ENTRY_POSTED}
            posted = Counter(e["data"]["posting_key"].removeprefix(f"{key}:") for e in events)
            assert posted == one_set, "one entry_posted event per journal entry"
            # and one order_settled for the settlement, keyed by the order, on the topic the orders service reads
            announced = [
                validate_published(r.value) for r in await read_topic(kafka_bootstrap, ledger.order_events_topic, 1)
            ]
            assert [(e["type"], e["subject"], e["data"]["posting_key"]) for e in announced] == [
                (ORDER_SETTLED, key, f"{key}:settlement:ESC-1")
            ]

            # a changed settlement under the same settlement id: a conflict, dead-lettered with the reason
            changed_data = {**settlement.data, "net_payout": settlement.data["net_payout"] - 1_000}
            changed = make_envelope(type=settlement.type, source="karya/gateway", subject=key, data=changed_data)
            await publish(kafka_bootstrap, ledger.settlements_topic, [changed])
            dlq = await read_topic(kafka_bootstrap, dead_letter_topic(ledger.settlements_topic), expected=1)
            assert [r.value for r in dlq] == [changed.to_bytes()]
            headers = dict(dlq[0].headers)
            assert f"posting conflict on {key}:settlement:ESC-1".encode() in headers["karya-dlq-error"]
            assert headers["karya-dlq-attempts"] == b"1"
            assert dlq[0].key == key.encode()
            assert ledger.metric("karya_ledger_posting_conflicts_total") == 1
        async with engine.connect() as conn:
            conflict = (
                await conn.execute(
                    text("SELECT posting_key, existing_hash, new_hash, source_event FROM ledger.posting_conflicts")
                )
            ).one()
            stored = (
                await conn.execute(
                    text("SELECT request_hash FROM ledger.journal_entries WHERE posting_key = :k"),
                    {"k": f"{key}:settlement:ESC-1"},
                )
            ).scalar_one()
            assert conflict.posting_key == f"{key}:settlement:ESC-1"
            assert conflict.existing_hash == stored != conflict.new_hash
            assert conflict.source_event == str(changed.event_id)
            dead = (await conn.execute(text("SELECT event_id, error FROM ledger.dead_letters"))).one()
            assert dead.event_id == changed.event_id and "posting conflict" in dead.error
            settled_facts = (
                await conn.execute(text("SELECT settlement FROM ledger.order_facts WHERE order_key = :k"), {"k": key})
            ).scalar_one()
            assert settled_facts["settlements"] == [settlement.data], "the order keeps the settlement that was posted"
            await assert_journal_sound(conn)
        assert await _posting_keys(engine, key) == one_set, "no posting from the changed settlement"
    finally:
        await engine.dispose()


async def test_settlement_before_its_completion_waits_then_posts_once_or_holds_its_distribution(
    own_database: LedgerDatabase, kafka_bootstrap: str
) -> None:
    engine = make_engine(own_database.urls.service, pool_size=2)
    key, orphan = new_order_key("tokopedia"), new_order_key("tokopedia")
    settlement = settled(key, 220_000, T)
    # an order of a lapas without a split policy: its settlement can never be distributed
    unplannable = settled(orphan, 100_000, T)
    orphan_batch = Batch(f"B-{orphan[-8:]}", "X-001", "lapas-tanpa-kebijakan", 1, 100_000, 5_000, "sup-x",
                         ((new_inmate(), 1),))  # fmt: skip
    parked = "SELECT count(*) FROM ledger.pending_events WHERE order_key = ANY(:k)"
    try:
        async with ledger_consumer(own_database, kafka_bootstrap) as ledger:
            await publish(kafka_bootstrap, ledger.settlements_topic, [settlement, reissued(settlement), unplannable])
            await wait_for(lambda: _is(_scalar(engine, parked, k=[key, orphan]), 3), what="settlements parked")
            assert await _posting_keys(engine, key) == Counter()
            await publish(
                kafka_bootstrap,
                ledger.orders_topic,
                [completed(key, _batches(key), T), completed(orphan, [orphan_batch], T)],
            )
            await wait_for(lambda: _is(_scalar(engine, parked, k=[key, orphan]), 0), what="parked events taken")
        assert await _posting_keys(engine, key) == Counter(
            {
                "completed": 1,
                "settlement:ESC-1": 1,
                f"distribution:B-{key[-8:]}-1": 1,
                f"distribution:B-{key[-8:]}-2": 1,
            }
        )
        # not lost, not dead-lettered: its cash side posts, the proceeds wait in unallocated with the reason
        assert await _posting_keys(engine, orphan) == Counter({"completed": 1, "settlement:ESC-1": 1})
        async with engine.connect() as conn:
            await assert_journal_sound(conn)
            dead = (await conn.execute(text("SELECT event_id FROM ledger.dead_letters"))).scalars().all()
            hold = (
                await conn.execute(
                    text("SELECT settlement->>'hold' FROM ledger.order_facts WHERE order_key = :k"), {"k": orphan}
                )
            ).scalar_one()
        assert dead == [] and hold.startswith("NoPolicyError")
    finally:
        await engine.dispose()


async def _is(awaitable: Awaitable[object], expected: object) -> bool:
    return bool((await awaitable) == expected)


async def test_a_settlement_that_breaks_its_contract_is_dead_lettered_at_arrival_with_its_origin(
    own_database: LedgerDatabase, kafka_bootstrap: str
) -> None:
    """For an order the ledger has not seen: it is not parked to be checked when the order completes (its record
    long gone), but dead-lettered now, with its topic/partition/offset and a reason free of its values."""
    engine = make_engine(own_database.urls.service, pool_size=2)
    key = new_order_key()
    good = settled(key, 100_000, T)
    buyer = "Budi Santoso, Jl. Melati 7"
    bad = make_envelope(
        type=good.type,
        source="karya/gateway",
        subject=key,
        data={**good.data, "gross_amount": buyer, "net_payout": None, "settlement_id": "ESC-2"},
    )
    refund = make_envelope(
        type=REFUND_REPORTED,
        source="karya/gateway",
        subject=new_order_key(),
        data={"order_key": key, "channel": "shopee", "refund_id": "R1", "amount": -5, "refunded_at": buyer},
    )
    try:
        async with ledger_consumer(own_database, kafka_bootstrap) as ledger:
            landed = await publish(kafka_bootstrap, ledger.settlements_topic, [good, bad, refund])
            dlq = await read_topic(kafka_bootstrap, dead_letter_topic(ledger.settlements_topic), expected=2)
            await wait_for(
                lambda: _is(
                    _scalar(engine, "SELECT count(*) FROM ledger.pending_events WHERE order_key = :k", k=key), 1
                ),
                what="the valid settlement parked",
            )
        by_value = {r.value: dict(r.headers) for r in dlq}
        assert set(by_value) == {bad.to_bytes(), refund.to_bytes()}
        for envelope, origin in ((bad, landed[1]), (refund, landed[2])):
            headers = by_value[envelope.to_bytes()]
            assert headers["karya-dlq-origin"] == origin.encode()
            assert headers["karya-dlq-attempts"] == b"1"
        bad_error = by_value[bad.to_bytes()]["karya-dlq-error"].decode()
        assert "invalid marketplace.settlement_reported: ValidationError" in bad_error
        assert "gross_amount" in bad_error and "net_payout" in bad_error
        refund_error = by_value[refund.to_bytes()]["karya-dlq-error"].decode()
        assert "invalid marketplace.refund_reported: ValidationError" in refund_error
        assert "amount" in refund_error and "refunded_at" in refund_error
        async with engine.connect() as conn:
            dead = (
                await conn.execute(
                    text('SELECT event_id, topic, "partition", "offset", error FROM ledger.dead_letters')
                )
            ).all()
            parked = (await conn.execute(text("SELECT event_id FROM ledger.pending_events"))).scalars().all()
        assert {f"{d.topic}/{d.partition}/{d.offset}" for d in dead} == {landed[1], landed[2]}
        for d in dead:
            assert "Budi" not in d.error and "Melati" not in d.error and "-5" not in d.error
        assert parked == [good.event_id], "only the valid settlement waits for its order"
    finally:
        await engine.dispose()


async def test_an_unknown_event_type_is_dead_lettered_at_arrival_and_a_type_for_others_is_skipped(
    own_database: LedgerDatabase, kafka_bootstrap: str
) -> None:
    """Nothing vanishes: a type no contract defines (a producer's typo, a newer version) is a dead letter with its
    origin; a defined type the ledger does not act on (an order shipped) takes no inbox row and no dead letter."""
    engine = make_engine(own_database.urls.service, pool_size=2)
    key = new_order_key()
    good = settled(key, 100_000, T)
    typo = make_envelope(type="karya.marketplace.settlement_reportd.v1", source="x", subject=key, data=good.data)
    shipped = make_envelope(
        type="karya.orders.order_shipped.v1", source="karya/orders", subject=key, data={"order_key": key}
    )
    try:
        async with ledger_consumer(own_database, kafka_bootstrap) as ledger:
            landed = await publish(kafka_bootstrap, ledger.settlements_topic, [typo, good])
            await publish(kafka_bootstrap, ledger.orders_topic, [shipped])
            dlq = await read_topic(kafka_bootstrap, dead_letter_topic(ledger.settlements_topic), expected=1)
            await wait_for(
                lambda: _is(
                    _scalar(engine, "SELECT count(*) FROM ledger.pending_events WHERE order_key = :k", k=key), 1
                ),
                what="the valid settlement parked",
            )
            await wait_for(lambda: _is(_scalar(engine, "SELECT count(*) FROM ledger.inbox"), 2), what="two inbox rows")
        assert [r.value for r in dlq] == [typo.to_bytes()]
        assert dict(dlq[0].headers)["karya-dlq-origin"] == landed[0].encode()
        assert dict(dlq[0].headers)["karya-dlq-error"].decode().startswith("unknown_type")
        async with engine.connect() as conn:
            inbox = {
                r.event_id: r.status for r in await conn.execute(text("SELECT event_id, status FROM ledger.inbox"))
            }
        assert inbox == {typo.event_id: "dead_lettered", good.event_id: inbox[good.event_id]}
        assert shipped.event_id not in inbox
    finally:
        await engine.dispose()
