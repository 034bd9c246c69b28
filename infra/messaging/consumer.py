"""Batch consumption with exactly-once effect.

One Kafka batch is applied in one PostgreSQL transaction: the inbox rows of its events are inserted first
(``ON CONFLICT DO NOTHING``), so a redelivered event reaches the handler at most once; the handler's writes and its
outbox rows commit together with them; offsets are committed to Kafka only after that commit. A handler that
calls out (:class:`PreparingHandler`) does so in ``prepare``, once per batch and outside the transaction; what it
returns applies the batch inside it, and again event by event during isolation, with the same answers.

When a batch fails, :func:`infra.messaging.failures.classify` decides. A database that cannot take the batch now
(connection lost or refused, starting up or shutting down, too many connections) makes the whole batch wait and
retry for as long as that lasts, with capped, jittered backoff and rate-limited warnings. A serialisation failure
or deadlock retries the whole batch a bounded number of times. Any other error isolates the culprit: the events
are applied one by one inside savepoints, each failing event is retried up to ``max_attempts`` times, then
dead-lettered to ``<topic>.dlq`` through the outbox with the original bytes, headers, error and attempt count,
while the rest of the batch is applied. What isolation cannot absorb escapes :meth:`BatchConsumer.process`
without applying anything further; the subscriber (``infra.messaging.broker``) then rewinds the batch so its
records are fetched again, and no later commit can pass them. A replay of one of this consumer's dead letters
(``karya dlq replay``, headers in :mod:`infra.messaging.replay`) releases the event's ``dead_lettered`` inbox row in
the batch's transaction, so it is applied once; an ``applied`` row is never released.

Logs carry :func:`infra.errors.describe_error` facts (class, SQLSTATE, field paths), never an error's text: it
can quote payload values. What is stored and sent with a dead letter (``<schema>.dead_letters.error``, the
``karya-dlq-error`` header) is :func:`infra.errors.error_text`, value-free as well; the record itself (payload and
headers) is kept whole in ``dead_letters`` and on the DLQ topic.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, cast
from uuid import UUID

from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from infra.db.rowsets import RowSet
from infra.errors import describe_error, error_text
from infra.logging import bind_event_context, get_logger
from infra.messaging.dead_letters import DeadLetter, event_context, report_dead_letters, write_dead_letters
from infra.messaging.delivery import Delivery, KafkaRecord
from infra.messaging.envelope import Envelope
from infra.messaging.failures import Failure, QuietWarnings, backoff_s, classify
from infra.messaging.metrics import MessagingMetrics
from infra.messaging.replay import replayed_for
from infra.settings import KafkaSettings

log = get_logger(__name__)


class PermanentError(Exception):
    """An event that can never be applied (bad data, unknown reference): dead-lettered without retries."""


@dataclass(frozen=True, slots=True)
class InboundEvent:
    """A decoded event with the delivery it came in (transport-free: handlers can be driven without a broker)."""

    envelope: Envelope
    delivery: Delivery


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


class BatchHandler(Protocol):
    """Applies new (never seen before) events inside the caller's transaction; returns the rejected ones."""

    async def __call__(self, conn: AsyncConnection, events: Sequence[InboundEvent]) -> Sequence[Rejection] | None: ...


class PreparingHandler(BatchHandler, Protocol):
    """A two-phase handler: :meth:`prepare` runs once per batch before any transaction (calls out, e.g. to an
    HTTP API, and keeps the answers) and returns the handler that applies the batch with them inside the
    transaction — the whole batch, and each event during isolation, without calling out again. An error
    ``prepare`` raises is classified like a batch's (a lost database waits, anything else rewinds the batch)."""

    async def prepare(self, events: Sequence[InboundEvent]) -> BatchHandler: ...


@dataclass(frozen=True, slots=True)
class DecodedBatch:
    """A decoded Kafka batch (not a production batch): events this consumer acts on, events of unknown types,
    undecodable records."""

    events: list[InboundEvent]
    unknown: list[InboundEvent]
    undecodable: list[DeadLetter]


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
        known_types: frozenset[str] | None = None,
        after_commit: Callable[[], None] | None = None,
    ) -> None:
        """``event_types``: the types this consumer acts on (None: all). Other known events on its topics have no
        effect here, so they are skipped before decoding (by their ``karya-event-type`` header when present)
        and take no inbox row. ``known_types``: every type defined anywhere (None: no check); a decodable event
        whose type is not among them is dead-lettered at arrival (kind ``unknown_type``) with its origin, once
        (it takes an inbox row). Undecodable records are always dead-lettered. ``after_commit`` is called after
        every committed batch (the runtime wakes the outbox relay with it)."""
        self.name = name
        self._types = None if event_types is None else frozenset(t.encode() for t in event_types)
        self._type_names = event_types
        self._known = None if known_types is None else frozenset(t.encode() for t in known_types)
        self._known_names = known_types
        self._schema = schema
        self._engine = engine
        self._handler = handler
        self._settings = settings
        self._metrics = metrics
        self._sleep = sleep
        self._after_commit = after_commit
        self._quiet = QuietWarnings(name)
        self._claim_rows = RowSet(
            f"WITH claimed AS (INSERT INTO {schema}.inbox "
            '(consumer, event_id, topic, "partition", "offset") '
            "SELECT :consumer, event_id, topic, part, off FROM {rows} "
            "ON CONFLICT DO NOTHING RETURNING event_id) "
            "SELECT CASE WHEN count(*) = :n THEN NULL ELSE coalesce(array_agg(event_id), '{{}}') END "
            "FROM claimed",
            (("event_id", "uuid"), ("topic", "text"), ("part", "int"), ("off", "bigint")),
        )

    @property
    def metrics(self) -> MessagingMetrics:
        """The metrics this consumer reports to."""
        return self._metrics

    async def process(self, records: Sequence[KafkaRecord]) -> None:
        """Apply one batch with exactly-once effect; returns once it is durably committed.

        Waits (unbounded) while the database cannot take the batch; raises only what neither retries nor
        isolation can absorb, and then the caller must fetch the batch again (see ``broker.on_batch``).
        """
        if not records:
            return
        started = time.perf_counter()
        self._metrics.batch_size.labels(self.name).observe(len(records))
        batch = self.decode(records)
        if not (batch.events or batch.unknown or batch.undecodable):
            # Every record is of a type this consumer skips (a topic it shares with other consumers, e.g. the
            # ledger's entry_posted on the orders consumer): nothing to claim, apply or announce, so no transaction
            # and no relay wake-up — such batches trickle in all run long, and each empty transaction cost two round
            # trips and the relay's look at an empty outbox. The caller still commits the offsets.
            self._metrics.batch_seconds.labels(self.name).observe(time.perf_counter() - started)
            return
        attempt = contended = 0
        isolating = waiting = False
        handler: BatchHandler | None = None
        try:
            while True:
                attempt += 1
                try:
                    handler = handler or await self._prepare(batch)
                    await (self._process_isolated if isolating else self._process_whole)(batch, handler)
                    break
                except Exception as exc:
                    kind = classify(exc)
                    if kind is Failure.UNAVAILABLE:  # nothing can be applied meanwhile: wait, then all again
                        self._metrics.batch_retries.labels(self.name, "connection").inc()
                        if not waiting:
                            waiting = True
                            self._metrics.waiting_for_database.labels(self.name).set(1)
                        delay = self._backoff(attempt)
                        self._quiet.warn("database_unavailable", exc, retry_in_s=round(delay, 3))
                        await self._sleep(delay)
                        isolating = False
                        continue
                    if kind is Failure.CONTENDED:
                        contended += 1
                        if contended < self._settings.max_attempts:
                            self._metrics.batch_retries.labels(self.name, "transient").inc()
                            await self._sleep(self._backoff(contended))
                            isolating = False
                            continue
                    if isolating:
                        raise  # not an event's fault (isolation absorbs those): the caller fetches it again
                    self._metrics.batch_retries.labels(self.name, "isolate").inc()
                    log.warning("batch_failed_isolating", consumer=self.name, **describe_error(exc))
                    isolating = True
        finally:
            if waiting:
                self._metrics.waiting_for_database.labels(self.name).set(0)
        if waiting:
            self._quiet.resolved("database_available")
        if self._after_commit is not None:
            self._after_commit()
        self._metrics.events_applied.labels(self.name).inc(len(batch.events))
        self._metrics.batch_seconds.labels(self.name).observe(time.perf_counter() - started)

    async def _prepare(self, batch: DecodedBatch) -> BatchHandler:
        """The handler that applies this batch: the handler's :meth:`PreparingHandler.prepare` result, if it has one."""
        prepare = getattr(self._handler, "prepare", None)
        return self._handler if prepare is None or not batch.events else cast(BatchHandler, await prepare(batch.events))

    async def _process_whole(self, batch: DecodedBatch, handler: BatchHandler) -> None:
        """The whole batch in one transaction."""
        async with self._engine.begin() as conn:
            fresh = await self._claim(conn, batch.events)
            rejected = _rejected(await handler(conn, fresh)) if fresh else []
            failures = [*await self._arrival_failures(conn, batch), *rejected]
            await self._dead_letter(conn, failures)
        self._report_dead_letters(failures)

    async def _arrival_failures(self, conn: AsyncConnection, batch: DecodedBatch) -> list[DeadLetter]:
        """Records dead-lettered at arrival: undecodable ones, and events of unknown types not seen before."""
        fresh = await self._claim(conn, batch.unknown)
        return [*batch.undecodable, *(_unknown_type(e) for e in fresh)]

    def decode(self, records: Sequence[KafkaRecord]) -> DecodedBatch:
        """Decode one Kafka batch into the events this consumer acts on, unknown types and undecodable records."""
        batch = DecodedBatch([], [], [])
        seen: set[UUID] = set()
        for record in records:
            if self._types is not None and self._skipped(record):
                continue
            delivery = Delivery.of(record)  # where the batch arrives: no Kafka type goes past this point
            try:
                envelope = Envelope.from_bytes(delivery.value)
            except (ValidationError, ValueError) as exc:
                facts = {"kind": "undecodable", **describe_error(exc)}
                error = error_text(exc, context="undecodable envelope")
                batch.undecodable.append(DeadLetter(delivery, error, 1, facts))
                continue
            unknown = self._known_names is not None and envelope.type not in self._known_names
            if not unknown and self._type_names is not None and envelope.type not in self._type_names:
                continue
            if envelope.event_id in seen:  # the same event twice in one batch: the inbox would see it once
                self._metrics.events_duplicate.labels(self.name).inc()
                continue
            seen.add(envelope.event_id)
            (batch.unknown if unknown else batch.events).append(InboundEvent(envelope, delivery))
        return batch

    def _skipped(self, record: KafkaRecord) -> bool:
        """True when the record's type header names a known type this consumer does not act on."""
        for key, value in record.headers or ():
            if key == "karya-event-type":
                assert self._types is not None
                return value not in self._types and (self._known is None or value in self._known)
        return False

    async def _claim(self, conn: AsyncConnection, events: Sequence[InboundEvent]) -> list[InboundEvent]:
        """Insert inbox rows; return the events not seen before, in their original order."""
        if not events:
            return []
        await self._release_replays(conn, events)
        # One row back per batch, not one per event: NULL when every event is new (the common case), else the
        # ids that were (a redelivery, a replay of an applied event). The rows travel as one JSON text when they
        # can (RowSet): four array parameters cost asyncpg ~2 µs of client CPU per event, the JSON ~0.5.
        rows = self._claim_rows
        columns: list[list[Any]] = [
            [e.envelope.event_id for e in events],
            [e.delivery.topic for e in events],
            [e.delivery.partition for e in events],
            [e.delivery.offset for e in events],
        ]
        doc = rows.encode(columns)
        statement, params = (
            (rows.array_form, dict(zip(rows.names, columns, strict=True)))
            if doc is None
            else (rows.json_form, {"rows": doc})
        )
        new_ids = (await conn.execute(statement, {**params, "consumer": self.name, "n": len(events)})).scalar_one()
        if new_ids is None:
            return list(events)
        fresh = {UUID(str(i)) for i in new_ids}  # the driver's uuid type: compared as the envelopes' UUIDs
        self._metrics.events_duplicate.labels(self.name).inc(len(events) - len(fresh))
        return [e for e in events if e.envelope.event_id in fresh]

    async def _process_isolated(self, batch: DecodedBatch, handler: BatchHandler) -> None:
        """Apply events one at a time in savepoints; dead-letter the ones that keep failing.

        A failure that is the database's, not the event's (:func:`classify`), is raised: the caller retries
        the whole batch (events committed by an earlier round keep their inbox rows and are skipped then).
        """
        attempts: dict[UUID, int] = {}
        errors: dict[UUID, tuple[str, dict[str, object]]] = {}
        pending: list[InboundEvent] = list(batch.events)  # each round's claim skips events applied before
        for round_no in range(1, self._settings.max_attempts + 1):
            if not pending:
                break
            if round_no > 1:
                await self._sleep(self._backoff(round_no - 1))
            failed: list[InboundEvent] = []
            committed_rejections: list[DeadLetter] = []
            async with self._engine.begin() as conn:
                fresh = {e.envelope.event_id for e in await self._claim(conn, pending)}
                for event in pending:
                    if event.envelope.event_id not in fresh:
                        continue
                    attempts[event.envelope.event_id] = round_no
                    try:
                        async with conn.begin_nested():
                            with bind_event_context(**event_context(event.delivery, event.envelope)):
                                rejected = _rejected(await handler(conn, [event]))
                            await self._dead_letter(conn, rejected)
                        committed_rejections += rejected
                    except PermanentError as exc:
                        errors[event.envelope.event_id] = (error_text(exc), describe_error(exc))
                        attempts[event.envelope.event_id] = self._settings.max_attempts
                        failed.append(event)
                    except Exception as exc:
                        if classify(exc) is not None:
                            raise
                        errors[event.envelope.event_id] = (error_text(exc), describe_error(exc))
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
        if batch.undecodable or batch.unknown:
            async with self._engine.begin() as conn:
                arrivals = await self._arrival_failures(conn, batch)
                await self._dead_letter(conn, arrivals)
            self._report_dead_letters(arrivals)

    async def _release_replays(self, conn: AsyncConnection, events: Sequence[InboundEvent]) -> None:
        """Replays of this consumer's dead letters (``infra.messaging.replay``) may be applied once more: their
        inbox rows are released when, and only when, they say ``dead_lettered`` (an applied event stays claimed,
        so its replay is a duplicate). Same transaction as the claim: a rolled-back batch releases nothing."""
        ids = [e.envelope.event_id for e in events if replayed_for(e.delivery.headers, self.name)]
        if ids:
            await conn.execute(
                text(
                    f"DELETE FROM {self._schema}.inbox WHERE consumer = :c AND event_id = ANY(:ids) "
                    "AND status = 'dead_lettered'"
                ),
                {"c": self.name, "ids": ids},
            )

    async def _release(self, conn: AsyncConnection, events: Sequence[InboundEvent]) -> None:
        if events:
            await conn.execute(
                text(f"DELETE FROM {self._schema}.inbox WHERE consumer = :c AND event_id = ANY(:ids)"),
                {"c": self.name, "ids": [e.envelope.event_id for e in events]},
            )

    async def _dead_letter(self, conn: AsyncConnection, failures: Sequence[DeadLetter]) -> None:
        await write_dead_letters(conn, self._schema, self.name, failures)

    def _report_dead_letters(self, failures: Sequence[DeadLetter]) -> None:
        report_dead_letters(self._schema, self.name, failures, self._metrics)

    def _backoff(self, attempt: int) -> float:
        return backoff_s(attempt, self._settings.retry_backoff_ms, self._settings.retry_backoff_max_ms)


def _rejected(rejections: Sequence[Rejection] | None) -> list[DeadLetter]:
    # A handler's reason is free text (it may quote a ValidationError): stored, not logged; its facts are logged.
    return [DeadLetter.rejected(r.event.delivery, r.reason, r.facts) for r in rejections or ()]


def _dead(event: InboundEvent, error: str, facts: dict[str, object], attempts: int) -> DeadLetter:
    return DeadLetter(event.delivery, error, attempts, {"kind": "failed", **facts})


def _unknown_type(event: InboundEvent) -> DeadLetter:
    # The type's name is input: it stays in the stored record (payload and headers), not in the error text.
    facts: dict[str, object] = {"kind": "unknown_type", "event_id": str(event.envelope.event_id)}
    return DeadLetter(event.delivery, "unknown_type: no service defines this event type", 1, facts)
