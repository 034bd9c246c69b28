"""The outbox stores every message exactly as given, whichever form :func:`infra.messaging.outbox.enqueue` sends it
in: packed (payloads as one bytea, the rest as one JSON text) when the keys are UTF-8 text, bytea arrays otherwise."""

from __future__ import annotations

import uuid

from sqlalchemy import text

from infra.db.engine import make_engine
from infra.db.roles import RoleUrls
from infra.messaging.outbox import OutboundMessage, _packed, decode_headers, enqueue
from tests.integration.messaging_support import create_scratch_schema

_TEXT = [
    OutboundMessage("t.events", b"tokopedia:shop:1", b'{"a": "\\"quoted\\" \\u00e9"}', (("karya-event-type", b"x"),)),
    OutboundMessage("t.events", None, b"", ()),
    OutboundMessage("t.other", "kunci:é".encode(), b"\x00\xff raw bytes \x80", (("h", b"\x00\x01"),)),
    *(OutboundMessage("t.events", f"k{i}".encode(), f"#{i}".encode() * i) for i in range(50)),
]
_BINARY_KEY = [OutboundMessage("t.events", b"\xff\xfe", b"payload", ()), OutboundMessage("t.events", b"a\x00b", b"p")]


async def _stored(database: RoleUrls, messages: list[OutboundMessage]) -> list[OutboundMessage]:
    schema = f"outbox_{uuid.uuid4().hex[:10]}"
    await create_scratch_schema(database.migrator, schema)
    engine = make_engine(database.service, pool_size=1)
    try:
        async with engine.begin() as conn:
            await enqueue(conn, schema, messages)
            rows = await conn.execute(text(f"SELECT topic, key, payload, headers FROM {schema}.outbox ORDER BY id"))
            return [
                OutboundMessage(t, None if k is None else bytes(k), bytes(p), tuple(decode_headers(h)))
                for t, k, p, h in rows
            ]
    finally:
        await engine.dispose()


async def test_messages_with_text_keys_are_stored_as_given_in_order(database: RoleUrls) -> None:
    assert _packed(_TEXT) is not None, "text keys take the packed form"
    assert await _stored(database, _TEXT) == _TEXT


async def test_messages_with_binary_keys_are_stored_as_given(database: RoleUrls) -> None:
    messages = [*_TEXT[:3], *_BINARY_KEY]
    assert _packed(_BINARY_KEY[:1]) is None and _packed(_BINARY_KEY[1:]) is None, "binary keys take the arrays"
    assert await _stored(database, messages) == messages
