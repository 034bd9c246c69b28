"""Posting journal entries: idempotency by posting key, accounts on demand, entries with their lines and their
segments' hash chains — all set-based for one batch, in the lock order of :mod:`services.ledger.adapters.locks`.
Balances follow from the lines: the database adds them up per (account, segment) (the ``journal_lines_to_balances``
trigger); the service cannot write ``ledger.account_balances``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any, NamedTuple

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


def posted_hashes_sql(schema: str) -> str:
    """The posting key and request hash of each entry whose key is among ``{keys}`` (an SQL array)."""
    return f"SELECT posting_key, request_hash FROM {schema}.journal_entries WHERE posting_key = ANY({{keys}})"


async def existing_hashes(uow: UnitOfWork, keys: Sequence[str]) -> dict[str, str]:
    """Request hash of every posting key among ``keys`` that is already in the journal."""
    if not keys:
        return {}
    # The keys as one JSON text (KeyedQuery), not an array asyncpg encodes key by key.
    rows = await KeyedQuery(posted_hashes_sql(uow.schema)).execute(uow.conn, sorted(set(keys)))
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
    writes = Writes()
    result = await stage_entries(uow, writes, entries, known)
    await writes.execute(uow.conn)
    return result


async def stage_entries(
    uow: UnitOfWork,
    writes: Writes,
    entries: Sequence[tuple[JournalEntry, str | None]],
    known: dict[str, str] | None = None,
) -> PostingResult:
    """Lock what posting ``(entry, source_event)`` pairs once each needs and add their rows to ``writes``, which the
    caller executes in this transaction (with its other writes: one statement).

    One round trip first opens the entries' accounts, locks their segments' heads, draws their sequence numbers and
    reads which posting keys are already in the journal (unless ``known`` says); then each entry is new (chained
    and written), already posted with the same request hash (the existing answer), or a conflict (recorded).
    Sequence numbers drawn for entries that turn out posted before stay unused, as those of a rolled-back
    transaction do. The accounts are opened before the posted keys are known: an entry posted before with the same
    request names accounts already open; one in conflict may leave an account it names open without lines."""
    result = PostingResult()
    for entry, _ in entries:
        entry.validate()
    segments = [segment_of(entry.order_key or entry.posting_key) for entry, _ in entries]
    codes = sorted({line.account for e, _ in entries for line in e.lines})
    keys = [] if known is not None else sorted({e.posting_key for e, _ in entries})
    locked = await lock_segments(uow, _account_rows(codes), segments, keys, len(entries)) if entries else None
    seen_hashes = dict(known) if known is not None else dict(locked.known) if locked is not None else {}
    fresh: list[tuple[JournalEntry, str | None, str]] = []
    for (entry, source), segment in zip(entries, segments, strict=True):
        seen = seen_hashes.get(entry.posting_key)
        if seen is None:
            seen_hashes[entry.posting_key] = entry.request_hash
            fresh.append((entry, source, segment))
        elif seen == entry.request_hash:
            result.already_posted.append(entry.posting_key)
        else:
            result.conflicts.append(Conflict(entry.posting_key, seen, entry.request_hash, source))
    add_conflicts(writes, uow, result.conflicts)
    if not fresh or locked is None:
        return result
    last = {s: (h.sequence, h.hash) for s, h in locked.heads.items()}
    recorded_at = datetime.now(UTC)
    committed: list[CommittedEntry] = []
    prev_hashes: list[str] = []
    for (entry, source, segment), sequence in zip(fresh, locked.sequences, strict=False):
        prev = last[segment][1]
        c = CommittedEntry(sequence, entry, recorded_at, source, "", segment)
        digest = chain_hash(prev, c)
        committed.append(CommittedEntry(sequence, entry, recorded_at, source, digest, segment))
        prev_hashes.append(prev)
        last[segment] = (sequence, digest)
    _add_entries(writes, uow, committed, prev_hashes)
    moved = {s: head for s, head in last.items() if head != (locked.heads[s].sequence, locked.heads[s].hash)}
    writes.add(
        _row_sets(uow.schema).heads,
        [list(moved), [q for q, _ in moved.values()], [h for _, h in moved.values()]],
    )
    result.posted = committed
    return result


def add_conflicts(writes: Writes, uow: UnitOfWork, conflicts: Sequence[Conflict]) -> None:
    """Add ``conflicts`` to ``writes``, for ``ledger.posting_conflicts`` (the caller alerts and dead-letters)."""
    writes.add(
        _row_sets(uow.schema).conflicts,
        [
            [c.posting_key for c in conflicts],
            [c.existing_hash for c in conflicts],
            [c.new_hash for c in conflicts],
            [c.source_event for c in conflicts],
        ],
    )


def _account_rows(codes: Sequence[str]) -> list[tuple[str, str, str]]:
    """(code, type, normal side) of each account ``codes`` names, as the accounts table keeps them."""
    rows = []
    for code in codes:
        info = account_info(code)
        rows.append((code, info.type.value, info.normal_side.value))
    return rows


_SIDE_CODES = {side: side.value for side in Side}  # enum .value is a Python-level property call, per line


class _Journal(NamedTuple):
    """The journal's set-based writes in one schema."""

    entries: RowSet
    lines: RowSet
    heads: RowSet
    conflicts: RowSet


@cache
def _row_sets(schema: str) -> _Journal:
    """The entry, line, segment head and conflict writes of ``schema``'s journal (built once per schema)."""
    return _Journal(
        RowSet(_ENTRIES.replace("{schema}", schema), _ENTRY_COLUMNS),
        RowSet(_LINES.replace("{schema}", schema), _LINE_COLUMNS),
        RowSet(_HEADS.replace("{schema}", schema), [("s", "text"), ("q", "bigint"), ("h", "text")]),
        RowSet(_CONFLICTS.replace("{schema}", schema), [("k", "text"), ("e", "text"), ("n", "text"), ("src", "text")]),
    )


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
_HEADS = (
    "UPDATE {schema}.chain_segments s SET last_sequence = u.q, hash = u.h, updated_at = now() FROM {rows} "
    "WHERE s.segment = u.s"
)
_CONFLICTS = (
    "INSERT INTO {schema}.posting_conflicts (posting_key, existing_hash, new_hash, source_event) SELECT * FROM {rows}"
)
_LINES = "INSERT INTO {schema}.journal_lines (sequence, line_no, account, side, amount) SELECT * FROM {rows}"
_LINE_COLUMNS = [("s", "bigint"), ("n", "int"), ("a", "text"), ("d", "char(1)"), ("m", "bigint")]


def _add_entries(
    writes: Writes, uow: UnitOfWork, committed: Sequence[CommittedEntry], prev_hashes: Sequence[str]
) -> None:
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
    journal = _row_sets(uow.schema)
    writes.add(
        journal.entries,
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
    writes.add(journal.lines, [seqs, nos, accts, sides, amounts])


def balances_sql(schema: str) -> str:
    """Debit and credit totals of each account among ``:a`` (a text array) that has a balance row, summed over its
    segments, with the account's normal side (see :func:`normal_of`)."""
    return (
        "SELECT b.account, sum(b.debit_total) AS debit_total, sum(b.credit_total) AS credit_total, a.normal_side "
        f"FROM {schema}.account_balances b JOIN {schema}.accounts a ON a.code = b.account "
        "WHERE b.account = ANY(CAST(:a AS text[])) GROUP BY b.account, a.normal_side"
    )


def normal_of(rows: Iterable[Sequence[Any]]) -> dict[str, int]:
    """Rows of :func:`balances_sql` (account, debit total, credit total, normal side) → normal-side balances."""
    return {
        account: int(debit - credit) if side == "D" else int(credit - debit) for account, debit, credit, side in rows
    }


async def normal_balances(uow: UnitOfWork, accounts: Sequence[str]) -> dict[str, int]:
    """Current normal-side balances of ``accounts``, each the sum of its rows over the segments (an account without
    a row is absent, i.e. 0). After :func:`services.ledger.adapters.locks.lock_journal`, none can move until the
    caller's transaction ends."""
    if not accounts:
        return {}
    rows = await uow.conn.execute(text(balances_sql(uow.schema)), {"a": sorted(set(accounts))})
    return normal_of(rows)


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
