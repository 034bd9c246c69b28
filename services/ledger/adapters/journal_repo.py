"""Posting journal entries: idempotency by posting key, accounts on demand, entries with their lines and their
segments' hash chains — all set-based for one batch, in the lock order of :mod:`services.ledger.adapters.locks`.
Balances follow from the lines: the database adds them up per (account, segment) (the ``journal_lines_to_balances``
trigger); the service cannot write ``ledger.account_balances``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any

from sqlalchemy import text

from infra.db.rowsets import KeyedQuery, RowSet, Writes
from infra.db.unit_of_work import UnitOfWork
from services.ledger.adapters.locks import lock_segments
from services.ledger.domain.accounts import Side, account_info
from services.ledger.domain.hashchain import CommittedEntry, chain_hash, segment_of
from services.ledger.domain.journal import Conflict, JournalEntry


@dataclass
class PostingResult:
    """What one call to :func:`post_entries` did."""

    posted: list[CommittedEntry] = field(default_factory=list)
    already_posted: list[str] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)


async def existing_hashes(uow: UnitOfWork, keys: Sequence[str]) -> dict[str, str]:
    """Request hash of every posting key among ``keys`` that is already in the journal."""
    if not keys:
        return {}
    table = uow.table("journal_entries")
    # The keys as one JSON text (KeyedQuery), not an array asyncpg encodes key by key.
    query = KeyedQuery(f"SELECT posting_key, request_hash FROM {table} WHERE posting_key = ANY({{keys}})")
    rows = await query.execute(uow.conn, sorted(set(keys)))
    return {r.posting_key: r.request_hash for r in rows}


async def posted_request(uow: UnitOfWork, posting_key: str) -> tuple[str, datetime] | None:
    """Request hash and effective time of the entry posted under ``posting_key``, if there is one."""
    row = (
        await uow.conn.execute(
            text(f"SELECT request_hash, effective_at FROM {uow.table('journal_entries')} WHERE posting_key = :k"),
            {"k": posting_key},
        )
    ).one_or_none()
    return None if row is None else (str(row.request_hash), row.effective_at)


async def post_entries(
    uow: UnitOfWork, entries: Sequence[tuple[JournalEntry, str | None]], known: dict[str, str] | None = None
) -> PostingResult:
    """Post ``(entry, source_event)`` pairs once each; same key + same hash is the existing answer."""
    result = PostingResult()
    known = dict(known) if known is not None else await existing_hashes(uow, [e.posting_key for e, _ in entries])
    fresh: list[tuple[JournalEntry, str | None]] = []
    for entry, source in entries:
        entry.validate()
        seen = known.get(entry.posting_key)
        if seen is None:
            known[entry.posting_key] = entry.request_hash
            fresh.append((entry, source))
        elif seen == entry.request_hash:
            result.already_posted.append(entry.posting_key)
        else:
            result.conflicts.append(Conflict(entry.posting_key, seen, entry.request_hash, source))
    await record_conflicts(uow, result.conflicts)
    if not fresh:
        return result
    await _open_accounts(uow, {line.account for e, _ in fresh for line in e.lines})
    segments = [segment_of(entry.order_key or entry.posting_key) for entry, _ in fresh]
    locked = await lock_segments(uow, segments, len(fresh))
    last = {s: (h.sequence, h.hash) for s, h in locked.heads.items()}
    recorded_at = datetime.now(UTC)
    committed: list[CommittedEntry] = []
    prev_hashes: list[str] = []
    for (entry, source), segment, sequence in zip(fresh, segments, locked.sequences, strict=True):
        prev = last[segment][1]
        c = CommittedEntry(sequence, entry, recorded_at, source, "", segment)
        digest = chain_hash(prev, c)
        committed.append(CommittedEntry(sequence, entry, recorded_at, source, digest, segment))
        prev_hashes.append(prev)
        last[segment] = (sequence, digest)
    await _insert(uow, committed, prev_hashes)
    await uow.conn.execute(
        text(
            f"UPDATE {uow.table('chain_segments')} s SET last_sequence = h.q, hash = h.h, updated_at = now() "
            "FROM unnest(CAST(:s AS text[]), CAST(:q AS bigint[]), CAST(:h AS text[])) AS h(s, q, h) "
            "WHERE s.segment = h.s"
        ),
        {"s": list(last), "q": [q for q, _ in last.values()], "h": [h for _, h in last.values()]},
    )
    result.posted = committed
    return result


async def record_conflicts(uow: UnitOfWork, conflicts: Sequence[Conflict]) -> None:
    """Record ``conflicts`` in ``ledger.posting_conflicts`` (the caller alerts and dead-letters)."""
    if conflicts:
        await uow.conn.execute(
            text(
                f"INSERT INTO {uow.table('posting_conflicts')} (posting_key, existing_hash, new_hash, source_event) "
                "VALUES (:posting_key, :existing_hash, :new_hash, :source_event)"
            ),
            [_conflict_params(c) for c in conflicts],
        )


def _conflict_params(c: Conflict) -> dict[str, Any]:
    return {
        "posting_key": c.posting_key,
        "existing_hash": c.existing_hash,
        "new_hash": c.new_hash,
        "source_event": c.source_event,
    }


async def _open_accounts(uow: UnitOfWork, codes: set[str]) -> None:
    ordered = sorted(codes)
    infos = [account_info(code) for code in ordered]
    await uow.conn.execute(
        text(
            f"INSERT INTO {uow.table('accounts')} (code, type, normal_side) SELECT * FROM unnest(CAST(:c AS text[]), "
            "CAST(:t AS text[]), CAST(:s AS text[])) ON CONFLICT (code) DO NOTHING"
        ),
        {"c": ordered, "t": [i.type.value for i in infos], "s": [i.normal_side.value for i in infos]},
    )


_SIDE_CODES = {side: side.value for side in Side}  # enum .value is a Python-level property call, per line


@cache
def _row_sets(schema: str) -> tuple[RowSet, RowSet]:
    """The entry and line inserts into ``schema``'s journal (built once per schema)."""
    entries = RowSet(_ENTRIES.replace("{schema}", schema), _ENTRY_COLUMNS)
    return entries, RowSet(_LINES.replace("{schema}", schema), _LINE_COLUMNS)


_ENTRIES = (
    "INSERT INTO {schema}.journal_entries (sequence, posting_key, request_hash, kind, memo, effective_at, recorded_at, "
    "source_event, policy_ref, reverses, order_key, batch_id, prev_hash, chain_hash, segment) SELECT * FROM {rows}"
)
_ENTRY_COLUMNS = [
    ("seq", "bigint"),
    ("key", "text"),
    ("rh", "text"),
    ("kind", "text"),
    ("memo", "text"),
    ("eff", "timestamptz"),
    ("rec", "timestamptz"),
    ("src", "text"),
    ("pol", "text"),
    ("rev", "text"),
    ("ok", "text"),
    ("bid", "text"),
    ("prev", "text"),
    ("hash", "text"),
    ("seg", "text"),
]
_LINES = "INSERT INTO {schema}.journal_lines (sequence, line_no, account, side, amount) SELECT * FROM {rows}"
_LINE_COLUMNS = [("s", "bigint"), ("n", "int"), ("a", "text"), ("d", "char(1)"), ("m", "bigint")]


async def _insert(uow: UnitOfWork, committed: Sequence[CommittedEntry], prev_hashes: Sequence[str]) -> None:
    """Entries and their lines in ONE statement: the statement triggers check the batch as a whole (every entry
    balanced with at least two lines, every line with its entry and an opened account) and add the lines to the
    account balances."""
    seqs, nos, accts, sides, amounts = [], [], [], [], []
    for c in committed:
        for n, line in enumerate(c.entry.lines, start=1):
            seqs.append(c.sequence)
            nos.append(n)
            accts.append(line.account)
            sides.append(_SIDE_CODES[line.side])
            amounts.append(line.amount)
    entries = [c.entry for c in committed]
    entries_rows, lines_rows = _row_sets(uow.schema)
    writes = Writes()
    writes.add(
        entries_rows,
        [
            [c.sequence for c in committed],
            [e.posting_key for e in entries],
            [e.request_hash for e in entries],
            [e.kind.value for e in entries],
            [e.memo for e in entries],
            [e.effective_at for e in entries],
            [c.recorded_at for c in committed],
            [c.source_event for c in committed],
            [e.policy_ref for e in entries],
            [e.reverses for e in entries],
            [e.order_key for e in entries],
            [e.batch_id for e in entries],
            list(prev_hashes),
            [c.chain_hash for c in committed],
            [c.segment for c in committed],
        ],
    )
    writes.add(lines_rows, [seqs, nos, accts, sides, amounts])
    await writes.execute(uow.conn)


async def normal_balances(uow: UnitOfWork, accounts: Sequence[str]) -> dict[str, int]:
    """Current normal-side balances of ``accounts``, each the sum of its rows over the segments (an account without
    a row is absent, i.e. 0). After :func:`services.ledger.adapters.locks.lock_journal`, none can move until the
    caller's transaction ends."""
    if not accounts:
        return {}
    rows = await uow.conn.execute(
        text(
            "SELECT b.account, sum(b.debit_total) AS debit_total, sum(b.credit_total) AS credit_total, a.normal_side "
            f"FROM {uow.table('account_balances')} b JOIN {uow.table('accounts')} a ON a.code = b.account "
            "WHERE b.account = ANY(:a) GROUP BY b.account, a.normal_side"
        ),
        {"a": sorted(set(accounts))},
    )
    return {
        r.account: int(r.debit_total - r.credit_total) if r.normal_side == "D" else int(r.credit_total - r.debit_total)
        for r in rows
    }


async def line_balances(uow: UnitOfWork, accounts: Sequence[str]) -> dict[str, int]:
    """Normal-side balances of ``accounts`` summed from their journal lines (an account without lines is 0 and
    absent): what ``ledger.account_balances`` must say. Index-driven per account; meant for a few accounts."""
    if not accounts:
        return {}
    rows = await uow.conn.execute(
        text(
            "SELECT l.account, a.normal_side, sum(CASE l.side WHEN 'D' THEN l.amount ELSE -l.amount END) AS net "
            f"FROM {uow.table('journal_lines')} l JOIN {uow.table('accounts')} a ON a.code = l.account "
            "WHERE l.account = ANY(:a) "
            "GROUP BY l.account, a.normal_side"
        ),
        {"a": sorted(set(accounts))},
    )
    return {r.account: int(r.net) if r.normal_side == "D" else -int(r.net) for r in rows}
