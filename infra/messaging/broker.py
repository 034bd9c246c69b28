"""FastStream wiring: the idempotent broker and batch subscribers whose offsets follow the database.

A subscriber here only hands the raw records of a batch to a :class:`BatchConsumer` and, once that returns (the
PostgreSQL transaction committed), commits exactly the offsets after the last record of each partition (while the
next batch runs: :class:`BatchGuard`).

Failing closed: with ``AckPolicy.MANUAL`` FastStream 0.7 neither nacks nor stops when a handler raises; its
``SubscriberUsecase.consume`` swallows the exception (it is only logged, and the broker has ``logger=None``) and the
consume loop fetches on from where the consumer's position already is, past the failed batch, so the next commit
would pass records never applied. So the handler never lets an exception out: it rewinds every partition of
what it took (the batch and its top-up) to its first offset, logs ``batch_not_applied`` with value-free facts,
waits a capped, jittered backoff and returns; the next fetch returns those records again. A partition stalls on
a batch that keeps failing (its lag grows, the log says why) instead of losing it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.errors import CommitFailedError, IllegalStateError
from aiokafka.structs import OffsetAndMetadata
from faststream import AckPolicy
from faststream.kafka import KafkaBroker, KafkaMessage
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from faststream.kafka.subscriber.usecase import BatchSubscriber

from infra.errors import describe_error
from infra.logging import get_logger
from infra.messaging.consumer import BatchConsumer
from infra.messaging.failures import backoff_s
from infra.messaging.metrics import MessagingMetrics
from infra.settings import KafkaSettings

log = get_logger(__name__)

ASSIGNORS = (RangePartitionAssignor,)
"""How a consumer group shares partitions: by range, so a member that takes partition p of one of its topics takes
partition p of the others too (topics keyed alike, with as many partitions). The ledger's input and the orders'
input are two topics each, keyed by order: co-partitioned, all events of an order reach one process, whose segment
(the partition) no other process locks. aiokafka's default, round robin, co-partitions only when the partitions
divide evenly among the members (6 among 4 do not). Range alone: offering round robin second, for a group
mid-upgrade from it, made aiokafka 0.14's group join hang now and then (a third of the tries of four members).
So a group that ran with round robin is restarted whole, not rolled, when it first runs this."""


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
    guard: BatchGuard | None = None,
) -> BatchSubscriber:
    """Subscribe ``consumer`` to ``topics`` as a batch subscriber with manual, post-commit offsets (``guard``: the
    one that runs its batches, when the caller keeps it to :meth:`BatchGuard.drain` it at shutdown)."""

    subscriber = broker.subscriber(
        *topics,
        group_id=group_id,
        batch=True,
        max_records=settings.batch_max_records,
        batch_timeout_ms=settings.batch_timeout_ms,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        partition_assignment_strategy=ASSIGNORS,
        ack_policy=AckPolicy.MANUAL,
        decoder=_raw_batch,
        title=f"{group_id}:{','.join(topics)}",
        description=description,
    )

    guard = guard or BatchGuard(consumer.name, settings, consumer.metrics)

    @subscriber
    async def on_batch(body: list[bytes], message: KafkaMessage) -> None:
        await guard.run(message.consumer, message.raw_message, consumer.process)

    return subscriber


class BatchGuard:
    """Runs one batch (top-up, apply, commit) so that an error never lets a later commit pass its records.

    The offsets of an applied batch are committed while the next batch is fetched and applied: the database commit
    is what makes a batch's effect durable, and waiting for the broker's answer (~8 ms on a busy 2-core box) before
    fetching again only added to every event's latency. Commits stay in batch order, one in flight at a time; one
    that fails leaves its records to be delivered again after a rebalance or restart, where the inbox absorbs them,
    as after a crash between the two commits. :meth:`drain` waits for the last one (a stopping service)."""

    def __init__(
        self,
        name: str,
        settings: KafkaSettings,
        metrics: MessagingMetrics,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.name = name
        self._settings = settings
        self._metrics = metrics
        self._sleep = sleep
        self._failures = 0  # consecutive batches not applied: the backoff grows with it
        self._commit: asyncio.Task[None] | None = None  # the offsets of the last applied batch, in flight
        self._stopping = False

    async def run(
        self,
        kafka_consumer: AIOKafkaConsumer,
        batch: Sequence[ConsumerRecord[bytes, bytes]],
        apply: Callable[[Sequence[ConsumerRecord[bytes, bytes]]], Awaitable[None]],
    ) -> bool:
        """Apply ``batch`` (topped up) and start committing its offsets; on any error rewind, log, back off and
        return False (never raise: see the module docstring)."""
        records: Sequence[ConsumerRecord[bytes, bytes]] = batch
        try:
            records = await top_up(kafka_consumer, batch, self._settings)
            await apply(records)
        except Exception as exc:
            self._failures += 1
            firsts = rewind(kafka_consumer, records)
            self._metrics.batches_not_applied.labels(self.name).inc()
            delay = backoff_s(self._failures, self._settings.retry_backoff_ms, self._settings.retry_backoff_max_ms)
            log.error(
                "batch_not_applied",
                consumer=self.name,
                records=len(records),
                partitions=[f"{tp.topic}/{tp.partition}" for tp in firsts],
                first_offsets=list(firsts.values()),
                consecutive=self._failures,
                retry_in_s=round(delay, 3),
                **describe_error(exc),
            )
            await self._sleep(delay)
            return False
        self._failures = 0
        self._commit = asyncio.ensure_future(self._commit_after(self._commit, kafka_consumer, records))
        if self._stopping:
            await self.drain()
        return True

    async def _commit_after(
        self,
        previous: asyncio.Task[None] | None,
        kafka_consumer: AIOKafkaConsumer,
        records: Sequence[ConsumerRecord[bytes, bytes]],
    ) -> None:
        if previous is not None:
            await asyncio.gather(previous, return_exceptions=True)  # it logged its own failure
        try:
            await commit_offsets(kafka_consumer, records)
        except Exception as exc:
            log.warning("offset_commit_failed", consumer=self.name, records=len(records), **describe_error(exc))

    async def drain(self) -> None:
        """Wait until the offsets of every applied batch are committed (or their commit failed); from now on each
        batch waits for its own commit, so a service that is stopping closes its consumer with nothing in flight."""
        self._stopping = True
        if self._commit is not None:
            await asyncio.gather(self._commit, return_exceptions=True)


def first_offsets(records: Sequence[ConsumerRecord[bytes, bytes]]) -> dict[TopicPartition, int]:
    """The lowest offset taken from each partition."""
    firsts: dict[TopicPartition, int] = {}
    for r in records:
        tp = TopicPartition(r.topic, r.partition)
        if tp not in firsts or r.offset < firsts[tp]:
            firsts[tp] = r.offset
    return firsts


def rewind(
    kafka_consumer: AIOKafkaConsumer, records: Sequence[ConsumerRecord[bytes, bytes]]
) -> dict[TopicPartition, int]:
    """Seek every partition of ``records`` back to its first offset, so the next fetch returns them again.

    A partition no longer assigned (a rebalance took it) is left alone: its new owner starts from the committed
    offset, which is before these records."""
    firsts = first_offsets(records)
    for tp, offset in firsts.items():
        try:
            kafka_consumer.seek(tp, offset)
        except IllegalStateError:
            log.warning("rewind_skipped_unassigned", partition=f"{tp.topic}/{tp.partition}", offset=offset)
    return firsts


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
        log.warning("offset_commit_skipped", **describe_error(exc))


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
