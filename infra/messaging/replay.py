"""Replaying a dead letter: the headers a replayed record carries, and the audit table of dead-letter actions.

A dead letter is replayed by publishing its original key, bytes and headers to its ORIGINAL topic with:

- ``karya-replay-count``: how many times this event has been replayed, this time included (1, 2, …). A replayed
  record that dead-letters again keeps the header in its stored headers, so its next replay counts on from it;
- ``karya-replay-consumer``: the consumer (inbox namespace) whose dead letter it is. Only that consumer treats the
  record as a replay: when its inbox row for the event says ``dead_lettered`` it releases that row in the batch's
  own transaction, so the event is applied (or dead-lettered again) once. An event whose row says ``applied`` stays
  a duplicate and is skipped, so an applied event is never applied twice; other consumers of the topic see an
  ordinary redelivery, which their inbox absorbs;
- ``karya-replay-of``: ``<schema>/<dead letter id>``, for the reader.

Actions on dead letters (replayed, discarded) are appended to ``<schema>.dead_letter_actions``: who, what, when,
why. The service roles may only SELECT and INSERT there (append-only by grants); one terminal action per dead
letter is enforced by a unique index, so two operators cannot replay the same dead letter twice.
"""

from __future__ import annotations

from collections.abc import Sequence

REPLAY_COUNT = "karya-replay-count"
REPLAY_CONSUMER = "karya-replay-consumer"
REPLAY_OF = "karya-replay-of"
_REPLAY_HEADERS = frozenset({REPLAY_COUNT, REPLAY_CONSUMER, REPLAY_OF})
# What the dead-lettering added to a record, and the first publication's outbox id (``relay.OUTBOX_HEADER``: a
# relay reading a partition back takes it for a row it published): a replay sends the record as it first arrived,
# and the relay that publishes the replay stamps its own outbox id.
_DROPPED = frozenset(
    {"karya-dlq-error", "karya-dlq-attempts", "karya-dlq-consumer", "karya-dlq-origin", "karya-outbox"}
)

Headers = Sequence[tuple[str, bytes]]


def replay_count(headers: Headers) -> int:
    """How many times the record carrying ``headers`` was replayed (0: never; an unreadable value counts as 0)."""
    for key, value in headers:
        if key == REPLAY_COUNT:
            try:
                count = int(value.decode("ascii"))
            except (UnicodeDecodeError, ValueError):
                return 0
            return max(count, 0)
    return 0


def replayed_for(headers: Headers, consumer: str) -> bool:
    """True when ``headers`` mark a replay of a dead letter of ``consumer`` (a count of at least 1, its name)."""
    named = False
    for key, value in headers:  # on every consumed record: a plain loop, no allocation unless it is a replay
        if key == REPLAY_CONSUMER:
            named = value == consumer.encode()
    return named and replay_count(headers) >= 1


def replay_headers(headers: Headers, *, count: int, consumer: str, replay_of: str) -> list[tuple[str, bytes]]:
    """The headers of a replayed record: the original ones (earlier replay, DLQ and outbox headers dropped) plus the
    replay count, the consumer and the dead letter it replays."""
    kept = [(k, v) for k, v in headers if k not in _REPLAY_HEADERS and k not in _DROPPED]
    return [
        *kept,
        (REPLAY_COUNT, str(count).encode()),
        (REPLAY_CONSUMER, consumer.encode()),
        (REPLAY_OF, replay_of.encode()),
    ]


def dead_letter_actions_ddl(schema: str) -> list[str]:
    """CREATE statements for ``<schema>.dead_letter_actions`` (append-only: the default privileges give the
    service roles SELECT and INSERT only)."""
    return [
        f"""
        CREATE TABLE {schema}.dead_letter_actions (
            id             bigserial   PRIMARY KEY,
            dead_letter_id bigint      NOT NULL REFERENCES {schema}.dead_letters (id),
            action         text        NOT NULL CHECK (action IN ('replayed', 'discarded')),
            actor          text        NOT NULL CHECK (length(actor) BETWEEN 1 AND 200),
            reason         text        CHECK (length(reason) <= 2000),
            replay_count   integer,
            acted_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
            CHECK (action <> 'discarded' OR length(reason) > 0),
            CHECK ((action = 'replayed') = (replay_count IS NOT NULL))
        )""",
        f"CREATE UNIQUE INDEX dead_letter_actions_once ON {schema}.dead_letter_actions (dead_letter_id)",
    ]


def drop_dead_letter_actions_ddl(schema: str) -> list[str]:
    """DROP statements undoing :func:`dead_letter_actions_ddl`."""
    return [f"DROP TABLE IF EXISTS {schema}.dead_letter_actions"]
