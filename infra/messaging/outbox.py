"""Transactional outbox: rows written in the same PostgreSQL transaction as the state they announce.

:func:`enqueue` inserts a whole batch with one statement; :class:`OutboxRelay` (``relay.py``) publishes them.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

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
        return cls(topic, subject.encode(), payload, (("content-type", b"application/json"), ("karya-event-type", type.encode())))

    @classmethod
    def of(cls, topic: str, envelope: Envelope) -> OutboundMessage:
        """The record for an envelope: keyed by its subject, typed in a header."""
        return cls(
            topic=topic,
            key=envelope.subject.encode(),
            payload=envelope.to_bytes(),
            headers=(("content-type", b"application/json"), ("karya-event-type", envelope.type.encode())),
        )


def encode_headers(headers: Headers) -> str:
    """Headers as JSON text: a list of ``[key, base64(value)]`` (values are arbitrary bytes)."""
    return orjson.dumps([[k, base64.b64encode(v).decode()] for k, v in headers]).decode()


def decode_headers(raw: object) -> list[tuple[str, bytes]]:
    """Inverse of :func:`encode_headers` (accepts the JSON text or the already-parsed list)."""
    items = orjson.loads(raw) if isinstance(raw, str | bytes) else raw
    assert isinstance(items, list)
    return [(str(k), base64.b64decode(v)) for k, v in items]


async def enqueue(conn: AsyncConnection, schema: str, messages: Sequence[OutboundMessage]) -> None:
    """Insert ``messages`` into ``<schema>.outbox`` in one set-based statement, preserving their order."""
    if not messages:
        return
    await conn.execute(
        text(
            f"INSERT INTO {schema}.outbox (topic, key, payload, headers) "
            "SELECT t, k, p, h::jsonb FROM unnest("
            "CAST(:topics AS text[]), CAST(:keys AS bytea[]), CAST(:payloads AS bytea[]), CAST(:headers AS text[])"
            ") WITH ORDINALITY AS u(t, k, p, h, n) ORDER BY n"
        ),
        {
            "topics": [m.topic for m in messages],
            "keys": [m.key for m in messages],
            "payloads": [m.payload for m in messages],
            "headers": [encode_headers(m.headers) for m in messages],
        },
    )
