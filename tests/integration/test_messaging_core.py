"""The messaging core against the real broker and database: idempotent producer, inbox, DLQ, outbox relay."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from collections.abc import Awaitable

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import OffsetAndMetadata, TopicPartition
from sqlalchemy import text

from infra.db.engine import make_engine
from infra.db.roles import RoleUrls
from infra.messaging.admin import ensure_topics
from infra.messaging.envelope import Envelope, make_envelope
from infra.messaging.metrics import MessagingMetrics
from infra.messaging.outbox import OutboundMessage, enqueue
from infra.messaging.relay import OUTBOX_HEADER, OutboxRelay, make_producer
from infra.runtime import ServiceRuntime
from infra.settings import KafkaSettings
from tests.integration.messaging_support import count, create_scratch_schema, read_topic, recording_handler, wait_for
from tests.naming import session_topic

pytestmark = pytest.mark.integration


def _uid() -> str:
    return uuid.uuid4().hex[:8]


def _event(subject: str, seq: int, **data: object) -> Envelope:
    return make_envelope(
        type="karya.test.happened.v1", source="karya/tests", subject=subject, data={"seq": seq, **data}
    )


async def _publish(bootstrap: str, topic: str, values: list[tuple[bytes, bytes]]) -> None:
    producer = make_producer(bootstrap, "test-publisher")
    await producer.start()
    try:
        for key, value in values:
            await producer.send_and_wait(topic, value=value, key=key)
    finally:
        await producer.stop()


def _settings(bootstrap: str, **overrides: object) -> KafkaSettings:
    return KafkaSettings(bootstrap_servers=bootstrap, partitions=3, retry_backoff_ms=10, **overrides)  # type: ignore[arg-type]


async def test_idempotent_producer_initialises_and_delivers(kafka_bootstrap: str) -> None:
    topic = session_topic("test.idempotent")
    await ensure_topics(kafka_bootstrap, [topic], partitions=1, with_dlq=False)
    producer = make_producer(kafka_bootstrap, "test-idempotent")
    await producer.start()
    try:
        meta = await producer.send_and_wait(topic, value=b"hello", key=b"k")
        assert producer._txn_manager is not None  # InitProducerId answered: idempotence is on
        assert producer._txn_manager.producer_id >= 0
    finally:
        await producer.stop()
    records = await read_topic(kafka_bootstrap, topic, expected=1)
    assert [r.value for r in records] == [b"hello"]
    assert meta.offset == 0


async def test_redelivered_batch_is_applied_once(kafka_bootstrap: str, database: RoleUrls) -> None:
    schema, topic = f"redeliver_{_uid()}", session_topic("test.redeliver")
    await create_scratch_schema(database.migrator, schema)
    events = [_event(f"shopee:s1:o{i % 7}", i) for i in range(300)]
    await ensure_topics(kafka_bootstrap, [topic], partitions=3)
    await _publish(kafka_bootstrap, topic, [(e.subject.encode(), e.to_bytes()) for e in events])

    async def run_until_consumed() -> ServiceRuntime:
        runtime = ServiceRuntime(
            name=f"redeliver-{schema}",
            schema=schema,
            engine=make_engine(database.service),
            kafka=_settings(kafka_bootstrap),
            relay=False,
        )
        runtime.add_consumer(name=schema, topics=[topic], handler=recording_handler(schema), description="test")
        await runtime.start()
        return runtime

    runtime = await run_until_consumed()
    engine = make_engine(database.service)
    try:
        await wait_for(lambda: _eq(count(engine, f"SELECT count(*) FROM {schema}.applied"), 300), what="first pass")
        await runtime.stop()
        await runtime.engine.dispose()
        # Force redelivery: rewind the group's committed offsets to the start of every partition.
        rewinder = AIOKafkaConsumer(
            bootstrap_servers=kafka_bootstrap, group_id=f"karya-{schema}", enable_auto_commit=False
        )
        await rewinder.start()
        rewinder.assign([TopicPartition(topic, p) for p in range(3)])
        await rewinder.commit({TopicPartition(topic, p): OffsetAndMetadata(0, "") for p in range(3)})
        await rewinder.stop()
        runtime = await run_until_consumed()
        await wait_for(
            lambda: _ge(_metric(runtime, "karya_events_duplicate_total"), 300), what="redelivery seen by the inbox"
        )
        assert await count(engine, f"SELECT count(*) FROM {schema}.applied") == 300
        assert await count(engine, f"SELECT count(*) FROM {schema}.inbox") == 300
    finally:
        await runtime.stop()
        await runtime.engine.dispose()
        await engine.dispose()


async def test_poison_message_goes_to_dlq_and_partition_keeps_flowing(kafka_bootstrap: str, database: RoleUrls) -> None:
    schema, topic = f"poison_{_uid()}", session_topic("test.poison")
    await create_scratch_schema(database.migrator, schema)
    await ensure_topics(kafka_bootstrap, [topic], partitions=1)
    key = b"tokopedia:s1:o1"
    good1, bad, good2 = (
        _event("tokopedia:s1:o1", 1),
        _event("tokopedia:s1:o1", 2, poison=True),
        _event("tokopedia:s1:o1", 3),
    )
    garbage = b"\x00not json at all"
    await _publish(
        kafka_bootstrap,
        topic,
        [(key, good1.to_bytes()), (key, bad.to_bytes()), (key, garbage), (key, good2.to_bytes())],
    )
    runtime = ServiceRuntime(
        name=f"poison-{schema}",
        schema=schema,
        engine=make_engine(database.service),
        kafka=_settings(kafka_bootstrap, max_attempts=3),
    )
    runtime.add_consumer(name=schema, topics=[topic], handler=recording_handler(schema), description="test")
    await runtime.start()
    engine = make_engine(database.service)
    try:
        await wait_for(lambda: _eq(count(engine, f"SELECT count(*) FROM {schema}.applied"), 2), what="good events")
        assert await count(engine, f"SELECT count(*) FROM {schema}.applied WHERE seq IN (1, 3)") == 2
        dlq = await read_topic(kafka_bootstrap, f"{topic}.dlq", expected=2)
        by_value = {r.value: dict(r.headers) for r in dlq}
        assert set(by_value) == {bad.to_bytes(), garbage}
        assert by_value[bad.to_bytes()]["karya-dlq-attempts"] == b"3"
        assert by_value[bad.to_bytes()]["karya-dlq-error"] == b"RuntimeError"  # value-free: not the message
        assert by_value[garbage]["karya-dlq-attempts"] == b"1"
        assert b"undecodable" in by_value[garbage]["karya-dlq-error"]
        assert all(r.key == key for r in dlq)
        assert await count(engine, f"SELECT count(*) FROM {schema}.dead_letters") == 2
        assert _metric(runtime, "karya_dead_letters_total") == 2
    finally:
        await runtime.stop()
        await runtime.engine.dispose()
        await engine.dispose()


class _CrashBeforeMark(OutboxRelay):
    """A relay that dies after publishing and before deleting the published rows."""

    async def _remove_sent(self, ids: object) -> None:
        raise ConnectionError("simulated crash between publish and delete")


async def test_outbox_relay_publishes_exactly_once_in_order_across_restart(
    kafka_bootstrap: str, database: RoleUrls
) -> None:
    schema, topic = f"relay_{_uid()}", session_topic("test.relay")
    await create_scratch_schema(database.migrator, schema)
    await ensure_topics(kafka_bootstrap, [topic], partitions=3, with_dlq=False)
    engine = make_engine(database.service)
    keys = [f"blibli:s1:o{k}" for k in range(5)]
    messages = [OutboundMessage(topic, keys[i % 5].encode(), f"{keys[i % 5]}#{i}".encode()) for i in range(500)]
    async with engine.begin() as conn:
        await enqueue(conn, schema, messages)
    metrics = MessagingMetrics()
    crashing = _CrashBeforeMark(
        engine=engine, schema=schema, bootstrap_servers=kafka_bootstrap, metrics=metrics, batch_size=200
    )
    producer = make_producer(kafka_bootstrap, "crashing-relay")
    await producer.start()
    with pytest.raises(ConnectionError):
        await crashing.publish_once(producer)  # 200 rows reached Kafka, none deleted
    await producer.stop()
    assert await count(engine, f"SELECT count(*) FROM {schema}.outbox") == 500

    relay = OutboxRelay(
        engine=engine, schema=schema, bootstrap_servers=kafka_bootstrap, metrics=metrics, batch_size=200
    )
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    try:
        await wait_for(
            lambda: _eq(count(engine, f"SELECT count(*) FROM {schema}.outbox"), 0),
            what="outbox drained",
        )
    finally:
        stop.set()
        await task
    records = await read_topic(kafka_bootstrap, topic, expected=500)
    assert len(records) == 500, "each outbox row is published exactly once"
    per_key: dict[bytes, list[int]] = defaultdict(list)
    for r in sorted(records, key=lambda r: (r.partition, r.offset)):
        per_key[r.key].append(int(r.value.split(b"#")[1]))
        assert dict(r.headers)[OUTBOX_HEADER].startswith(schema.encode())
    for key, seqs in per_key.items():
        assert seqs == sorted(seqs), f"order broken for {key!r}"
        assert len(seqs) == 100
    await engine.dispose()


async def test_outbox_rows_without_a_key_are_published_once_each_to_partitions_of_the_topic(
    kafka_bootstrap: str, database: RoleUrls
) -> None:
    schema, topic = f"relay_{_uid()}", session_topic("test.relay-keyless")
    await create_scratch_schema(database.migrator, schema)
    await ensure_topics(kafka_bootstrap, [topic], partitions=3, with_dlq=False)
    engine = make_engine(database.service)
    async with engine.begin() as conn:
        await enqueue(conn, schema, [OutboundMessage(topic, None, f"#{i}".encode()) for i in range(60)])
    relay = OutboxRelay(engine=engine, schema=schema, bootstrap_servers=kafka_bootstrap, metrics=MessagingMetrics())
    producer = make_producer(kafka_bootstrap, "keyless-relay")
    await producer.start()
    try:
        while await relay.publish_once(producer):
            pass
    finally:
        await producer.stop()
    records = await read_topic(kafka_bootstrap, topic, expected=60)
    assert sorted(r.value for r in records) == sorted(f"#{i}".encode() for i in range(60))
    assert all(r.key is None and r.partition in {0, 1, 2} for r in records)
    await engine.dispose()


async def test_roles_service_has_no_ddl_and_auditor_cannot_write(database: RoleUrls) -> None:
    service, auditor = make_engine(database.service), make_engine(database.auditor)
    try:
        with pytest.raises(Exception, match="permission denied"):
            async with service.begin() as conn:
                await conn.execute(text("CREATE TABLE orders.sneaky (id int)"))
        with pytest.raises(Exception, match="permission denied"):
            async with service.begin() as conn:
                await conn.execute(text("CREATE SCHEMA sneaky"))
        with pytest.raises(Exception, match="permission denied"):
            async with auditor.begin() as conn:
                await conn.execute(text("INSERT INTO orders.outbox (topic, payload) VALUES ('t', 'x')"))
        async with auditor.connect() as conn:
            assert (await conn.execute(text("SELECT count(*) FROM orders.outbox"))).scalar_one() >= 0
    finally:
        await service.dispose()
        await auditor.dispose()


async def test_fresh_database_is_at_every_head(database: RoleUrls) -> None:
    from alembic.script import ScriptDirectory

    from infra.db.migrate import alembic_config

    script = ScriptDirectory.from_config(alembic_config(database.migrator))
    heads = set(script.get_heads())
    engine = make_engine(database.auditor)
    try:
        async with engine.connect() as conn:
            current = {r[0] for r in await conn.execute(text("SELECT version_num FROM public.alembic_version"))}
    finally:
        await engine.dispose()
    assert len(heads) == 4, "one branch per service (orders, ledger, gateway, finance)"
    # Alembic records a head another branch depends on (finance_0002 on ledger_0009) only through its dependant.
    reached = {r.revision for r in script.iterate_revisions(tuple(current), "base")}
    assert current <= heads and heads <= reached


def _metric(runtime: ServiceRuntime, name: str) -> float:
    total = 0.0
    for family in runtime.metrics.registry.collect():
        for sample in family.samples:
            if sample.name == name:
                total += sample.value
    return total


async def _eq(awaitable: Awaitable[int], expected: int) -> bool:
    return (await awaitable) == expected


async def _ge(value: float, expected: float) -> bool:
    return value >= expected
