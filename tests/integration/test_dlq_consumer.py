"""The batch consumer and replayed records, on the real database (records handed to ``process`` as a Kafka batch
would be; the broker path is ``test_dlq_replay.py``): only a replay of THIS consumer's dead letter is applied
again, an applied event is never applied twice whatever headers its copy carries, and a replay that fails again
becomes a new dead letter carrying its count."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from infra.db.roles import RoleUrls
from infra.messaging.consumer import BatchConsumer, InboundEvent, PermanentError
from infra.messaging.envelope import Envelope, make_envelope
from infra.messaging.metrics import MessagingMetrics
from infra.messaging.outbox import decode_headers
from infra.messaging.replay import replay_count, replay_headers
from infra.settings import KafkaSettings
from tests.integration.messaging_support import count, create_scratch_schema, recording_handler

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Record:
    """A fetched record's fields (the consumer's KafkaRecord)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes]]


async def _no_sleep(_: float) -> None:
    return None


async def test_only_a_replay_of_this_consumers_dead_letter_applies_again(
    database: RoleUrls, service_engine: AsyncEngine
) -> None:
    schema = f"dlq_{uuid.uuid4().hex[:8]}"
    await create_scratch_schema(database.migrator, schema)
    broken: set[str] = {"tokopedia:s1:poison"}
    record_applied = recording_handler(schema)

    async def handler(conn: AsyncConnection, events: Sequence[InboundEvent]) -> None:
        if any(e.envelope.subject in broken for e in events):
            raise PermanentError("unknown listing")
        await record_applied(conn, events)

    consumer = BatchConsumer(
        name=schema,
        schema=schema,
        engine=service_engine,
        handler=handler,
        settings=KafkaSettings(bootstrap_servers="unused:9092", retry_backoff_ms=1),
        metrics=MessagingMetrics(),
        sleep=_no_sleep,
    )
    good = make_envelope(type="karya.test.happened.v1", source="t", subject="tokopedia:s1:good", data={"seq": 1})
    poison = make_envelope(type="karya.test.happened.v1", source="t", subject="tokopedia:s1:poison", data={"seq": 2})
    offset = 0

    async def deliver(event: Envelope, *, count_: int = 0, for_consumer: str = schema) -> None:
        nonlocal offset
        headers = [("karya-event-type", b"karya.test.happened.v1")]
        if count_:
            headers = replay_headers(headers, count=count_, consumer=for_consumer, replay_of=f"{schema}:1")
        await consumer.process([Record("t", 0, offset, event.subject.encode(), event.to_bytes(), headers)])
        offset += 1

    async def state() -> tuple[int, int, list[int], str | None]:
        async with service_engine.connect() as conn:
            status = await conn.execute(
                text(f"SELECT status FROM {schema}.inbox WHERE event_id = :e"), {"e": poison.event_id}
            )
            headers = await conn.execute(text(f"SELECT headers FROM {schema}.dead_letters ORDER BY id"))
            counts = [replay_count(decode_headers(h)) for (h,) in headers]
            inbox = status.scalar_one_or_none()
        good_applied = await count(service_engine, f"SELECT count(*) FROM {schema}.applied WHERE seq = 1")
        poison_applied = await count(service_engine, f"SELECT count(*) FROM {schema}.applied WHERE seq = 2")
        return good_applied, poison_applied, counts, inbox

    await deliver(good)
    await deliver(poison)
    assert await state() == (1, 0, [0], "dead_lettered")

    await deliver(good, count_=1)  # a copy of an APPLIED event dressed as a replay: a duplicate
    await deliver(poison, count_=1, for_consumer="someone-else")  # another consumer's replay: a duplicate here
    assert await state() == (1, 0, [0], "dead_lettered")

    await deliver(poison, count_=1)  # still broken: dead-lettered again, with its count
    assert await state() == (1, 0, [0, 1], "dead_lettered")

    broken.clear()  # the fix
    await deliver(poison, count_=2)
    assert await state() == (1, 1, [0, 1], "applied")
    await deliver(poison, count_=2)  # the same replay again: applied once
    await deliver(poison, count_=3)
    assert await state() == (1, 1, [0, 1], "applied")
    assert consumer.metrics.events_duplicate.labels(schema)._value.get() == 4
