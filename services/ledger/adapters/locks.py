"""Every lock the ledger takes, in one global order: order facts (by key) → accounts opened (by code) → chain
segment heads (by segment) → balance rows (by account, segment) → debited savings accounts (by code). The events
parked for an order are taken (deleted, which locks their rows) only after its facts row is locked.

A posting locks the heads of the segments its entries belong to (:func:`lock_segments`), so commit order is chain
order within each segment, and postings of different segments run side by side. Balance rows are written only by
the database: the ``journal_lines_to_balances`` statement trigger (migrations ``ledger_0006``, ``ledger_0014``)
upserts the (account, segment) rows of the statement's lines, in that order, while the posting holds those segments'
heads; it locks each savings account it debits (its ``accounts`` row) before checking that account's sum.

Code that must decide on a balance before it posts (a payout, a settlement of what is owed, a correction, a period
close) stops every posting first with :func:`lock_journal` — a lock on the segments table that waits for the
postings in flight and holds off new ones until this transaction ends — then reads with
:func:`services.ledger.adapters.journal_repo.normal_balances` (a statement that starts after the lock sees every
posting committed before, and none can commit until the caller is done). These are rare, and a person waits on
them, not the pipeline. (The service cannot lock balance rows themselves: ``FOR UPDATE`` needs the UPDATE privilege
it no longer has.)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache

from sqlalchemy import text
from sqlalchemy.engine import Row

from infra.db.rowsets import KeyedQuery
from infra.db.unit_of_work import UnitOfWork
from services.ledger.domain.hashchain import GENESIS_HASH, SegmentHead

FACTS_LOCK = (
    "SELECT order_key, lapas_id, completion, settlement, refunded_gross FROM {schema}.order_facts "
    "WHERE order_key = ANY({keys}) ORDER BY order_key FOR UPDATE"
)
"""Lock and read the facts rows of ``{keys}`` (an SQL array of order keys), in key order: the first lock a posting
takes, alone or as the first part of the posting's read (:mod:`services.ledger.adapters.batch_reads`)."""


async def lock_order_facts(uow: UnitOfWork, order_keys: Iterable[str]) -> list[Row[tuple[object, ...]]]:
    """Lock and return the facts rows of ``order_keys`` (sorted)."""
    keys = sorted(set(order_keys))
    if not keys:
        return []
    # The keys as one JSON text (KeyedQuery), not an array asyncpg encodes key by key.
    query = KeyedQuery(FACTS_LOCK.replace("{schema}", uow.schema))
    return list(await query.execute(uow.conn, keys))


@dataclass(frozen=True, slots=True)
class LockedHeads:
    """The heads of the segments a posting locked, the journal sequence numbers drawn for its entries (drawn after
    the lock, so they are above every sequence already in those segments), and the request hash of each of its
    posting keys already in the journal."""

    heads: dict[str, SegmentHead]
    sequences: list[int]
    known: dict[str, str]


# The accounts are opened first (sorted), then the heads are locked (the count of the opened accounts feeds the
# lock, so it waits for them), then the sequence numbers are drawn (the count of the locked heads feeds
# generate_series, so no nextval runs before the lock).
_LOCK_SEGMENTS = """WITH a AS (
  INSERT INTO {schema}.accounts (code, type, normal_side)
  SELECT * FROM unnest(CAST(:codes AS text[]), CAST(:types AS text[]), CAST(:sides AS text[]))
  ON CONFLICT (code) DO NOTHING RETURNING 1),
h AS MATERIALIZED (
  SELECT segment, last_sequence, hash FROM {schema}.chain_segments
   WHERE segment = ANY(CAST(:segments AS text[])) AND (SELECT count(*) FROM a) >= 0 ORDER BY segment FOR UPDATE)
SELECT (SELECT coalesce(json_agg(json_build_array(segment, last_sequence, hash)), '[]') FROM h) AS heads,
       (SELECT array_agg(nextval('{schema}.journal_sequence'))
          FROM generate_series(1, CAST(:n AS int) + 0 * (SELECT count(*) FROM h)::int)) AS sequences,
       (SELECT coalesce(json_agg(json_build_array(posting_key, request_hash)), '[]')
          FROM {schema}.journal_entries WHERE posting_key = ANY({keys})) AS known"""


async def lock_segments(
    uow: UnitOfWork,
    accounts: Sequence[tuple[str, str, str]],
    segments: Iterable[str],
    keys: Sequence[str],
    entries: int,
) -> LockedHeads:
    """In one round trip: open ``accounts`` ((code, type, normal side), sorted by code; an open one stays as it
    is), lock the heads of ``segments`` (in segment order; a segment without a row gets one at the genesis), draw
    ``entries`` sequence numbers, and read the request hashes of the posting ``keys`` already in the journal."""
    wanted = sorted(set(segments))
    params = {
        "codes": [c for c, _, _ in accounts],
        "types": [t for _, t, _ in accounts],
        "sides": [s for _, _, s in accounts],
        "segments": wanted,
        "n": entries,
    }
    # The posting keys as one JSON text (KeyedQuery), not an array asyncpg encodes key by key: a batch has many.
    row = (await _lock_statement(uow.schema).execute(uow.conn, list(keys), params)).one()
    heads = {s: SegmentHead(s, int(q), str(h)) for s, q, h in row.heads}
    if len(heads) < len(wanted):  # a segment never posted to (SEGMENTS changed): open it, then lock again
        await uow.conn.execute(
            text(
                f"INSERT INTO {uow.table('chain_segments')} (segment, last_sequence, hash) "
                "SELECT unnest(CAST(:s AS text[])), 0, :g ON CONFLICT (segment) DO NOTHING"
            ),
            {"s": [s for s in wanted if s not in heads], "g": GENESIS_HASH},
        )
        return await lock_segments(uow, accounts, wanted, keys, entries)
    return LockedHeads(heads, [int(n) for n in row.sequences or []], {k: h for k, h in row.known})


@cache
def _lock_statement(schema: str) -> KeyedQuery:
    return KeyedQuery(_LOCK_SEGMENTS.replace("{schema}", schema))


async def lock_journal(uow: UnitOfWork) -> None:
    """Stop every posting until this transaction ends: waits for the postings in flight (each holds a row lock on
    its segments' heads) and holds off new ones. For the rare use cases that decide on a balance before posting."""
    await uow.conn.execute(text(f"LOCK TABLE {uow.table('chain_segments')} IN EXCLUSIVE MODE"))
