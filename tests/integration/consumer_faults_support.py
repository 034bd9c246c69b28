"""Pieces of the consumer fault tests: publish events, read a group's committed offsets and the partition ends,
and check that every record up to the end has an inbox row (no gap)."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from infra.messaging.envelope import Envelope, make_envelope

TEST_TYPE = "karya.test.happened.v1"


@dataclass(frozen=True)
class Published:
    """Where one record landed."""

    envelope: Envelope
    partition: int
    offset: int


def events(count: int, *, type: str = TEST_TYPE, keys: int = 12) -> list[Envelope]:
    """``count`` test events over ``keys`` order keys (so they spread over the partitions)."""
    return [
        make_envelope(type=type, source="karya/tests", subject=f"shopee:s1:o{i % keys}", data={"seq": i})
        for i in range(count)
    ]


async def publish(
    bootstrap: str,
    topic: str,
    envelopes: Sequence[Envelope],
    *,
    partition: int | None = None,
    type_header: bool = True,
) -> list[Published]:
    """Send ``envelopes`` (keyed by subject, with the ``karya-event-type`` header unless told not to)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all", linger_ms=5)
    await producer.start()
    try:
        futures = [
            await producer.send(
                topic,
                value=e.to_bytes(),
                key=e.subject.encode(),
                partition=partition,
                headers=[("karya-event-type", e.type.encode())] if type_header else [],
            )
            for e in envelopes
        ]
        metas = await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return [Published(e, m.partition, m.offset) for e, m in zip(envelopes, metas, strict=True)]


async def committed_and_end(
    bootstrap: str, group_id: str, topic: str, partitions: int
) -> tuple[dict[int, int], dict[int, int]]:
    """The group's committed offset (0 when none) and the end offset of each partition."""
    probe = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group_id, enable_auto_commit=False)
    await probe.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        committed = {tp.partition: (await probe.committed(tp)) or 0 for tp in tps}
        ends = {tp.partition: o for tp, o in (await probe.end_offsets(tps)).items()}
    finally:
        await probe.stop()
    return committed, ends


async def inbox_offsets(engine: AsyncEngine, schema: str, topic: str) -> dict[int, list[int]]:
    """Offsets with an inbox row, per partition, sorted (duplicates kept, so a test can see them)."""
    found: dict[int, list[int]] = defaultdict(list)
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(f'SELECT "partition", "offset" FROM {schema}.inbox WHERE topic = :t ORDER BY 1, 2'), {"t": topic}
        )
        for p, o in rows:
            found[int(p)].append(int(o))
    return dict(found)
