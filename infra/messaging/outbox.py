"""Transactional outbox: rows written in the same PostgreSQL transaction as the state they announce.

:func:`enqueue` inserts a whole batch with one statement; :class:`OutboxRelay` (``relay.py``) publishes them;
:func:`measure_backlog` says how many wait and since when.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from infra.db.rowsets import Writes
from infra.messaging.envelope import Envelope, encode_envelope

Headers = Sequence[tuple[str, bytes]]


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """One record to publish: topic, key, value bytes and headers."""

    topic: str
    key: bytes | None
    payload: bytes
    headers: Headers = field(default_factory=tuple)

    @classmethod
    def event(
        cls, topic: str, *, type: str, source: str, subject: str, data: dict[str, Any], causation: Envelope | None
    ) -> OutboundMessage:
        """A new event's record, encoded on the fast path (no validating model; see ``encode_envelope``)."""
        _, payload = encode_envelope(type=type, source=source, subject=subject, data=data, causation=causation)
        return cls(topic, subject.encode(), payload, _EVENT_HEADERS.get(type) or _event_headers(type))

    @classmethod
    def of(cls, topic: str, envelope: Envelope) -> OutboundMessage:
        """The record for an envelope: keyed by its subject, typed in a header."""
        return cls(
            topic=topic,
            key=envelope.subject.encode(),
            payload=envelope.to_bytes(),
            headers=(("content-type", b"application/json"), ("karya-event-type", envelope.type.encode())),
        )


_EVENT_HEADERS: dict[str, Headers] = {}


def _event_headers(type_name: str) -> Headers:
    headers = (("content-type", b"application/json"), ("karya-event-type", type_name.encode()))
    _EVENT_HEADERS[type_name] = headers
    return headers


_ENCODED: dict[Headers, str] = {}


def encode_headers(headers: Headers) -> str:
    """Headers as JSON text: a list of ``[key, base64(value)]`` (values are arbitrary bytes)."""
    cacheable = isinstance(headers, tuple)  # the per-type event headers repeat on every event of a type
    if cacheable and headers in _ENCODED:
        return _ENCODED[headers]
    encoded = orjson.dumps([[k, base64.b64encode(v).decode()] for k, v in headers]).decode()
    if cacheable and len(_ENCODED) < 1024:
        _ENCODED[headers] = encoded
    return encoded


def decode_headers(raw: object) -> list[tuple[str, bytes]]:
    """Inverse of :func:`encode_headers` (accepts the JSON text or the already-parsed list)."""
    if raw == "[]" or raw is None:
        return []
    items = orjson.loads(raw) if isinstance(raw, str | bytes) else raw
    assert isinstance(items, list)
    return [(str(k), base64.b64decode(v)) for k, v in items]


_ENQUEUE_ARRAYS = (
    "INSERT INTO {schema}.outbox (topic, key, payload, headers) "
    "SELECT t, k, p, h::jsonb FROM unnest("
    "CAST(:{p}topics AS text[]), CAST(:{p}keys AS bytea[]), CAST(:{p}payloads AS bytea[]), CAST(:{p}headers AS text[])"
    ") WITH ORDINALITY AS u(t, k, p, h, n) ORDER BY n"
)
# The payloads as one bytea (each row names its slice) and the rest as one JSON text: no array parameter, which
# asyncpg encodes value by value (see infra/db/rowsets.py).
_ENQUEUE_PACKED = (
    "INSERT INTO {schema}.outbox (topic, key, payload, headers) "
    "SELECT e->>0, convert_to(e->>1, 'UTF8'), substring(CAST(:{p}payloads AS bytea) FROM CAST(e->>2 AS int) "
    "FOR CAST(e->>3 AS int)), e->4 "
    "FROM jsonb_array_elements(CAST(CAST(:{p}rows AS text) AS jsonb)) WITH ORDINALITY AS u(e, n) ORDER BY n"
)
_PACKED_LIMIT = 2**30  # substring takes int positions


def _packed(messages: Sequence[OutboundMessage]) -> dict[str, object] | None:
    """The parameters of :data:`_ENQUEUE_PACKED`, or None when a key is not UTF-8 text without NUL (or the payloads
    are too large for int positions): then the rows go as arrays."""
    rows = []
    start = 1
    try:
        for m in messages:
            key = None if m.key is None else m.key.decode()
            size = len(m.payload)
            rows.append((m.topic, key, start, size, orjson.Fragment(encode_headers(m.headers))))
            start += size
    except UnicodeDecodeError:
        return None
    doc = orjson.dumps(rows)
    if start > _PACKED_LIMIT or b"\\u0000" in doc:
        return None
    return {"rows": doc.decode(), "payloads": b"".join(m.payload for m in messages)}


async def enqueue(conn: AsyncConnection, schema: str, messages: Sequence[OutboundMessage]) -> None:
    """Insert ``messages`` into ``<schema>.outbox`` in one set-based statement, preserving their order."""
    writes = Writes()
    stage(writes, schema, messages)
    await writes.execute(conn)


def stage(writes: Writes, schema: str, messages: Sequence[OutboundMessage]) -> None:
    """Add the insert of ``messages`` into ``<schema>.outbox`` (in their order) to ``writes``, so they are sent with
    the other writes of the transaction in one statement."""
    if not messages:
        return
    packed = _packed(messages)
    if packed is not None:
        writes.add_statement(_ENQUEUE_PACKED.replace("{schema}", schema), packed)
        return
    writes.add_statement(
        _ENQUEUE_ARRAYS.replace("{schema}", schema),
        {
            "topics": [m.topic for m in messages],
            "keys": [m.key for m in messages],
            "payloads": [m.payload for m in messages],
            "headers": [encode_headers(m.headers) for m in messages],
        },
    )


BACKLOG_EXACT_UP_TO = 10_000
"""Rows :func:`measure_backlog` counts one by one; a larger backlog is measured by its ids."""


@dataclass(frozen=True, slots=True)
class Backlog:
    """The rows waiting in an outbox: ``rows`` (exactly, when ``exact``; else an upper bound) and the time the
    oldest of them was written (None when none waits)."""

    rows: int
    oldest: datetime | None
    exact: bool


async def measure_backlog(conn: AsyncConnection, schema: str, exact_up_to: int = BACKLOG_EXACT_UP_TO) -> Backlog:
    """How many rows of ``<schema>.outbox`` wait, and since when, reading at most ``exact_up_to`` of them.

    Up to ``exact_up_to`` waiting rows are counted exactly. A larger backlog is the span of the ids waiting (the
    largest minus the smallest, plus one): an upper bound, exact unless a rolled-back transaction drew ids in that
    span, and a true figure once the relay has passed them. The oldest row is the oldest of the first
    ``exact_up_to`` by id (ids are drawn in insertion order). A ``count(*)`` read every waiting row: at a backlog
    of 300k rows that was 44k buffers and ~90 ms every 2 s, on the database the backlog was waiting for."""
    row = (
        await conn.execute(
            text(
                f"WITH head AS MATERIALIZED (SELECT id, created_at FROM {schema}.outbox ORDER BY id LIMIT :n) "
                f"SELECT count(*) AS counted, min(created_at) AS oldest, "
                f"(SELECT max(id) FROM {schema}.outbox) - min(id) + 1 AS span FROM head"
            ),
            {"n": exact_up_to},
        )
    ).one()
    if row.counted < exact_up_to:
        return Backlog(int(row.counted), row.oldest, exact=True)
    return Backlog(int(row.span), row.oldest, exact=False)  # the head's rows lie in the span: span >= counted
