"""The consumer core's two-phase hook on the real database: ``prepare`` runs once per batch with no pooled
connection checked out (no transaction open while a handler calls out), and what it returns applies the batch —
the whole batch, then each event during isolation — with the prepared answers, without preparing again."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence

import pytest
from aiokafka.structs import ConsumerRecord
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from infra.db.roles import RoleUrls
from infra.messaging.consumer import BatchConsumer, BatchHandler, InboundEvent, Rejection
from infra.messaging.envelope import make_envelope
from infra.messaging.metrics import MessagingMetrics
from infra.settings import KafkaSettings
from tests.integration.messaging_support import count, create_scratch_schema, recording_handler

pytestmark = pytest.mark.integration


def _record(offset: int, value: bytes) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord("t", 0, offset, 0, 0, b"k", value, None, 1, len(value), ())


class TwoPhase:
    """``prepare`` "fetches" each event's answer; the apply phase refuses to run without one."""

    def __init__(self, engine: AsyncEngine, schema: str) -> None:
        self.engine = engine
        self.record = recording_handler(schema)
        self.prepared: list[int] = []
        self.held_during_prepare: list[int] = []

    async def __call__(self, conn: AsyncConnection, events: Sequence[InboundEvent]) -> None:
        raise AssertionError("a preparing handler is applied through what prepare returns")

    async def prepare(self, events: Sequence[InboundEvent]) -> BatchHandler:
        self.prepared.append(len(events))
        self.held_during_prepare.append(self.engine.pool.checkedout())  # type: ignore[attr-defined]
        answers = {e.envelope.event_id: e.envelope.data["seq"] for e in events}

        async def apply(conn: AsyncConnection, events: Sequence[InboundEvent]) -> Sequence[Rejection] | None:
            assert all(e.envelope.event_id in answers for e in events)
            return await self.record(conn, events)

        return apply


async def test_prepare_runs_once_outside_the_transaction_and_isolation_reuses_it(
    database: RoleUrls, service_engine: AsyncEngine
) -> None:
    schema = f"tp_{uuid.uuid4().hex[:8]}"
    await create_scratch_schema(database.migrator, schema)
    handler = TwoPhase(service_engine, schema)
    consumer = BatchConsumer(
        name=schema,
        schema=schema,
        engine=service_engine,
        handler=handler,
        settings=KafkaSettings(bootstrap_servers="unused:9092", retry_backoff_ms=1, max_attempts=3),
        metrics=MessagingMetrics(),
        sleep=lambda _: asyncio.sleep(0),
    )
    events = [
        make_envelope(type="karya.test.happened.v1", source="t", subject=f"s:{n}", data={"seq": n, "poison": n == 2})
        for n in range(4)
    ]
    await consumer.process([_record(n, e.to_bytes()) for n, e in enumerate(events)])

    assert handler.prepared == [4]  # once, for the whole batch, though the batch was isolated
    assert handler.held_during_prepare == [0]
    assert await count(service_engine, f"SELECT count(*) FROM {schema}.applied") == 3
    assert await count(service_engine, f"SELECT count(*) FROM {schema}.dead_letters") == 1
