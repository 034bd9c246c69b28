"""The completeness audit on the real broker and database: a clean report after a real consumer applied its
topic, and exactly the lost offsets once a group's committed offset passes records it never applied (the way
events were lost on a PostgreSQL restart) or an inbox row is gone; then the same through ``karya audit
completeness`` against a real orders-service process."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import OffsetAndMetadata, TopicPartition
from prometheus_client import CollectorRegistry
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from infra.db.engine import make_engine
from infra.db.roles import RoleUrls
from infra.messaging.admin import ensure_topics
from infra.messaging.completeness import Checkpoint, PartitionAudit, total_gaps
from infra.messaging.completeness_audit import (
    AuditedConsumer,
    audit_completeness,
    completeness_gauge,
    run_completeness_audits,
    update_completeness_metric,
)
from infra.messaging.envelope import Envelope, make_envelope
from infra.messaging.relay import make_producer
from infra.messaging.topics import consumer_group, topic_name
from infra.runtime import ServiceRuntime
from infra.settings import KafkaSettings
from tests.integration.messaging_support import count, create_scratch_schema, recording_handler, wait_for
from tests.integration.orders_support import ROOT, load, publish, service_processes, small_catalogue, status_event, uid
from tests.naming import session_topic, topic_prefix

pytestmark = pytest.mark.integration

ACTED, IGNORED = "karya.test.happened.v1", "karya.test.noticed.v1"


def _event(type_name: str, seq: int) -> Envelope:
    return make_envelope(type=type_name, source="karya/tests", subject=f"shopee:s1:o{seq}", data={"seq": seq})


async def _send(bootstrap: str, topic: str, records: Sequence[tuple[int, bytes, str | None]]) -> list[int]:
    """Send (partition, value, type header) records in order; returns their offsets."""
    producer = make_producer(bootstrap, "test-completeness")
    await producer.start()
    try:
        offsets = []
        for partition, value, type_name in records:
            headers = [] if type_name is None else [("karya-event-type", type_name.encode())]
            meta = await producer.send_and_wait(topic, value, key=b"k", partition=partition, headers=headers)
            offsets.append(meta.offset)
        return offsets
    finally:
        await producer.stop()


async def _committed(bootstrap: str, group: str) -> dict[TopicPartition, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return {tp: m.offset for tp, m in (await admin.list_consumer_group_offsets(group)).items()}
    finally:
        await admin.close()


async def _commit(bootstrap: str, group: str, offsets: dict[TopicPartition, int]) -> None:
    """Commit ``offsets`` for ``group`` as a member of no generation (the group has no live member)."""
    committer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await committer.start()
    try:
        committer.assign(list(offsets))
        await committer.commit({tp: OffsetAndMetadata(o, "") for tp, o in offsets.items()})
    finally:
        await committer.stop()


def _gaps(audits: Sequence[PartitionAudit]) -> dict[int, list[int]]:
    return {a.origin.partition: a.gap_offsets() for a in audits if a.gap_count}


async def test_audit_is_clean_after_consumption_and_names_every_lost_offset(
    kafka_bootstrap: str, database: RoleUrls
) -> None:
    schema, topic = f"complete_{uid()}", session_topic("test.completeness")
    await create_scratch_schema(database.migrator, schema)
    await ensure_topics(kafka_bootstrap, [topic], partitions=2)
    acted = [_event(ACTED, i) for i in range(10)]
    ignored = [_event(IGNORED, 100 + i) for i in range(4)]
    await _send(
        kafka_bootstrap,
        topic,
        [
            *((i % 2, e.to_bytes(), ACTED if i % 3 else None) for i, e in enumerate(acted)),
            *((i % 2, e.to_bytes(), IGNORED if i % 2 else None) for i, e in enumerate(ignored)),  # header or type
            (0, acted[0].to_bytes(), ACTED),  # the same event again, at a second offset
            (1, b"\x00not an envelope", None),  # undecodable: a dead letter, no inbox row
        ],
    )
    settings = KafkaSettings(bootstrap_servers=kafka_bootstrap, partitions=2, retry_backoff_ms=10)
    runtime = ServiceRuntime(
        name=schema, schema=schema, engine=make_engine(database.service), kafka=settings, relay=False
    )
    consumer = runtime.add_consumer(
        name=schema,
        topics=[topic],
        handler=recording_handler(schema),
        description="test",
        event_types=frozenset({ACTED}),
    )
    group = consumer_group(schema, settings.topic_prefix)
    spec = AuditedConsumer(group, schema, (topic,), consumer)
    engine = make_engine(database.service)

    async def consumed() -> bool:
        return sum((await _committed(kafka_bootstrap, group)).values()) == 16

    await runtime.start()
    try:
        await wait_for(consumed, what="all 16 records consumed and committed")
    finally:
        await runtime.stop()
        await runtime.engine.dispose()
    try:
        assert await count(engine, f"SELECT count(*) FROM {schema}.inbox") == 10
        assert await count(engine, f"SELECT count(*) FROM {schema}.dead_letters") == 1

        clean = await audit_completeness([spec], engine=engine, bootstrap_servers=kafka_bootstrap)
        assert [(a.origin.partition, a.start, a.end, a.truncated) for a in clean] == [
            (0, 0, 8, False),
            (1, 0, 8, False),
        ]
        assert sum(a.records for a in clean) == 16
        assert (sum(a.applied for a in clean), sum(a.skipped for a in clean)) == (11, 4)  # the copy included
        assert (sum(a.dead_lettered for a in clean), total_gaps(clean)) == (1, 0)

        # The historical loss: records the consumer never applied, and a commit past them.
        lost = await _send(kafka_bootstrap, topic, [(0, _event(ACTED, 50 + i).to_bytes(), ACTED) for i in range(3)])
        late_ignored = await _send(kafka_bootstrap, topic, [(0, _event(IGNORED, 60).to_bytes(), IGNORED)])
        await _commit(kafka_bootstrap, group, {TopicPartition(topic, 0): late_ignored[0] + 1})
        # And an applied event whose inbox row is gone.
        async with engine.begin() as conn:
            await conn.execute(text(f"DELETE FROM {schema}.inbox WHERE event_id = :e"), {"e": acted[3].event_id})

        registry = CollectorRegistry()
        checkpoint = Checkpoint()
        found = await update_completeness_metric(
            completeness_gauge(registry),
            [spec],
            engine=engine,
            bootstrap_servers=kafka_bootstrap,
            checkpoint=checkpoint,
        )
        assert _gaps(found) == {0: lost, 1: [1]}  # acted[3] went to partition 1, its second record there
        assert [a.end for a in found] == [12, 8]
        assert [a.skipped for a in found] == [3, 2]  # the record committed past but never applied is not a gap
        assert registry.get_sample_value("karya_completeness_gaps", {"group": group, "topic": topic}) == 4

        # A later pass starts at the checkpoint: nothing new to read, the open gaps are checked again.
        again = await update_completeness_metric(
            completeness_gauge(CollectorRegistry()),
            [spec],
            engine=engine,
            bootstrap_servers=kafka_bootstrap,
            checkpoint=checkpoint,
        )
        assert [(a.start, a.records) for a in again] == [(12, 3), (8, 1)]
        assert _gaps(again) == {0: lost, 1: [1]}

        # The periodic task a runtime runs keeps the gauge current the same way.
        registry, stop = CollectorRegistry(), asyncio.Event()
        task = asyncio.create_task(
            run_completeness_audits(
                stop,
                [spec],
                engine=engine,
                bootstrap_servers=kafka_bootstrap,
                gauge=completeness_gauge(registry),
                first_after_s=0,
            )
        )

        async def exported() -> bool:
            return registry.get_sample_value("karya_completeness_gaps", {"group": group, "topic": topic}) == 4

        await wait_for(exported, what="the periodic audit's gauge")
        stop.set()
        await asyncio.wait_for(task, timeout=10)
    finally:
        await engine.dispose()


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "karya.cli", "audit", "completeness", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )


async def _inbox_offsets(engine: AsyncEngine, ids: Sequence[object]) -> dict[object, tuple[int, int]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text('SELECT event_id, "partition", "offset" FROM orders.inbox WHERE consumer = :c AND event_id = ANY(:i)'),
            {"c": "orders", "i": list(ids)},
        )
        return {r[0]: (r[1], r[2]) for r in rows}


async def test_karya_audit_completeness_against_a_real_orders_process(
    kafka_bootstrap: str, database: RoleUrls, tmp_path: Path
) -> None:
    u, prefix = uid(), topic_prefix("audit")
    topic = topic_name("marketplace.order-events", prefix)
    await ensure_topics(kafka_bootstrap, [topic], partitions=6)
    engine = make_engine(database.service)
    await load(engine, small_catalogue(u, [("w1", 5, date(2026, 3, 1))]))
    events = [status_event(u, f"a{i}", "220", minutes=i) for i in range(8)]
    await publish(kafka_bootstrap, topic, events)
    group = f"{prefix}karya-orders"

    async def consumed() -> bool:
        return sum((await _committed(kafka_bootstrap, group)).values()) == len(events)

    try:
        with service_processes("orders", 1, database, kafka_bootstrap, prefix, tmp_path):
            await wait_for(consumed, timeout=120, what="the orders process consumed and committed every event")
        env = {
            **os.environ,
            "DATABASE_URL": database.service,
            "KARYA_AUDITOR_URL": database.auditor,
            "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "KARYA_TOPIC_PREFIX": prefix,
        }
        clean = _cli(env, "--json")
        assert clean.returncode == 0, clean.stderr
        report = json.loads(clean.stdout)
        ours = [p for p in report["partitions"] if p["group"] == group]
        assert report["gaps"] == 0
        # orders also consumes ledger.order-events (created by the process, empty here)
        assert {p["topic"] for p in ours} == {topic, topic_name("ledger.order-events", prefix)}
        assert sum(p["records"] for p in ours) == sum(p["applied"] for p in ours) == len(events)
        assert {p["group"] for p in report["partitions"]} <= {group, f"{prefix}karya-ledger"}  # nothing else here

        gone = events[5]
        partition, offset = (await _inbox_offsets(engine, [gone.event_id]))[gone.event_id]
        async with engine.begin() as conn:
            await conn.execute(text("DELETE FROM orders.inbox WHERE event_id = :e"), {"e": gone.event_id})
        lossy = _cli(env, "--json", "--group", group)
        assert lossy.returncode == 1, lossy.stderr
        report = json.loads(lossy.stdout)
        assert report["gaps"] == 1
        assert [(p["partition"], p["gap_offsets"]) for p in report["partitions"] if p["gaps"]] == [
            (partition, [offset])
        ]
        table = _cli(env, "--group", group)
        assert table.returncode == 1
        assert f"gaps in {group} {topic}/{partition} at offsets [{offset}]" in table.stdout
        assert table.stdout.splitlines()[-1] == "1 gap(s) in 1 partition(s)"
    finally:
        await engine.dispose()
