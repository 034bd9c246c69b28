"""Batch consumption with exactly-once effect.

One Kafka batch is applied in one PostgreSQL transaction: the inbox rows of its events are inserted first
(``ON CONFLICT DO NOTHING``), so a redelivered event reaches the handler at most once; the handler's writes and its
outbox rows commit together with them; offsets are committed to Kafka only after that commit.

When a batch fails, transient database errors (serialisation failure, deadlock) retry the whole batch with
backoff, and a lost database connection retries until the database is back (nothing can be applied meanwhile).
Any other error isolates the culprit: the events are applied one by one inside savepoints, each failing event is
retried up to ``max_attempts`` times, then dead-lettered to ``<topic>.dlq`` through the outbox with the original
bytes, headers, error and attempt count, while the rest of the batch is applied.

Logs carry :func:`infra.errors.describe_error` facts (class, SQLSTATE, field paths), never an error's text: it
can quote payload values. The full text of a dead letter is in ``<schema>.dead_letters`` and the DLQ header.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from uuid import UUID

from aiokafka import ConsumerRecord
from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from infra.errors import describe_error, sqlstate_of
from infra.logging import bind_event_context, get_logger
from infra.messaging.envelope import Envelope
from infra.messaging.metrics import MessagingMetrics
from infra.messaging.outbox import OutboundMessage, encode_headers, enqueue
from infra.messaging.topics import dead_letter_topic
from infra.settings import KafkaSettings

log = get_logger(__name__)


class PermanentError(Exception):
    """An event that can never be applied (bad data, unknown reference): dead-lettered without retries."""


@dataclass(frozen=True, slots=True)
class InboundEvent:
    """A decoded event with the Kafka record it came from."""

    envelope: Envelope
    record: ConsumerRecord[bytes, bytes]


@dataclass(frozen=True, slots=True)
class Rejection:
    """An event the domain refuses (bad data, unknown reference): dead-lettered in the same transaction as
    whatever the handler recorded about it (e.g. a parked order), without retries.

    ``reason`` is stored with the dead letter and may quote the event's values; only ``facts`` are logged, so
    they must be value-free: :func:`infra.errors.describe_error` of the cause, or codes, keys and ids.
    """

    event: InboundEvent
    reason: str
    facts: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Failure:
    """An event to dead-letter: ``error`` (full text) is stored, only ``facts`` (value-free) are logged."""

    record: ConsumerRecord[bytes, bytes]
    error: str
    attempts: int
    facts: dict[str, object]


class BatchHandler(Protocol):
    """Applies new (never seen before) events inside the caller's transaction; returns the rejected ones."""

    async def __call__(self, conn: AsyncConnection, events: Sequence[InboundEvent]) -> Sequence[Rejection] | None: ...


_SERIALIZATION_STATES = {"40001", "40P01"}


def _is_transient(exc: BaseException) -> bool:
    return sqlstate_of(exc) in _SERIALIZATION_STATES


def _is_connection_loss(exc: BaseException) -> bool:
    if isinstance(exc, InterfaceError | OSError | ConnectionError):
        return True
    if isinstance(exc, OperationalError | DBAPIError):
        return (
            bool(getattr(exc, "connection_invalidated", False))
            or isinstance(exc.orig, OSError | ConnectionError)
            or "connection" in type(exc.orig).__name__.lower()
        )
    return False


class BatchConsumer:
    """Applies Kafka batches for one consumer name (the inbox namespace) in one service schema."""

    def __init__(
        self,
        *,
        name: str,
        schema: str,
        engine: AsyncEngine,
        handler: BatchHandler,
        settings: KafkaSettings,
        metrics: MessagingMetrics,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        event_types: frozenset[str] | None = None,
        after_commit: Callable[[], None] | None = None,
    ) -> None:
        """``event_types``: the types this consumer acts on (None: all). Other events on its topics have no
        effect here, so they are skipped before decoding (by their ``karya-event-type`` header when present)
        and take no inbox row; undecodable records are still dead-lettered. ``after_commit`` is called after
        every committed batch (the runtime wakes the outbox relay with it)."""
        self.name = name
        self._types = None if event_types is None else frozenset(t.encode() for t in event_types)
        self._type_names = event_types
        self._schema = schema
        self._engine = engine
        self._handler = handler
        self._settings = settings
        self._metrics = metrics
        self._sleep = sleep
        self._after_commit = after_commit

    async def process(self, records: Sequence[ConsumerRecord[bytes, bytes]]) -> None:
        """Apply one batch with exactly-once effect; returns once it is durably committed."""
        if not records:
            return
        started = time.perf_counter()
        self._metrics.batch_size.labels(self.name).observe(len(records))
        events, undecodable = self._decode(records)
        attempt = 0
        while True:
            attempt += 1
            try:
                async with self._engine.begin() as conn:
                    fresh = await self._claim(conn, events)
                    rejected = _rejected(await self._handler(conn, fresh)) if fresh else []
                    failures = [*undecodable, *rejected]
                    await self._dead_letter(conn, failures)
                self._report_dead_letters(failures)
                break
            except Exception as exc:
                if _is_connection_loss(exc):
                    self._metrics.batch_retries.labels(self.name, "connection").inc()
                    delay = self._backoff(attempt)
                    log.warning("database_unavailable", consumer=self.name, retry_in_s=delay, **describe_error(exc))
                    await self._sleep(delay)
                    continue
                if _is_transient(exc) and attempt < self._settings.max_attempts:
                    self._metrics.batch_retries.labels(self.name, "transient").inc()
                    await self._sleep(self._backoff(attempt))
                    continue
                self._metrics.batch_retries.labels(self.name, "isolate").inc()
                log.warning("batch_failed_isolating", consumer=self.name, **describe_error(exc))
                await self._process_isolated(events, undecodable)
                break
        if self._after_commit is not None:
            self._after_commit()
        self._metrics.events_applied.labels(self.name).inc(len(events))
        self._metrics.batch_seconds.labels(self.name).observe(time.perf_counter() - started)

    def _decode(self, records: Sequence[ConsumerRecord[bytes, bytes]]) -> tuple[list[InboundEvent], list[_Failure]]:
        events: list[InboundEvent] = []
        bad: list[_Failure] = []
        seen: set[UUID] = set()
        for record in records:
            if self._types is not None and self._ignored(record):
                continue
            try:
                envelope = Envelope.from_bytes(record.value or b"")
            except (ValidationError, ValueError) as exc:
                facts = {"kind": "undecodable", **describe_error(exc)}
                bad.append(_Failure(record, f"undecodable envelope: {exc}"[:2000], 1, facts))
                continue
            if self._type_names is not None and envelope.type not in self._type_names:
                continue
            if envelope.event_id in seen:  # the same event twice in one batch: the inbox would see it once
                self._metrics.events_duplicate.labels(self.name).inc()
                continue
            seen.add(envelope.event_id)
            events.append(InboundEvent(envelope, record))
        return events, bad

    def _ignored(self, record: ConsumerRecord[bytes, bytes]) -> bool:
        """True when the record's type header names a type this consumer does not act on."""
        for key, value in record.headers or ():
            if key == "karya-event-type":
                assert self._types is not None
                return value not in self._types
        return False

    async def _claim(self, conn: AsyncConnection, events: Sequence[InboundEvent]) -> list[InboundEvent]:
        """Insert inbox rows; return the events not seen before, in their original order."""
        if not events:
            return []
        rows = await conn.execute(
            text(
                f'INSERT INTO {self._schema}.inbox (consumer, event_id, topic, "partition", "offset") '
                "SELECT :consumer, e, t, p, o FROM unnest(CAST(:ids AS uuid[]), CAST(:topics AS text[]), "
                "CAST(:parts AS int[]), CAST(:offsets AS bigint[])) AS u(e, t, p, o) "
                "ON CONFLICT DO NOTHING RETURNING event_id"
            ),
            {
                "consumer": self.name,
                "ids": [e.envelope.event_id for e in events],
                "topics": [e.record.topic for e in events],
                "parts": [e.record.partition for e in events],
                "offsets": [e.record.offset for e in events],
            },
        )
        new_ids = {r[0] for r in rows}
        duplicates = len(events) - len(new_ids)
        if duplicates:
            self._metrics.events_duplicate.labels(self.name).inc(duplicates)
        return [e for e in events if e.envelope.event_id in new_ids]

    async def _process_isolated(
        self,
        events: Sequence[InboundEvent],
        undecodable: Sequence[_Failure],
    ) -> None:
        """Apply events one at a time in savepoints; dead-letter the ones that keep failing."""
        attempts: dict[UUID, int] = {}
        errors: dict[UUID, tuple[str, dict[str, object]]] = {}
        pending: list[InboundEvent] = list(events)  # each round's claim skips events applied before
        for round_no in range(1, self._settings.max_attempts + 1):
            if not pending:
                break
            if round_no > 1:
                await self._sleep(self._backoff(round_no - 1))
            failed: list[InboundEvent] = []
            committed_rejections: list[_Failure] = []
            async with self._engine.begin() as conn:
                fresh = {e.envelope.event_id for e in await self._claim(conn, pending)}
                for event in pending:
                    if event.envelope.event_id not in fresh:
                        continue
                    attempts[event.envelope.event_id] = round_no
                    try:
                        async with conn.begin_nested():
                            rejected = _rejected(await self._handler(conn, [event]))
                            await self._dead_letter(conn, rejected)
                        committed_rejections += rejected
                    except PermanentError as exc:
                        errors[event.envelope.event_id] = (f"{type(exc).__name__}: {exc}", describe_error(exc))
                        attempts[event.envelope.event_id] = self._settings.max_attempts
                        failed.append(event)
                    except Exception as exc:
                        if _is_connection_loss(exc):
                            raise
                        errors[event.envelope.event_id] = (f"{type(exc).__name__}: {exc}", describe_error(exc))
                        failed.append(event)
                last_round = round_no == self._settings.max_attempts
                dead = [e for e in failed if last_round or attempts[e.envelope.event_id] >= self._settings.max_attempts]
                retry = [e for e in failed if e not in dead]
                # Events to retry must not keep their inbox rows: they are released for the next round.
                await self._release(conn, retry)
                dead_letters = [_dead(e, *errors[e.envelope.event_id], attempts[e.envelope.event_id]) for e in dead]
                await self._dead_letter(conn, dead_letters)
            self._report_dead_letters([*committed_rejections, *dead_letters])
            pending = retry
        if undecodable:
            async with self._engine.begin() as conn:
                await self._dead_letter(conn, undecodable)
            self._report_dead_letters(undecodable)

    async def _release(self, conn: AsyncConnection, events: Sequence[InboundEvent]) -> None:
        if events:
            await conn.execute(
                text(f"DELETE FROM {self._schema}.inbox WHERE consumer = :c AND event_id = ANY(:ids)"),
                {"c": self.name, "ids": [e.envelope.event_id for e in events]},
            )

    async def _dead_letter(self, conn: AsyncConnection, failures: Sequence[_Failure]) -> None:
        """Record dead letters and enqueue them for ``<topic>.dlq`` with the original bytes and headers."""
        if not failures:
            return
        messages: list[OutboundMessage] = []
        params: list[dict[str, Any]] = []
        for failure in failures:
            record, error, attempts = failure.record, failure.error, failure.attempts
            headers = [*(record.headers or ())]
            event_id = _event_id_of(record)
            headers += [
                ("karya-dlq-error", error.encode()),
                ("karya-dlq-attempts", str(attempts).encode()),
                ("karya-dlq-consumer", self.name.encode()),
                ("karya-dlq-origin", f"{record.topic}/{record.partition}/{record.offset}".encode()),
            ]
            messages.append(OutboundMessage(dead_letter_topic(record.topic), record.key, record.value or b"", headers))
            params.append(
                {
                    "consumer": self.name,
                    "topic": record.topic,
                    "partition": record.partition,
                    "offset": record.offset,
                    "event_id": event_id,
                    "key": record.key,
                    "payload": record.value or b"",
                    "headers": encode_headers(record.headers or ()),
                    "error": error,
                    "attempts": attempts,
                }
            )
        ids = [p["event_id"] for p in params if p["event_id"] is not None]
        if ids:
            await conn.execute(
                text(
                    f"UPDATE {self._schema}.inbox SET status = 'dead_lettered' "
                    "WHERE consumer = :c AND event_id = ANY(:ids)"
                ),
                {"c": self.name, "ids": ids},
            )
        await conn.execute(
            text(
                f'INSERT INTO {self._schema}.dead_letters (consumer, topic, "partition", "offset", event_id, '
                "key, payload, headers, error, attempts) VALUES (:consumer, :topic, :partition, :offset, "
                ":event_id, :key, :payload, CAST(:headers AS jsonb), :error, :attempts)"
            ),
            params,
        )
        await enqueue(conn, self._schema, messages)

    def _report_dead_letters(self, failures: Sequence[_Failure]) -> None:
        """Log and count dead letters once their transaction has committed (the log names where the text is)."""
        see = f"{self._schema}.dead_letters"
        for f in failures:
            record = f.record
            self._metrics.dead_letters.labels(self.name, record.topic).inc()
            with bind_event_context(topic=record.topic, partition=record.partition, offset=record.offset):
                log.error("event_dead_lettered", consumer=self.name, attempts=f.attempts, see=see, **f.facts)

    def _backoff(self, attempt: int) -> float:
        ms = min(self._settings.retry_backoff_ms * 2 ** (attempt - 1), self._settings.retry_backoff_max_ms)
        return float(ms) / 1000.0


def _rejected(rejections: Sequence[Rejection] | None) -> list[_Failure]:
    # A handler's reason is free text (it may quote a ValidationError): stored, not logged; its facts are logged.
    return [
        _Failure(r.event.record, f"rejected: {r.reason}", 1, {"kind": "rejected", **r.facts}) for r in rejections or ()
    ]


def _dead(event: InboundEvent, error: str, facts: dict[str, object], attempts: int) -> _Failure:
    return _Failure(event.record, error, attempts, {"kind": "failed", **facts})


def _event_id_of(record: ConsumerRecord[bytes, bytes]) -> UUID | None:
    try:
        return Envelope.from_bytes(record.value or b"").event_id
    except (ValidationError, ValueError):
        return None
