"""A batch of records this consumer only skips (known types it does not act on, by their type header) costs no
transaction and no relay wake-up; a batch with one event it acts on is applied as before. On the real database."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka.structs import ConsumerRecord
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from infra.db.roles import RoleUrls
from infra.messaging.consumer import BatchConsumer
from infra.messaging.envelope import make_envelope
from infra.messaging.metrics import MessagingMetrics
from infra.settings import KafkaSettings
from tests.integration.messaging_support import count, create_scratch_schema, recording_handler

pytestmark = pytest.mark.integration

WANTED = "karya.test.wanted.v1"
OTHER = "karya.test.other.v1"


def _record(offset: int, type_name: str) -> ConsumerRecord[bytes, bytes]:
    value = make_envelope(type=type_name, source="t", subject=f"s:{offset}", data={"seq": offset}).to_bytes()
    headers = (("karya-event-type", type_name.encode()),)
    return ConsumerRecord("t", 0, offset, 0, 0, b"k", value, None, 1, len(value), headers)


async def test_a_batch_of_skipped_types_opens_no_transaction(database: RoleUrls, service_engine: AsyncEngine) -> None:
    schema = f"sk_{uuid.uuid4().hex[:8]}"
    await create_scratch_schema(database.migrator, schema)
    checkouts: list[int] = []
    event.listen(service_engine.sync_engine.pool, "checkout", lambda *_: checkouts.append(1))
    wakes: list[int] = []
    consumer = BatchConsumer(
        name=schema,
        schema=schema,
        engine=service_engine,
        handler=recording_handler(schema),
        settings=KafkaSettings(bootstrap_servers="unused:9092", retry_backoff_ms=1),
        metrics=MessagingMetrics(),
        sleep=lambda _: asyncio.sleep(0),
        event_types=frozenset({WANTED}),
        known_types=frozenset({WANTED, OTHER}),
        after_commit=lambda: wakes.append(1),
    )

    await consumer.process([_record(n, OTHER) for n in range(5)])
    assert (checkouts, wakes) == ([], [])

    await consumer.process([*(_record(n, OTHER) for n in range(5, 8)), _record(8, WANTED)])
    assert checkouts and wakes == [1]
    assert await count(service_engine, f"SELECT count(*) FROM {schema}.applied") == 1
    assert await count(service_engine, f"SELECT count(*) FROM {schema}.inbox") == 1
