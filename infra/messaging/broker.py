"""FastStream wiring: the idempotent broker and batch subscribers whose offsets follow the database.

A subscriber here only hands the raw records of a batch to a :class:`BatchConsumer` and, once that returns (the
PostgreSQL transaction committed), commits exactly the offsets after the last record of each partition.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError
from aiokafka.structs import OffsetAndMetadata
from faststream import AckPolicy
from faststream.kafka import KafkaBroker, KafkaMessage
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from faststream.kafka.subscriber.usecase import BatchSubscriber

from infra.logging import get_logger
from infra.messaging.consumer import BatchConsumer
from infra.messaging.metrics import MessagingMetrics
from infra.settings import KafkaSettings

log = get_logger(__name__)


def make_broker(settings: KafkaSettings, metrics: MessagingMetrics, client_id: str) -> KafkaBroker:
    """A KafkaBroker with an idempotent producer (acks=all) and FastStream's Prometheus middleware."""
    return KafkaBroker(
        settings.bootstrap_servers,
        client_id=client_id,
        enable_idempotence=True,
        acks="all",
        middlewares=[KafkaPrometheusMiddleware(registry=metrics.registry, app_name=client_id)],
        logger=None,
    )


async def _raw_batch(msg: KafkaMessage) -> list[bytes]:
    """Decoder that leaves bytes alone: the consumer core decodes, so a poison record never blocks a batch."""
    raw: Any = msg.raw_message
    return [r.value or b"" for r in raw]


def register_batch_consumer(
    broker: KafkaBroker,
    consumer: BatchConsumer,
    *,
    topics: Sequence[str],
    group_id: str,
    settings: KafkaSettings,
    description: str,
) -> BatchSubscriber:
    """Subscribe ``consumer`` to ``topics`` as a batch subscriber with manual, post-commit offsets."""

    subscriber = broker.subscriber(
        *topics,
        group_id=group_id,
        batch=True,
        max_records=settings.batch_max_records,
        batch_timeout_ms=settings.batch_timeout_ms,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        ack_policy=AckPolicy.MANUAL,
        decoder=_raw_batch,
        title=f"{group_id}:{','.join(topics)}",
        description=description,
    )

    @subscriber
    async def on_batch(body: list[bytes], message: KafkaMessage) -> None:
        records = await top_up(message.consumer, message.raw_message, settings)
        await consumer.process(records)
        await commit_offsets(message.consumer, records)

    return subscriber


async def top_up(
    kafka_consumer: AIOKafkaConsumer, records: Sequence[ConsumerRecord[bytes, bytes]], settings: KafkaSettings
) -> Sequence[ConsumerRecord[bytes, bytes]]:
    """Add what reached the broker since the batch's records were fetched.

    The consumer prefetches while a batch is being applied, but only once per partition: the records a batch
    starts with were fetched soon after the previous one started, and what arrived later waits a whole batch
    more. One short fetch (``batch_top_up_ms``) before applying takes it in this batch. Records of a partition
    stay in offset order: the top-up only holds records after those already taken.
    """
    room = settings.batch_max_records - len(records)
    if room <= 0 or settings.batch_top_up_ms <= 0:
        return records
    more = await kafka_consumer.getmany(timeout_ms=settings.batch_top_up_ms, max_records=room)
    if not more:
        return records
    return [*records, *(r for batch in more.values() for r in batch)]


async def commit_offsets(kafka_consumer: AIOKafkaConsumer, records: Sequence[ConsumerRecord[bytes, bytes]]) -> None:
    """Commit, per partition, the offset after the last applied record (only called after the DB commit)."""
    offsets: dict[TopicPartition, OffsetAndMetadata] = {}
    for r in records:
        tp = TopicPartition(r.topic, r.partition)
        if tp not in offsets or offsets[tp].offset <= r.offset:
            offsets[tp] = OffsetAndMetadata(r.offset + 1, "")
    try:
        await kafka_consumer.commit(offsets)
    except (CommitFailedError, IllegalStateError) as exc:
        # A rebalance took the partitions away: the new owner redelivers and the inbox absorbs the repeat.
        log.warning("offset_commit_skipped", error=str(exc)[:200])


async def update_lag_metrics(subscriber: BatchSubscriber, group_id: str, metrics: MessagingMetrics) -> int:
    """Set the per-partition lag gauges of one subscriber; returns the number of assigned partitions."""
    kafka_consumer: AIOKafkaConsumer | None = subscriber.consumer
    if kafka_consumer is None:
        return 0
    assigned = kafka_consumer.assignment()
    for tp in assigned:
        high = kafka_consumer.highwater(tp)
        if high is None:
            continue
        committed = await kafka_consumer.committed(tp)
        lag = high - (committed or 0)
        metrics.consumer_lag.labels(group_id, tp.topic, str(tp.partition)).set(max(lag, 0))
    return len(assigned)
