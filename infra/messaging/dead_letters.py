"""Dead letters of the consumer core: recorded in ``<schema>.dead_letters``, sent to ``<topic>.dlq`` through the
outbox with the original key, bytes and headers, and logged once their transaction has committed.

The error stored and sent (``dead_letters.error``, the ``karya-dlq-error`` header) is value-free
(:func:`infra.errors.error_text`, or a handler's rejection reason); the delivery itself (key, bytes, headers) is
kept whole.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from infra.logging import bind_event_context, get_logger
from infra.messaging.delivery import Delivery
from infra.messaging.envelope import Envelope
from infra.messaging.metrics import MessagingMetrics
from infra.messaging.outbox import OutboundMessage, encode_headers, enqueue
from infra.messaging.topics import dead_letter_topic

log = get_logger("infra.messaging.consumer")  # the consumer's lines, wherever the code lives


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A delivery to dead-letter: ``error`` (value-free text) is stored and sent, ``facts`` are logged."""

    delivery: Delivery
    error: str
    attempts: int
    facts: dict[str, object]

    @classmethod
    def fetched(cls, topic: str, key: bytes, value: bytes, error: str, facts: dict[str, object]) -> DeadLetter:
        """The dead letter of bytes no broker record carried (a poller read them from a marketplace API): filed
        under ``topic``'s DLQ with partition and offset -1, after one attempt."""
        return cls(Delivery(topic, -1, -1, key, value), error, 1, facts)

    @classmethod
    def rejected(cls, delivery: Delivery, reason: str, facts: Mapping[str, object]) -> DeadLetter:
        """The dead letter of a delivery the domain refused (no retries): ``reason`` is stored (it is free text and
        may quote a value), ``facts`` (value-free) are logged."""
        return cls(delivery, f"rejected: {reason}", 1, {"kind": "rejected", **facts})


async def write_dead_letters(conn: AsyncConnection, schema: str, consumer: str, failures: Sequence[DeadLetter]) -> None:
    """Record dead letters and enqueue them for ``<topic>.dlq`` with the original bytes and headers; the inbox
    rows of their events (if any) are marked ``dead_lettered``."""
    if not failures:
        return
    messages: list[OutboundMessage] = []
    params: list[dict[str, Any]] = []
    for failure in failures:
        delivery, error, attempts = failure.delivery, failure.error, failure.attempts
        headers = [*delivery.headers]
        headers += [
            ("karya-dlq-error", error.encode()),
            ("karya-dlq-attempts", str(attempts).encode()),
            ("karya-dlq-consumer", consumer.encode()),
            ("karya-dlq-origin", delivery.origin.encode()),
        ]
        messages.append(OutboundMessage(dead_letter_topic(delivery.topic), delivery.key, delivery.value, headers))
        params.append(
            {
                "consumer": consumer,
                "topic": delivery.topic,
                "partition": delivery.partition,
                "offset": delivery.offset,
                "event_id": event_id_of(delivery),
                "key": delivery.key,
                "payload": delivery.value,
                "headers": encode_headers(delivery.headers),
                "error": error,
                "attempts": attempts,
            }
        )
    ids = [p["event_id"] for p in params if p["event_id"] is not None]
    if ids:
        await conn.execute(
            text(f"UPDATE {schema}.inbox SET status = 'dead_lettered' WHERE consumer = :c AND event_id = ANY(:ids)"),
            {"c": consumer, "ids": ids},
        )
    await conn.execute(
        text(
            f'INSERT INTO {schema}.dead_letters (consumer, topic, "partition", "offset", event_id, '
            "key, payload, headers, error, attempts) VALUES (:consumer, :topic, :partition, :offset, "
            ":event_id, :key, :payload, CAST(:headers AS jsonb), :error, :attempts)"
        ),
        params,
    )
    await enqueue(conn, schema, messages)


def report_dead_letters(schema: str, consumer: str, failures: Sequence[DeadLetter], metrics: MessagingMetrics) -> None:
    """Log and count dead letters once their transaction has committed (the log names where the delivery is)."""
    see = f"{schema}.dead_letters"
    for f in failures:
        delivery = f.delivery
        metrics.dead_letters.labels(consumer, delivery.topic).inc()
        with bind_event_context(**event_context(delivery, envelope_of(delivery))):
            log.error("event_dead_lettered", consumer=consumer, attempts=f.attempts, see=see, **f.facts)


def envelope_of(delivery: Delivery) -> Envelope | None:
    """The record's envelope, None when it does not decode."""
    try:
        return Envelope.from_bytes(delivery.value)
    except (ValidationError, ValueError):
        return None


def delivery_of(envelope: Envelope, origin: tuple[str, int, int] | None, topic: str) -> Delivery:
    """The delivery an event a consumer kept (parked for a later batch) came in, rebuilt to dead-letter it from where
    it first arrived: its bytes re-encoded from ``envelope``, keyed by its subject (as the outbox keys it), at
    ``origin`` (topic, partition, offset, from its inbox row); without one, ``topic`` at partition and offset -1."""
    at_topic, partition, offset = origin or (topic, -1, -1)
    return Delivery(at_topic, partition, offset, envelope.subject.encode(), envelope.to_bytes())


def event_id_of(delivery: Delivery) -> UUID | None:
    """The record's event id, None when it does not decode."""
    envelope = envelope_of(delivery)
    return None if envelope is None else envelope.event_id


def event_context(delivery: Delivery, envelope: Envelope | None) -> dict[str, object]:
    """What is bound to the log lines written about one event: where it came from and, when it decodes, its ids
    and subject (the order key)."""
    context: dict[str, object] = {"topic": delivery.topic, "partition": delivery.partition, "offset": delivery.offset}
    if envelope is not None:
        context |= {
            "event_id": str(envelope.event_id),
            "subject": envelope.subject,
            "correlation_id": str(envelope.correlation_id),
        }
    return context
