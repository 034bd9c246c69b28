"""Shared pieces of the messaging tests: a scratch schema with the messaging tables, a handler, reading a topic."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence

from aiokafka import AIOKafkaConsumer, ConsumerRecord
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from infra.db.engine import make_engine
from infra.db.roles import mutable_table_grants, schema_grants
from infra.messaging.consumer import BatchHandler, InboundEvent, PermanentError
from infra.messaging.ddl import messaging_tables_ddl, outbox_as_queue_ddl


async def create_scratch_schema(migrator_url: str, schema: str) -> None:
    """As the migrator: a schema with inbox/outbox/dead_letters and an ``applied`` table."""
    engine = make_engine(migrator_url, pool_size=1)
    try:
        async with engine.begin() as conn:
            await conn.execute(text(f"CREATE SCHEMA {schema}"))
            statements = [
                *schema_grants(schema),
                *messaging_tables_ddl(schema),
                *outbox_as_queue_ddl(schema),
                *mutable_table_grants(schema, "outbox", delete=True),
                *mutable_table_grants(schema, "inbox", delete=True),
                f"CREATE TABLE {schema}.applied (event_id uuid PRIMARY KEY, subject text NOT NULL, "
                "seq integer NOT NULL, applied_at timestamptz NOT NULL DEFAULT clock_timestamp())",
                f"GRANT SELECT, INSERT ON {schema}.applied TO karya_service",
            ]
            for statement in statements:
                await conn.execute(text(statement))
    finally:
        await engine.dispose()


def recording_handler(schema: str, poison_marker: str = "poison") -> BatchHandler:
    """A handler that records each event once and fails on events whose data carries ``poison_marker``."""

    async def handle(conn: AsyncConnection, events: Sequence[InboundEvent]) -> None:
        for e in events:
            if e.envelope.data.get(poison_marker):
                raise RuntimeError(f"cannot apply event with seq {e.envelope.data.get('seq')}")
            if e.envelope.data.get("permanent"):
                raise PermanentError("rejected by the domain")
        await conn.execute(
            text(
                f"INSERT INTO {schema}.applied (event_id, subject, seq) "
                "SELECT * FROM unnest(CAST(:ids AS uuid[]), CAST(:subjects AS text[]), CAST(:seqs AS int[]))"
            ),
            {
                "ids": [e.envelope.event_id for e in events],
                "subjects": [e.envelope.subject for e in events],
                "seqs": [int(e.envelope.data["seq"]) for e in events],
            },
        )

    return handle


async def wait_for(predicate: Callable[[], Awaitable[bool]], timeout: float = 60.0, what: str = "condition") -> None:
    """Poll ``predicate`` until true; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


async def count(engine: AsyncEngine, sql: str) -> int:
    """``SELECT count(*)``-style helper."""
    async with engine.connect() as conn:
        return int((await conn.execute(text(sql))).scalar_one())


async def read_topic(
    bootstrap: str, topic: str, expected: int, wait_s: float = 30.0
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record of ``topic`` from the start, once ``expected`` have arrived (or ``wait_s`` passed), plus what
    one more second of reading brings: a test can then assert that nothing beyond ``expected`` arrived."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False, group_id=None
    )
    await consumer.start()
    records: list[ConsumerRecord[bytes, bytes]] = []
    try:
        deadline = asyncio.get_running_loop().time() + wait_s
        while len(records) < expected and asyncio.get_running_loop().time() < deadline:
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                records.extend(batch)
        for batch in (await consumer.getmany(timeout_ms=1000)).values():
            records.extend(batch)
    finally:
        await consumer.stop()
    return records
