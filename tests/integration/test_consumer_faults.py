"""Consumers fail closed (issue 12), on the real broker and database.

- An error that escapes the consumer core (here a real one: the service role may not write dead letters) leaves
  the batch to be fetched again: the partition waits on it, no later batch is applied or committed past it, and it
  is applied once the cause is gone.
- The rewind covers what the top-up took as well, on partitions the batch itself did not have.
- An event of a type nobody defines is dead-lettered at arrival with its origin, once; a known type this consumer
  does not act on is skipped and takes no inbox row.
- A database that refuses connections during the isolation pass sends the whole batch back to waiting; contention
  (40001) is retried a bounded number of times, then raised, never dead-lettered.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import asyncpg
import pytest
import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRecord
from aiokafka.structs import TopicPartition
from asyncpg import exceptions as pg
from sqlalchemy import text
from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_dbapi
from sqlalchemy.exc import DBAPIError
from structlog.testing import capture_logs

from infra.db.engine import make_engine
from infra.db.roles import RoleUrls
from infra.messaging.admin import ensure_topics
from infra.messaging.broker import BatchGuard, make_broker, register_batch_consumer
from infra.messaging.consumer import BatchConsumer
from infra.messaging.envelope import Envelope
from infra.messaging.metrics import MessagingMetrics
from infra.settings import KafkaSettings
from tests.integration.consumer_faults_support import (
    TEST_TYPE,
    committed_and_end,
    events,
    inbox_offsets,
    publish,
)
from tests.integration.messaging_support import count, create_scratch_schema, read_topic, recording_handler, wait_for
from tests.naming import session_topic

pytestmark = pytest.mark.integration


def _uid() -> str:
    return uuid.uuid4().hex[:8]


async def _as_migrator(url: str, sql: str) -> None:
    engine = make_engine(url, pool_size=1)
    try:
        async with engine.begin() as conn:
            await conn.execute(text(sql))
    finally:
        await engine.dispose()


def _not_applied(metrics: MessagingMetrics, name: str) -> float:
    return float(metrics.batches_not_applied.labels(name)._value.get())


async def test_an_escaping_error_rewinds_the_batch_and_no_later_commit_passes_it(
    kafka_bootstrap: str, database: RoleUrls
) -> None:
    schema, topic = f"escape_{_uid()}", session_topic("test.escape")
    group_id = f"{topic}.group"
    await create_scratch_schema(database.migrator, schema)
    await ensure_topics(kafka_bootstrap, [topic], partitions=1)
    sent = events(15, keys=1)
    poison = sent[2].model_copy(update={"data": {"seq": 2, "poison": True}})
    sent[2] = poison
    await publish(kafka_bootstrap, topic, sent, partition=0)
    # The poison event will be dead-lettered, and writing the dead letter is refused: a non-transient database
    # error that isolation cannot absorb, so it escapes BatchConsumer.process.
    await _as_migrator(database.migrator, f"REVOKE INSERT ON {schema}.dead_letters FROM karya_service")

    settings = KafkaSettings(
        bootstrap_servers=kafka_bootstrap,
        partitions=1,
        batch_max_records=5,
        max_attempts=2,
        retry_backoff_ms=10,
        retry_backoff_max_ms=100,
    )
    metrics = MessagingMetrics()
    engine = make_engine(database.service, pool_size=2)
    consumer = BatchConsumer(
        name=schema,
        schema=schema,
        engine=engine,
        handler=recording_handler(schema),
        settings=settings,
        metrics=metrics,
    )
    broker = make_broker(settings, metrics, client_id=f"test-{schema}")
    register_batch_consumer(broker, consumer, topics=[topic], group_id=group_id, settings=settings, description="")
    try:
        with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
            await broker.start()

            async def fetched_again_three_times() -> bool:
                return _not_applied(metrics, schema) >= 3

            await wait_for(fetched_again_three_times, timeout=60, what="the failing batch fetched again")
            committed, _ = await committed_and_end(kafka_bootstrap, group_id, topic, 1)
            assert committed == {0: 0}, "nothing committed past the batch that was not applied"
            seqs = await _seqs(database, schema)
            assert set(seqs) <= {0, 1, 3, 4}, "no later batch was applied while the first one waits"

            await _as_migrator(database.migrator, f"GRANT INSERT ON {schema}.dead_letters TO karya_service")

            async def all_done() -> bool:
                committed, ends = await committed_and_end(kafka_bootstrap, group_id, topic, 1)
                return committed == ends == {0: 15}

            await wait_for(all_done, timeout=60, what="the partition consumed to its end")
        assert sorted(await _seqs(database, schema)) == [s for s in range(15) if s != 2]
        assert await count(engine, f'SELECT count(*) FROM {schema}.dead_letters WHERE "offset" = 2') == 1
        assert (await inbox_offsets(engine, schema, topic)) == {0: list(range(15))}
    finally:
        await broker.stop()
        await engine.dispose()

    not_applied = [e for e in logs if e["event"] == "batch_not_applied"]
    assert len(not_applied) >= 3
    first = not_applied[0]
    assert first["consumer"] == schema and first["partitions"] == [f"{topic}/0"] and first["first_offsets"] == [0]
    assert first["error"] == "ProgrammingError" and first["sqlstate"] == "42501"  # facts, not the server's text
    assert "permission denied" not in str(logs)


async def _seqs(database: RoleUrls, schema: str) -> list[int]:
    engine = make_engine(database.service, pool_size=1)
    try:
        async with engine.connect() as conn:
            return [int(s) for s in (await conn.execute(text(f"SELECT seq FROM {schema}.applied"))).scalars()]
    finally:
        await engine.dispose()


async def test_the_rewind_covers_the_top_up_on_partitions_the_batch_did_not_have(kafka_bootstrap: str) -> None:
    topic = session_topic("test.rewind")
    await ensure_topics(kafka_bootstrap, [topic], partitions=2, with_dlq=False)
    await publish(kafka_bootstrap, topic, events(4), partition=0)
    reader = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id=None, enable_auto_commit=False)
    await reader.start()
    tps = [TopicPartition(topic, 0), TopicPartition(topic, 1)]
    reader.assign(tps)
    await reader.seek_to_beginning(*tps)
    try:
        batch: list[ConsumerRecord[bytes, bytes]] = []
        while len(batch) < 4:
            for got in (await reader.getmany(timeout_ms=1000)).values():
                batch.extend(got)
        await publish(kafka_bootstrap, topic, events(3), partition=1)  # arrives while the batch is applied
        settings = KafkaSettings(bootstrap_servers=kafka_bootstrap, batch_max_records=100, batch_top_up_ms=5000)
        metrics = MessagingMetrics()
        taken: list[ConsumerRecord[bytes, bytes]] = []

        async def apply(records: Sequence[ConsumerRecord[bytes, bytes]]) -> None:
            taken.extend(records)
            raise RuntimeError("simulated failure after the top-up")

        async def no_sleep(seconds: float) -> None:
            return None

        guard = BatchGuard("rewind-test", settings, metrics, sleep=no_sleep)
        assert await guard.run(reader, batch, apply) is False
        assert {(r.partition, r.offset) for r in taken} == {(0, 0), (0, 1), (0, 2), (0, 3), (1, 0), (1, 1), (1, 2)}
        again: list[ConsumerRecord[bytes, bytes]] = []
        while len(again) < 7:
            for got in (await reader.getmany(timeout_ms=1000)).values():
                again.extend(got)
        assert sorted((r.partition, r.offset) for r in again) == sorted((r.partition, r.offset) for r in taken)
        assert _not_applied(metrics, "rewind-test") == 1
    finally:
        await reader.stop()


OTHER_TYPE, UNKNOWN_TYPE = "karya.test.other.v1", "karya.test.nobody_defines_this.v1"


@pytest.mark.parametrize("acts_on", [frozenset({TEST_TYPE}), None], ids=["some-types", "all-types"])
async def test_unknown_type_is_dead_lettered_with_its_origin_once_and_a_known_other_type_is_skipped(
    kafka_bootstrap: str, database: RoleUrls, acts_on: frozenset[str] | None
) -> None:
    schema, topic = f"unknown_{_uid()}", session_topic("test.unknown")
    await create_scratch_schema(database.migrator, schema)
    await ensure_topics(kafka_bootstrap, [topic], partitions=1)
    ours, other, unknown, unknown_no_header = (
        events(1)[0],
        events(1, type=OTHER_TYPE)[0],
        events(1, type=UNKNOWN_TYPE)[0],
        events(1, type=UNKNOWN_TYPE)[0],
    )
    published = [
        *await publish(kafka_bootstrap, topic, [ours, other, unknown], partition=0),
        *await publish(kafka_bootstrap, topic, [unknown_no_header], partition=0, type_header=False),
    ]
    records = await read_topic(kafka_bootstrap, topic, expected=4)
    engine = make_engine(database.service, pool_size=2)
    consumer = BatchConsumer(
        name=schema,
        schema=schema,
        engine=engine,
        handler=recording_handler(schema),
        settings=KafkaSettings(),
        metrics=MessagingMetrics(),
        event_types=None if acts_on is None else acts_on,
        known_types=frozenset({TEST_TYPE, OTHER_TYPE}),
    )
    try:
        with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
            await consumer.process(records)
            await consumer.process(records)  # redelivered: the inbox absorbs it, no second dead letter
        async with engine.connect() as conn:
            dead = (
                await conn.execute(
                    text(f'SELECT topic, "partition", "offset", event_id, error, attempts FROM {schema}.dead_letters')
                )
            ).all()
            rows = await conn.execute(text(f"SELECT event_id, status FROM {schema}.inbox"))
            inbox: dict[uuid.UUID, str] = {r[0]: r[1] for r in rows}
            applied = (await conn.execute(text(f"SELECT event_id FROM {schema}.applied"))).scalars().all()
            dlq_out = await count(engine, f"SELECT count(*) FROM {schema}.outbox WHERE topic = '{topic}.dlq'")
    finally:
        await engine.dispose()

    where = {p.envelope.event_id: (topic, p.partition, p.offset) for p in published}
    assert sorted((d.topic, d.partition, d.offset) for d in dead) == sorted(
        [where[unknown.event_id], where[unknown_no_header.event_id]]
    ), "each unknown event dead-lettered once, with its origin"
    assert {d.event_id for d in dead} == {unknown.event_id, unknown_no_header.event_id}
    assert all(d.error.startswith("unknown_type") and UNKNOWN_TYPE not in d.error and d.attempts == 1 for d in dead)
    assert dlq_out == 2
    if acts_on is None:  # a consumer of every type acts on the known other one too
        assert set(applied) == {ours.event_id, other.event_id}
    else:
        assert applied == [ours.event_id]
        assert other.event_id not in inbox, "a known type this consumer does not act on takes no inbox row"
    assert inbox[unknown.event_id] == inbox[unknown_no_header.event_id] == "dead_lettered"
    lines = [e for e in logs if e["event"] == "event_dead_lettered"]
    assert sorted(e["offset"] for e in lines) == sorted(where[e.event_id][2] for e in (unknown, unknown_no_header))
    assert all(e["kind"] == "unknown_type" and e["topic"] == topic for e in lines)
    assert UNKNOWN_TYPE not in str(logs)


def _record(offset: int, envelope: Envelope) -> ConsumerRecord[bytes, bytes]:
    value = envelope.to_bytes()
    return ConsumerRecord("test.faults", 0, offset, 0, 0, envelope.subject.encode(), value, None, 0, len(value), [])


def _wrapped(error: Exception) -> DBAPIError:
    """``error`` as SQLAlchemy raises it from asyncpg (DBAPIError → adapter error → asyncpg error)."""
    dbapi = AsyncAdapt_asyncpg_dbapi(asyncpg)  # type: ignore[no-untyped-call]
    translated = dbapi.Error(str(error), error)  # type: ignore[no-untyped-call]
    translated.__cause__ = error
    wrapped = DBAPIError.instance("SELECT 1", {}, translated, dbapi.Error)
    assert isinstance(wrapped, DBAPIError)
    return wrapped


async def _no_sleep(seconds: float) -> None:
    return None


def _consumer(schema: str, database_engine: Any, handler: Any, metrics: MessagingMetrics) -> BatchConsumer:
    return BatchConsumer(
        name=schema,
        schema=schema,
        engine=database_engine,
        handler=handler,
        settings=KafkaSettings(max_attempts=3, retry_backoff_ms=1),
        metrics=metrics,
        sleep=_no_sleep,
    )


async def test_database_unavailable_inside_isolation_retries_the_whole_batch(database: RoleUrls) -> None:
    """A poison event sends the batch to isolation; there the database refuses (57P03) once: the whole batch is
    retried, the good events are applied once, the poison one is dead-lettered, and nothing escapes."""
    schema = f"isowait_{_uid()}"
    await create_scratch_schema(database.migrator, schema)
    batch = events(6, keys=1)
    batch[3] = batch[3].model_copy(update={"data": {"seq": 3, "poison": True}})
    records = [_record(i, e) for i, e in enumerate(batch)]
    record = recording_handler(schema)
    refused = [False]

    async def handler(conn: Any, evs: Sequence[Any]) -> None:
        if len(evs) == 1 and not refused[0]:  # the first call of the isolation pass
            refused[0] = True
            raise _wrapped(pg.CannotConnectNowError("the database system is starting up"))
        await record(conn, evs)

    metrics = MessagingMetrics()
    engine = make_engine(database.service, pool_size=2)
    try:
        with capture_logs() as logs:
            await _consumer(schema, engine, handler, metrics).process(records)
        assert sorted(await _seqs(database, schema)) == [0, 1, 2, 4, 5]
        assert await count(engine, f'SELECT count(*) FROM {schema}.dead_letters WHERE "offset" = 3') == 1
    finally:
        await engine.dispose()
    assert [e["event"] for e in logs if e["event"] != "event_dead_lettered"] == [
        "batch_failed_isolating",
        "database_unavailable",
        "batch_failed_isolating",
        "database_available",
    ]
    assert metrics.batch_retries.labels(schema, "connection")._value.get() == 1


async def test_contention_retries_a_bounded_number_of_times_then_escapes_without_dead_letters(
    database: RoleUrls,
) -> None:
    """Serialisation failures are nobody's data: retried, then (still failing in isolation) raised for the
    subscriber to fetch the batch again; nothing is dead-lettered for them."""
    schema = f"contend_{_uid()}"
    await create_scratch_schema(database.migrator, schema)
    records = [_record(i, e) for i, e in enumerate(events(3, keys=1))]
    calls = [0]

    async def handler(conn: Any, evs: Sequence[Any]) -> None:
        calls[0] += 1
        raise _wrapped(pg.SerializationError("could not serialize access"))

    metrics = MessagingMetrics()
    engine = make_engine(database.service, pool_size=2)
    try:
        with pytest.raises(DBAPIError) as raised:
            await _consumer(schema, engine, handler, metrics).process(records)
        assert raised.value.orig is not None and getattr(raised.value.orig, "sqlstate", None) == "40001"
        assert await count(engine, f"SELECT count(*) FROM {schema}.dead_letters") == 0
        assert await count(engine, f"SELECT count(*) FROM {schema}.inbox") == 0
    finally:
        await engine.dispose()
    assert calls[0] == 4  # three tries of the whole batch, then the first event alone in isolation
    assert metrics.batch_retries.labels(schema, "transient")._value.get() == 2
