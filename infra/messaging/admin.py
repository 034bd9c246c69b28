"""Topic administration and inspection: production topics are created with explicit partition counts, never
implicitly; tools and tests read topics back through the helpers here, and the demo and the fault suite count a
run's dead letters and lag with :class:`BrokerProbe`."""

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
        # Private: no public call refreshes a standalone consumer's metadata (pinned; tests/unit/test_private_apis.py).
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


class BrokerProbe:
    """Dead-letter and lag counts of one run's topics, from one admin client and one consumer kept open.

    A watcher that looks every second must not rebuild its clients and re-read the whole cluster's metadata each
    time: on a broker that holds thousands of topics that cost a core's worth of CPU on this machine, taken from
    the services being measured. The run's partitions are listed once, when the probe opens."""

    def __init__(self, bootstrap: str, prefix: str) -> None:
        self._bootstrap = bootstrap
        self._prefix = prefix
        self._admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        self._consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        self._parts: list[TopicPartition] = []

    async def __aenter__(self) -> BrokerProbe:
        await self._admin.start()
        await self._consumer.start()
        topics = sorted(t for t in await self._admin.list_topics() if t.startswith(self._prefix))
        self._parts = await partitions_of(self._consumer, topics)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._consumer.stop()
        await self._admin.close()

    async def counts(self, groups: Sequence[str]) -> tuple[int, int]:
        """(messages on the run's dead-letter topics, total consumer lag of ``groups``)."""
        ends = await self._consumer.end_offsets(self._parts) if self._parts else {}
        dlq_parts = [tp for tp in self._parts if tp.topic.endswith(".dlq")]
        begins = await self._consumer.beginning_offsets(dlq_parts) if dlq_parts else {}
        dlq = sum(ends[tp] - begins[tp] for tp in dlq_parts)
        lag = 0
        for group in groups:
            committed = await self._admin.list_consumer_group_offsets(group)
            for tp, meta in committed.items():
                if tp in ends:
                    lag += max(0, ends[tp] - meta.offset)
        return dlq, lag


async def broker_counts(bootstrap: str, prefix: str, groups: list[str]) -> tuple[int, int]:
    """(messages on the run's dead-letter topics, total consumer lag of ``groups``), with a probe of its own."""
    async with BrokerProbe(bootstrap, prefix) as probe:
        return await probe.counts(groups)
