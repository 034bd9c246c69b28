"""A batch takes in, with one short fetch, what reached the broker after its records were fetched (real Kafka)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import pytest
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from infra.messaging.admin import ensure_topics
from infra.messaging.broker import top_up
from infra.messaging.relay import make_producer
from infra.settings import KafkaSettings
from tests.naming import session_topic

pytestmark = pytest.mark.integration


async def _produce(bootstrap: str, topic: str, first: int, count: int) -> None:
    producer = make_producer(bootstrap, "test-top-up")
    await producer.start()
    try:
        for n in range(first, first + count):
            await producer.send_and_wait(topic, value=str(n).encode(), key=f"k{n % 5}".encode())
    finally:
        await producer.stop()


async def _take(consumer: AIOKafkaConsumer, count: int) -> list[ConsumerRecord[bytes, bytes]]:
    taken: list[ConsumerRecord[bytes, bytes]] = []
    for _ in range(50):
        batch = await consumer.getmany(timeout_ms=200, max_records=count - len(taken))
        taken += [r for records in batch.values() for r in records]
        if len(taken) >= count:
            return taken
    raise AssertionError(f"only {len(taken)} of {count} records arrived")


@asynccontextmanager
async def _reading(bootstrap: str, partitions: int) -> AsyncIterator[tuple[str, AIOKafkaConsumer]]:
    """A fresh topic of this session and a consumer assigned all of it from the start."""
    topic = session_topic("test.topup")
    await ensure_topics(bootstrap, [topic], partitions=partitions, with_dlq=False)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, p) for p in range(partitions)])
        await consumer.seek_to_beginning()
        yield topic, consumer
    finally:
        await consumer.stop()


def _offsets_by_partition(records: Sequence[ConsumerRecord[bytes, bytes]]) -> dict[int, list[int]]:
    out: dict[int, list[int]] = defaultdict(list)
    for r in records:
        out[r.partition].append(r.offset)
    return out


async def test_top_up_adds_later_records_after_the_batch_in_partition_order(kafka_bootstrap: str) -> None:
    async with _reading(kafka_bootstrap, partitions=2) as (topic, consumer):
        await _produce(kafka_bootstrap, topic, 0, 10)
        batch = await _take(consumer, 10)
        await _produce(kafka_bootstrap, topic, 10, 6)  # arrives while the batch would be applied

        settings = KafkaSettings(bootstrap_servers=kafka_bootstrap, batch_max_records=100, batch_top_up_ms=2000)
        topped = list(await top_up(consumer, batch, settings))

        assert topped[: len(batch)] == batch  # the batch is kept as it was, first
        added = topped[len(batch) :]
        assert added, "the records produced after the fetch were not taken in"
        assert {int(r.value or b"") for r in added} <= set(range(10, 16))
        for partition, offsets in _offsets_by_partition(topped).items():  # per partition: in order, no gap
            assert offsets == list(range(offsets[0], offsets[0] + len(offsets))), partition
            assert offsets[0] == 0
        rest = await _take(consumer, 16 - len(topped)) if len(topped) < 16 else []
        assert sorted(int(r.value or b"") for r in [*topped, *rest]) == list(range(16))  # nothing lost or repeated


async def test_top_up_leaves_a_full_batch_or_a_disabled_one_alone(kafka_bootstrap: str) -> None:
    async with _reading(kafka_bootstrap, partitions=1) as (topic, consumer):
        await _produce(kafka_bootstrap, topic, 0, 4)
        batch = await _take(consumer, 4)
        await _produce(kafka_bootstrap, topic, 4, 3)

        full = KafkaSettings(bootstrap_servers=kafka_bootstrap, batch_max_records=4, batch_top_up_ms=2000)
        assert list(await top_up(consumer, batch, full)) == batch
        disabled = KafkaSettings(bootstrap_servers=kafka_bootstrap, batch_max_records=100, batch_top_up_ms=0)
        assert list(await top_up(consumer, batch, disabled)) == batch
        # Nothing was consumed by either call: the next batch starts right after the first one.
        rest = await _take(consumer, 3)
        assert [r.offset for r in rest] == [4, 5, 6]
