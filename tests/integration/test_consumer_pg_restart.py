"""Acceptance (issue 12): PostgreSQL stopped immediately and restarted while a batch is applied loses nothing.

The failure measured before: ``pg_ctl stop -m immediate`` and a restart made asyncpg raise CannotConnectNowError
(SQLSTATE 57P03, "the database system is starting up"); the batch escaped the consumer, its offsets were not
committed, and the next batch committed offsets past it: 507 of 14,912 events lost for good.

Here the handler of the first batch crashes the test's own PostgreSQL server in the middle of its transaction;
the server then comes back held in recovery, where every connection is refused with 57P03, until the consumer has
met that refusal (as the server's own log shows); then recovery ends and more events arrive. The consumer, run by
the real FastStream subscriber on the shared Kafka broker in small batches, must apply every record exactly once
with no gap, and commit exactly the partition ends. (On the code before the fix this test fails with the batches
of the 57P03 window never applied while the committed offsets passed them.)
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import pytest
import structlog
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection
from structlog.testing import capture_logs

from infra.db.engine import make_engine
from infra.messaging.admin import ensure_topics
from infra.messaging.broker import make_broker, register_batch_consumer
from infra.messaging.consumer import BatchConsumer, InboundEvent, Rejection
from infra.messaging.metrics import MessagingMetrics
from infra.settings import KafkaSettings
from tests.integration.consumer_faults_support import committed_and_end, events, inbox_offsets, publish
from tests.integration.messaging_support import count, create_scratch_schema, recording_handler, wait_for
from tests.integration.private_postgres import PrivatePostgres, bootstrap, private_postgres
from tests.naming import session_topic, unique_suffix

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

EVENTS, LATER, PARTITIONS, BATCH = 600, 200, 3, 50


@pytest.fixture
async def server() -> AsyncIterator[PrivatePostgres]:
    """A PostgreSQL server of this test's own: it is crashed, and the shared one must never be."""
    with private_postgres() as pg:
        yield pg


def _refused_with_57p03(logs: Sequence[Mapping[str, Any]]) -> bool:
    return any(
        e["event"] == "database_unavailable"
        and (e.get("sqlstate") == "57P03" or e.get("error") == "CannotConnectNowError")
        for e in logs
    )


class _CrashOnFirstBatch:
    """Records each event (``applied`` row); on its first call, after writing, crashes PostgreSQL under the open
    transaction and starts the restart: held in recovery (57P03) until the consumer met it, then recovery ends."""

    def __init__(self, schema: str, server: PrivatePostgres) -> None:
        self._record = recording_handler(schema)
        self._server = server
        self.calls = 0
        self.restart: asyncio.Task[None] | None = None

    async def __call__(self, conn: AsyncConnection, events: Sequence[InboundEvent]) -> Sequence[Rejection] | None:
        self.calls += 1
        await self._record(conn, events)
        if self.restart is None:
            await asyncio.to_thread(self._server.crash)
            self.restart = asyncio.create_task(self._restart())
            await conn.execute(text("SELECT 1"))  # the server is gone: this raises
        return None

    async def _restart(self) -> None:
        await asyncio.sleep(1.0)  # refused connections first (server down), then "starting up"
        await asyncio.to_thread(self._server.start_in_recovery)

        async def listening() -> bool:
            return await self._server.refused_with() != "refused"

        await wait_for(listening, timeout=30, what="the server listening again")
        assert await self._server.refused_with() == "57P03"

        async def consumer_met_it() -> bool:  # as the server saw it: whatever the consumer makes of it
            return self._server.refusals("karya_service") >= 3

        await wait_for(consumer_met_it, timeout=60, what="the consumer refused with 57P03")
        await asyncio.to_thread(self._server.finish_recovery)


async def test_immediate_stop_and_restart_mid_batch_loses_nothing(
    kafka_bootstrap: str, server: PrivatePostgres
) -> None:
    urls = await bootstrap(server)
    schema, topic = f"pgcrash_{unique_suffix()}", session_topic("test.pgcrash")
    group_id = f"{topic}.group"
    await create_scratch_schema(urls.migrator, schema)
    await ensure_topics(kafka_bootstrap, [topic], partitions=PARTITIONS)
    produced = await publish(kafka_bootstrap, topic, events(EVENTS))

    settings = KafkaSettings(
        bootstrap_servers=kafka_bootstrap,
        partitions=PARTITIONS,
        batch_max_records=BATCH,  # several batches: a lost one would be passed by the next one's commit
        retry_backoff_ms=20,
        retry_backoff_max_ms=300,
    )
    metrics = MessagingMetrics()
    engine = make_engine(urls.service, pool_size=2)
    check = make_engine(urls.service, pool_size=1)
    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
        handler = _CrashOnFirstBatch(schema, server)
        consumer = BatchConsumer(
            name=schema, schema=schema, engine=engine, handler=handler, settings=settings, metrics=metrics
        )
        broker = make_broker(settings, metrics, client_id=f"test-{schema}")
        register_batch_consumer(broker, consumer, topics=[topic], group_id=group_id, settings=settings, description="")
        await broker.start()
        try:
            await wait_for(lambda: _ready(handler), timeout=60, what="the crash and the restart")
            assert handler.restart is not None
            await handler.restart  # raises if the 57P03 window was not met
            produced += await publish(kafka_bootstrap, topic, events(LATER))  # traffic goes on after the restart

            async def committed_at_end() -> bool:
                committed, ends = await committed_and_end(kafka_bootstrap, group_id, topic, PARTITIONS)
                return committed == ends

            # Offsets reach the partition ends either way; whether everything before them was applied is the test.
            await wait_for(committed_at_end, timeout=90, what="offsets committed up to the partition ends")
        finally:
            await broker.stop()
            await engine.dispose()

    try:
        async with check.connect() as conn:
            applied = (await conn.execute(text(f"SELECT event_id FROM {schema}.applied"))).scalars().all()
            dead = await count(check, f"SELECT count(*) FROM {schema}.dead_letters")
        offsets = await inbox_offsets(check, schema, topic)
    finally:
        await check.dispose()
    _, ends = await committed_and_end(kafka_bootstrap, group_id, topic, PARTITIONS)

    missing = {p.envelope.event_id for p in produced} - set(applied)
    assert not missing, f"{len(missing)} of {len(produced)} events never applied, although offsets passed them"
    assert sorted(applied) == sorted(p.envelope.event_id for p in produced), "each event applied exactly once"
    assert dead == 0
    assert {p: offsets.get(p, []) for p in ends} == {p: list(range(end)) for p, end in ends.items()}, "no gap"
    assert handler.calls >= 2, "the crashed batch was applied again"

    unavailable = [e for e in logs if e["event"] == "database_unavailable"]
    assert _refused_with_57p03(unavailable)
    assert len(unavailable) <= 10, "an outage logs its failure modes, not every retry"
    assert [e["event"] for e in logs].count("database_available") == 1
    assert not [e for e in logs if e["event"] in ("batch_not_applied", "batch_failed_isolating")]
    assert "starting up" not in json.dumps(logs, default=repr)  # facts, not the server's text
    assert metrics.waiting_for_database.labels(schema)._value.get() == 0


async def _ready(handler: _CrashOnFirstBatch) -> bool:
    return handler.restart is not None
