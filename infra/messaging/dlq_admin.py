"""Dead-letter administration: list, show, replay and discard the rows of ``<schema>.dead_letters``.

Use cases on one connection and schema, callable from the CLI (``karya dlq``, ``karya/dlq_cli.py``) and later from
HTTP. Each write runs in the caller's transaction:

- **replay** appends a ``replayed`` action and enqueues the dead letter's original key, bytes and headers for its
  ORIGINAL topic through the schema's outbox, with the replay headers of :mod:`infra.messaging.replay`; the
  consumer then releases its ``dead_lettered`` inbox row and applies the event once. A dead letter already
  replayed or discarded, one whose event id is unknown (undecodable), one whose payload was redacted, or one whose
  event was replayed ``max_replays`` times already (the loop guard) is refused and stays a dead letter;
- **discard** appends a ``discarded`` action with its (required) reason;
- ``dry_run`` decides exactly as the real action would and writes nothing.

What is shown of a payload is redacted with the gateway's rule (``<redactor>.redacted_envelope``, migration
``gateway_0005``: the raw webhook body and every personal key blanked), for every schema: a refused event may
carry a buyer's data. Nothing here logs a payload.

Nothing here names a service's schema: the caller passes the schema (from its root's topology, configuration
rather than input; it must still be a plain identifier), the schemas a dead letter may be named with
(:func:`parse_ref`) and the schema that holds the redaction rule (``redactor``: the gateway's). A schema whose
dead letters the retention redacts has ``dead_letters.payload_redacted_at``; those are never replayed.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from infra.messaging.dead_letters import envelope_of
from infra.messaging.delivery import Delivery
from infra.messaging.outbox import OutboundMessage, decode_headers, enqueue
from infra.messaging.replay import replay_count, replay_headers

State = Literal["open", "replayed", "discarded", "all"]
_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*")
DEFAULT_MAX_REPLAYS = 3

_COLUMNS = (
    'd.id, d.consumer, d.topic, d."partition", d."offset", d.event_id, d.key, d.headers, d.error, d.attempts, '
    "d.created_at, a.action, a.actor, a.reason, a.acted_at"
)


class DeadLetterError(Exception):
    """A dead-letter command that cannot run (unknown schema, no audit table)."""

    loggable_message = True


@dataclass(frozen=True, slots=True)
class DeadLetterFilter:
    """Which dead letters to list: every given criterion must hold. ``error`` matches the start of the stored
    error (its class, e.g. ``rejected: unknown listing``), case-insensitively; ``order_key`` the record's key."""

    topic: str | None = None
    event_type: str | None = None
    order_key: str | None = None
    error: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    state: State = "open"
    limit: int = 50


@dataclass(frozen=True, slots=True)
class DeadLetterRow:
    """One dead letter as listed: where it came from, what it is, why it failed, what was done with it."""

    schema: str
    id: int
    consumer: str
    topic: str
    partition: int
    offset: int
    event_id: UUID | None
    event_type: str | None
    key: str | None
    error: str
    attempts: int
    replay_count: int
    created_at: datetime
    state: str
    actor: str | None = None
    reason: str | None = None
    acted_at: datetime | None = None
    raw_key: bytes | None = field(default=None, repr=False)

    @property
    def ref(self) -> str:
        """``<schema>:<id>``: how commands name this dead letter."""
        return f"{self.schema}:{self.id}"


@dataclass(frozen=True, slots=True)
class DeadLetterDetail:
    """One dead letter in full: its row, original headers, and its payload as shown (redacted)."""

    row: DeadLetterRow
    headers: list[tuple[str, bytes]]
    payload: bytes
    payload_redacted: bool = field(default=True)


@dataclass(frozen=True, slots=True)
class ActionOutcome:
    """What a replay or discard did (``done``) or would do (dry run), or why it was refused."""

    ref: str
    action: str
    done: bool
    refused: str | None = None
    topic: str | None = None
    replay_count: int | None = None


def parse_ref(ref: str, schemas: Collection[str]) -> tuple[str, int]:
    """``orders:42`` -> (``orders``, 42) when ``orders`` is one of ``schemas`` (the services' schemas, from the
    caller's root); raises :class:`DeadLetterError` for anything else."""
    schema, _, number = ref.partition(":")
    if schema not in schemas or not number.isdigit():
        raise DeadLetterError(f"a dead letter is named <schema>:<id> with schema one of {', '.join(schemas)}")
    return schema, int(number)


def _schema(schema: str) -> str:
    if not _IDENTIFIER.fullmatch(schema):  # interpolated into SQL: configuration, but only a plain identifier
        raise DeadLetterError(f"unknown schema {schema!r}")
    return schema


async def has_actions_table(conn: AsyncConnection, schema: str) -> bool:
    """True when ``<schema>.dead_letter_actions`` exists (its migration has run)."""
    table = f"{_schema(schema)}.dead_letter_actions"
    found = await conn.execute(text("SELECT to_regclass(:t) IS NOT NULL"), {"t": table})
    return bool(found.scalar_one())


async def dead_letters_source(conn: AsyncConnection, schema: str) -> str:
    """``<schema>.dead_letters d`` joined to its actions ``a`` (none before the audit table exists)."""
    if await has_actions_table(conn, schema):
        return f"{schema}.dead_letters d LEFT JOIN {schema}.dead_letter_actions a ON a.dead_letter_id = d.id"
    # Before the audit table exists nothing was ever replayed or discarded: every dead letter is open.
    return (
        f"{schema}.dead_letters d LEFT JOIN (SELECT NULL::bigint AS dead_letter_id, NULL::text AS action, "
        "NULL::text AS actor, NULL::text AS reason, NULL::timestamptz AS acted_at) a ON false"
    )


async def list_dead_letters(conn: AsyncConnection, schema: str, flt: DeadLetterFilter) -> list[DeadLetterRow]:
    """The newest dead letters of ``schema`` matching ``flt``, at most ``flt.limit``."""
    source = await dead_letters_source(conn, _schema(schema))
    sql = text(
        f"SELECT {_COLUMNS}, d.payload FROM {source} WHERE d.id < :before "
        "AND (CAST(:topic AS text) IS NULL OR d.topic = :topic) "
        "AND (CAST(:key AS bytea) IS NULL OR d.key = :key) "
        "AND (CAST(:error AS text) IS NULL OR starts_with(lower(d.error), lower(:error))) "
        "AND (CAST(:since AS timestamptz) IS NULL OR d.created_at >= :since) "
        "AND (CAST(:until AS timestamptz) IS NULL OR d.created_at < :until) "
        "AND (CAST(:state AS text) = 'all' OR coalesce(a.action, 'open') = :state) "
        "ORDER BY d.id DESC LIMIT :page"
    )
    params: dict[str, Any] = {
        "topic": flt.topic,
        "key": None if flt.order_key is None else flt.order_key.encode(),
        "error": flt.error,
        "since": flt.since,
        "until": flt.until,
        "state": flt.state,
        "page": max(flt.limit, 100),
        "before": 2**63 - 1,
    }
    found: list[DeadLetterRow] = []
    while len(found) < flt.limit:  # pages, because the event type is read from the record (header or envelope)
        rows = (await conn.execute(sql, params)).all()
        for r in rows:
            row = _row(schema, r._mapping, bytes(r.payload))
            if flt.event_type is None or row.event_type == flt.event_type:
                found.append(row)
        if len(rows) < params["page"]:
            break
        params["before"] = rows[-1].id
    return found[: flt.limit]


async def show_dead_letter(
    conn: AsyncConnection, schema: str, dead_letter_id: int, *, redactor: str
) -> DeadLetterDetail | None:
    """One dead letter with its original headers and its payload redacted by ``<redactor>.redacted_envelope``
    (see the module's docstring)."""
    source = await dead_letters_source(conn, _schema(schema))
    r = (
        await conn.execute(
            text(
                f"SELECT {_COLUMNS}, d.payload, {_schema(redactor)}.redacted_envelope(d.payload) AS shown "
                f"FROM {source} "
                "WHERE d.id = :id"
            ),
            {"id": dead_letter_id},
        )
    ).one_or_none()
    if r is None:
        return None
    return DeadLetterDetail(_row(schema, r._mapping, bytes(r.payload)), decode_headers(r.headers), bytes(r.shown))


async def replay_dead_letter(
    conn: AsyncConnection,
    schema: str,
    dead_letter_id: int,
    *,
    actor: str,
    max_replays: int = DEFAULT_MAX_REPLAYS,
    dry_run: bool = False,
) -> ActionOutcome:
    """Replay one dead letter into its original topic (module docstring: what is refused), audited as ``actor``."""
    ref = f"{schema}:{dead_letter_id}"
    loaded = await _load_open(conn, schema, dead_letter_id, "replay")
    if isinstance(loaded, ActionOutcome):
        return loaded
    row, headers, payload = loaded
    count = row.replay_count + 1
    refused = None
    if row.event_id is None:
        refused = "undecodable: it has no event id, a replay would be dead-lettered again"
    elif await _payload_redacted(conn, schema, dead_letter_id):
        refused = "its payload was redacted by the retention: the original record is gone"
    elif count > max_replays:
        refused = f"loop guard: replayed {row.replay_count} times already (at most {max_replays}); it stays here"
    if refused is not None:
        return ActionOutcome(ref, "replay", False, refused, row.topic, row.replay_count)
    if not dry_run:
        if not await _append(conn, schema, dead_letter_id, "replayed", actor, None, count):
            return ActionOutcome(ref, "replay", False, "already replayed or discarded by someone else", row.topic)
        replayed = replay_headers(headers, count=count, consumer=row.consumer, replay_of=ref)
        await enqueue(conn, schema, [OutboundMessage(row.topic, row.raw_key, payload, replayed)])
    return ActionOutcome(ref, "replay", not dry_run, None, row.topic, count)


async def discard_dead_letter(
    conn: AsyncConnection, schema: str, dead_letter_id: int, *, actor: str, reason: str, dry_run: bool = False
) -> ActionOutcome:
    """Mark one open dead letter discarded with ``reason`` (required), audited as ``actor``; it stays stored."""
    ref = f"{schema}:{dead_letter_id}"
    if not reason.strip():
        return ActionOutcome(ref, "discard", False, "a reason is required")
    loaded = await _load_open(conn, schema, dead_letter_id, "discard")
    if isinstance(loaded, ActionOutcome):
        return loaded
    if not dry_run and not await _append(conn, schema, dead_letter_id, "discarded", actor, reason.strip(), None):
        return ActionOutcome(ref, "discard", False, "already replayed or discarded by someone else")
    return ActionOutcome(ref, "discard", not dry_run, None, loaded[0].topic)


async def _load_open(
    conn: AsyncConnection, schema: str, dead_letter_id: int, action: str
) -> tuple[DeadLetterRow, list[tuple[str, bytes]], bytes] | ActionOutcome:
    ref = f"{schema}:{dead_letter_id}"
    if not await has_actions_table(conn, _schema(schema)):
        raise DeadLetterError(f"{schema}.dead_letter_actions does not exist: run `karya db migrate` first")
    r = (
        await conn.execute(
            text(
                f"SELECT {_COLUMNS}, d.payload FROM {schema}.dead_letters d "
                f"LEFT JOIN {schema}.dead_letter_actions a ON a.dead_letter_id = d.id WHERE d.id = :id"
            ),
            {"id": dead_letter_id},
        )
    ).one_or_none()
    if r is None:
        return ActionOutcome(ref, action, False, "no such dead letter")
    row = _row(schema, r._mapping, bytes(r.payload))
    if row.state != "open":
        return ActionOutcome(ref, action, False, f"already {row.state} by {row.actor} at {row.acted_at}", row.topic)
    return row, decode_headers(r.headers), bytes(r.payload)


async def _payload_redacted(conn: AsyncConnection, schema: str, dead_letter_id: int) -> bool:
    """Whether the retention blanked this dead letter's payload (only in a schema whose dead letters it redacts,
    the one with ``payload_redacted_at``)."""
    redacts = await conn.execute(
        text(
            "SELECT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass(:t) "
            "AND attname = 'payload_redacted_at' AND NOT attisdropped)"
        ),
        {"t": f"{_schema(schema)}.dead_letters"},
    )
    if not redacts.scalar_one():
        return False
    found = await conn.execute(
        text(f"SELECT payload_redacted_at IS NOT NULL FROM {schema}.dead_letters WHERE id = :id"),
        {"id": dead_letter_id},
    )
    return bool(found.scalar_one())


async def _append(
    conn: AsyncConnection,
    schema: str,
    dead_letter_id: int,
    action: str,
    actor: str,
    reason: str | None,
    count: int | None,
) -> bool:
    """Append one action; False when another one won the race (one action per dead letter)."""
    try:
        async with conn.begin_nested():
            await conn.execute(
                text(
                    f"INSERT INTO {schema}.dead_letter_actions (dead_letter_id, action, actor, reason, replay_count) "
                    "VALUES (:id, :action, :actor, :reason, :count)"
                ),
                {"id": dead_letter_id, "action": action, "actor": actor, "reason": reason, "count": count},
            )
    except IntegrityError:
        return False
    return True


def _row(schema: str, m: Any, payload: bytes) -> DeadLetterRow:
    headers = decode_headers(m["headers"])
    typed = next((v.decode(errors="replace") for k, v in headers if k == "karya-event-type"), None)
    if typed is None:
        envelope = envelope_of(Delivery(m["topic"], m["partition"], m["offset"], None, payload))
        typed = None if envelope is None else envelope.type
    key = None if m["key"] is None else bytes(m["key"])
    return DeadLetterRow(
        schema=schema,
        id=m["id"],
        consumer=m["consumer"],
        topic=m["topic"],
        partition=m["partition"],
        offset=m["offset"],
        event_id=m["event_id"],
        event_type=typed,
        key=None if key is None else key.decode(errors="replace"),
        error=m["error"],
        attempts=m["attempts"],
        replay_count=replay_count(headers),
        created_at=m["created_at"],
        state=m["action"] or "open",
        actor=m["actor"],
        reason=m["reason"],
        acted_at=m["acted_at"],
        raw_key=key,
    )
