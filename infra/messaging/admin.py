"""Topic administration and inspection: production topics are created with explicit partition counts, never
implicitly; tools and tests read topics back through the helpers here."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from infra.messaging.topics import dead_letter_topic


async def ensure_topics(bootstrap_servers: str, topics: Iterable[str], partitions: int, with_dlq: bool = True) -> None:
    """Create ``topics`` (and their ``.dlq`` twins) if missing; existing topics are left as they are."""
    wanted = set(topics)
    if with_dlq:
        wanted |= {dead_letter_topic(t) for t in wanted if not t.endswith(".dlq")}
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = sorted(wanted - existing)
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):  # a sibling process won the race
                await admin.create_topics(
                    [NewTopic(name=t, num_partitions=partitions, replication_factor=1) for t in missing]
                )
    finally:
        await admin.close()


async def delete_topics_with_prefix(bootstrap_servers: str, prefix: str) -> int:
    """Delete every topic whose name starts with ``prefix`` (a finished bench or demo run's own topics); returns
    how many. Refuses an empty prefix: production topics are never deleted from here."""
    if not prefix:
        raise ValueError("a run prefix is required; production topics are never deleted")
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        doomed = sorted(t for t in await admin.list_topics() if t.startswith(prefix))
        if doomed:
            await admin.delete_topics(doomed)
        return len(doomed)
    finally:
        await admin.close()


async def partitions_of(consumer: AIOKafkaConsumer, topics: Sequence[str]) -> list[TopicPartition]:
    """Every partition of ``topics``, in order; the consumer's metadata is refreshed once if a topic is new to it."""
    if any(consumer.partitions_for_topic(t) is None for t in topics):
        await consumer._client.force_metadata_update()
    return [TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or ())]


async def read_to_end(bootstrap_servers: str, topic: str) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record of ``topic`` from its start to the end it has now, each partition in offset order."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers, enable_auto_commit=False)
    await consumer.start()
    records: list[ConsumerRecord[bytes, bytes]] = []
    try:
        parts = await partitions_of(consumer, [topic])
        if not parts:
            return records
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        while [tp for tp in parts if await consumer.position(tp) < ends[tp]]:
            for tp, batch in (await consumer.getmany(timeout_ms=1000, max_records=10_000)).items():
                records += [r for r in batch if r.offset < ends[tp]]
    finally:
        await consumer.stop()
    return records
