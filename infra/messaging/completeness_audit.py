"""The completeness audit: read what each consumer group committed past, and look for its trace in the database.

Per group and partition, the records from the start of retention (or a checkpoint) up to the group's committed
offset are read back (``read_committed``, as the services consume), each classified the way the consumer itself
classifies it (:func:`classify_record` runs the consumer's own decoding and type filter), and compared set-wise
with the consumer's inbox (by event id) and dead letters (by topic, partition and offset) — see
:mod:`infra.messaging.completeness` for the rule.

:func:`audit_completeness` is what ``karya audit completeness`` runs; :func:`run_completeness_audits` is the
periodic task a service runtime can run to keep ``karya_completeness_gaps{group,topic}`` current.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from uuid import UUID

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import OffsetAndMetadata
from prometheus_client import CollectorRegistry, Gauge
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from infra.errors import describe_error
from infra.logging import get_logger
from infra.messaging.admin import partitions_of
from infra.messaging.completeness import (
    Checkpoint,
    Origin,
    PartitionAudit,
    RecordFacts,
    gaps_by_group_topic,
    total_gaps,
)
from infra.messaging.consumer import BatchConsumer

log = get_logger(__name__)

GAUGE_NAME = "karya_completeness_gaps"
_FETCH_RECORDS = 5000


@dataclass(frozen=True, slots=True)
class AuditedConsumer:
    """A consumer as wired in a service: its group, the schema of its inbox, its topics, and the consumer itself
    (whose decoding and ``event_types`` filter decide which records it acts on)."""

    group_id: str
    schema: str
    topics: tuple[str, ...]
    consumer: BatchConsumer

    @property
    def name(self) -> str:
        """The inbox's ``consumer`` column value."""
        return self.consumer.name


def classify_record(consumer: BatchConsumer, record: ConsumerRecord[bytes, bytes]) -> RecordFacts:
    """What ``consumer`` does with ``record``, decided by the consumer's own decoding and type filter: acts on it
    (an inbox row is due: events it applies, and events of unknown types, which it dead-letters once), skips it
    (a known type it does not act on), or dead-letters it without an inbox row (undecodable)."""
    batch = consumer.decode([record])
    acted = [*batch.events, *batch.unknown]
    if acted:
        return RecordFacts(record.offset, "act", acted[0].envelope.event_id)
    if batch.undecodable:
        return RecordFacts(record.offset, "undecodable")
    return RecordFacts(record.offset, "skip")


Progress = Callable[[str], None]


async def audit_completeness(
    consumers: Sequence[AuditedConsumer],
    *,
    engine: AsyncEngine,
    bootstrap_servers: str,
    checkpoint: Checkpoint | None = None,
    limit: int | None = None,
    progress: Progress | None = None,
    stall_s: float = 30.0,
) -> list[PartitionAudit]:
    """Audit every partition of every consumer's topics; one :class:`PartitionAudit` each.

    ``checkpoint``: start after what an earlier run verified (its open gaps are checked again); ``limit``: read
    at most this many offsets per partition (the rest is left for the next run: the audit says ``truncated``);
    ``progress``: called with a line now and then on long reads; ``stall_s``: give up on a partition that
    yields nothing for this long (it is reported truncated, never as gaps).
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        audits: list[PartitionAudit] = []
        for c in consumers:
            # A reader per group: once a consumer is assigned partitions, its metadata covers only their topics.
            reader: AIOKafkaConsumer = AIOKafkaConsumer(
                bootstrap_servers=bootstrap_servers,
                group_id=None,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                isolation_level="read_committed",
            )
            await reader.start()
            try:
                group = _GroupAudit(c, engine, reader, checkpoint or Checkpoint(), limit, progress, stall_s)
                audits += await group.run(await admin.list_consumer_group_offsets(c.group_id))
            finally:
                await reader.stop()
        return audits
    finally:
        await admin.close()


class _GroupAudit:
    """The audit of one consumer group (one pass over its partitions)."""

    def __init__(
        self,
        spec: AuditedConsumer,
        engine: AsyncEngine,
        reader: AIOKafkaConsumer,
        checkpoint: Checkpoint,
        limit: int | None,
        progress: Progress | None,
        stall_s: float,
    ) -> None:
        self._spec = spec
        self._engine = engine
        self._reader = reader
        self._checkpoint = checkpoint
        self._limit = limit
        self._progress = progress
        self._stall_s = stall_s

    async def run(self, committed: Mapping[TopicPartition, OffsetAndMetadata]) -> list[PartitionAudit]:
        parts = await partitions_of(self._reader, list(self._spec.topics))
        if not parts:
            return []
        begins = await self._reader.beginning_offsets(parts)
        audits: dict[TopicPartition, PartitionAudit] = {}
        stop_at: dict[TopicPartition, int] = {}
        for tp in parts:
            origin = Origin(self._spec.group_id, tp.topic, tp.partition)
            meta = committed.get(tp)
            end = meta.offset if meta is not None and meta.offset >= 0 else None
            start = max(begins[tp], self._checkpoint.verified_to.get(origin, 0))
            audits[tp] = PartitionAudit(origin, start, end)
            if end is not None and start < end:
                stop_at[tp] = end if self._limit is None else min(end, start + self._limit)
        dead = await self._dead_letter_offsets(audits, stop_at)
        for tp, audit in audits.items():  # gaps left open by an earlier run: are they closed now?
            carried = self._checkpoint.open_gaps.get(audit.origin, [])
            if carried:
                audit.add(carried, await self._inbox(carried), dead[tp])
        await self._read(audits, stop_at, dead)
        return [audits[tp] for tp in parts]

    async def _read(
        self,
        audits: Mapping[TopicPartition, PartitionAudit],
        stop_at: dict[TopicPartition, int],
        dead: Mapping[TopicPartition, set[int]],
    ) -> None:
        if not stop_at:
            return
        reader = self._reader
        reader.assign(list(stop_at))
        for tp in stop_at:
            reader.seek(tp, audits[tp].start)
        pending = dict(stop_at)
        last_data = last_note = time.monotonic()
        while pending:
            fetched = await reader.getmany(*pending, timeout_ms=1000, max_records=_FETCH_RECORDS)
            facts = {
                tp: [classify_record(self._spec.consumer, r) for r in records if r.offset < pending[tp]]
                for tp, records in fetched.items()
                if tp in pending
            }
            inbox = await self._inbox([f for fs in facts.values() for f in fs])
            for tp, fs in facts.items():
                audits[tp].add(fs, inbox, dead[tp])
            for tp in list(pending):
                if await reader.position(tp) >= pending[tp]:  # everything before stop_at was delivered
                    audits[tp].read_to = max(audits[tp].read_to, pending.pop(tp))
                    reader.pause(tp)
            now = time.monotonic()
            if fetched:
                last_data = now
            elif now - last_data > self._stall_s:
                log.warning("completeness_read_stalled", group=self._spec.group_id, partitions=len(pending))
                break
            if self._progress is not None and now - last_note >= 5.0:
                last_note = now
                read = sum(a.records for a in audits.values())
                self._progress(f"{self._spec.group_id}: {read} records checked, {len(pending)} partitions to go")
        # No unsubscribe(): the next group's assign() replaces this assignment, and aiokafka's consumer hangs in
        # stop() after an unsubscribe() from a manual assignment.

    async def _inbox(self, facts: Sequence[RecordFacts]) -> dict[UUID, str]:
        """Inbox status by event id, for the events among ``facts`` the consumer acted on."""
        ids = sorted({f.event_id for f in facts if f.kind == "act" and f.event_id is not None})
        if not ids:
            return {}
        async with self._engine.connect() as conn:
            rows = await conn.execute(
                text(
                    f"SELECT event_id, status FROM {self._spec.schema}.inbox "
                    "WHERE consumer = :c AND event_id = ANY(CAST(:ids AS uuid[]))"
                ),
                {"c": self._spec.name, "ids": ids},
            )
            return {r[0]: r[1] for r in rows}

    async def _dead_letter_offsets(
        self, audits: Mapping[TopicPartition, PartitionAudit], stop_at: Mapping[TopicPartition, int]
    ) -> dict[TopicPartition, set[int]]:
        """Offsets with a dead letter of this consumer, per partition, over the range this run checks (open gaps
        of earlier runs included)."""
        out: dict[TopicPartition, set[int]] = {tp: set() for tp in audits}
        async with self._engine.connect() as conn:
            for tp, audit in audits.items():
                carried = [g.offset for g in self._checkpoint.open_gaps.get(audit.origin, [])]
                low, high = min([audit.start, *carried]), stop_at.get(tp, audit.start)
                if low >= high:
                    continue
                rows = await conn.execute(
                    text(
                        f'SELECT "offset" FROM {self._spec.schema}.dead_letters WHERE consumer = :c AND topic = :t '
                        'AND "partition" = :p AND "offset" >= :lo AND "offset" < :hi'
                    ),
                    {"c": self._spec.name, "t": tp.topic, "p": tp.partition, "lo": low, "hi": high},
                )
                out[tp] = {int(r[0]) for r in rows}
        return out


def completeness_gauge(registry: CollectorRegistry) -> Gauge:
    """``karya_completeness_gaps{group,topic}``, registered in ``registry`` (call once per registry)."""
    return Gauge(
        GAUGE_NAME,
        "Records a consumer group committed past without an inbox row or a dead letter (lost events)",
        ["group", "topic"],
        registry=registry,
    )


def publish_gaps(gauge: Gauge, audits: Sequence[PartitionAudit]) -> None:
    """Set the gauge from ``audits`` (every audited group and topic gets a value, zero included)."""
    for (group, topic), gaps in gaps_by_group_topic(audits).items():
        gauge.labels(group, topic).set(gaps)


async def update_completeness_metric(
    gauge: Gauge,
    consumers: Sequence[AuditedConsumer],
    *,
    engine: AsyncEngine,
    bootstrap_servers: str,
    checkpoint: Checkpoint,
    limit: int | None = 100_000,
) -> list[PartitionAudit]:
    """One audit pass from ``checkpoint`` (advanced afterwards); sets ``gauge``; returns the audits."""
    audits = await audit_completeness(
        consumers, engine=engine, bootstrap_servers=bootstrap_servers, checkpoint=checkpoint, limit=limit
    )
    publish_gaps(gauge, audits)
    checkpoint.advance(audits)
    gaps = total_gaps(audits)
    if gaps:
        log.error("completeness_gaps", gaps=gaps, partitions=sum(1 for a in audits if a.gap_count))
    return audits


async def run_completeness_audits(
    stop: asyncio.Event,
    consumers: Sequence[AuditedConsumer],
    *,
    engine: AsyncEngine,
    bootstrap_servers: str,
    gauge: Gauge,
    interval_s: float = 300.0,
    first_after_s: float = 60.0,
    limit: int | None = 100_000,
) -> None:
    """Audit ``first_after_s`` after start, then every ``interval_s``, until ``stop`` is set, keeping the gauge
    current. The first pass reads from the start of retention (``limit`` offsets per partition per pass); later
    passes read only what was committed since, and re-check the gaps still open. A failed pass is logged
    (value-free) and tried again at the next interval."""
    checkpoint = Checkpoint()
    delay = first_after_s
    while True:
        try:
            await asyncio.wait_for(stop.wait(), timeout=delay)
            return
        except TimeoutError:
            pass
        delay = interval_s
        try:
            await update_completeness_metric(
                gauge, consumers, engine=engine, bootstrap_servers=bootstrap_servers, checkpoint=checkpoint, limit=limit
            )
        except Exception as exc:
            log.warning("completeness_audit_failed", **describe_error(exc))
