"""The finance read side: trial balance, account statement, inmate savings, chain and balance verification."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import text

from infra.db.unit_of_work import UnitOfWork
from services.ledger.adapters.inmates_repo import inmate_lapas
from services.ledger.adapters.journal_repo import normal_balances
from services.ledger.domain import accounts
from services.ledger.domain.hashchain import GENESIS_HASH, CommittedEntry, SegmentHead, chain_hash, heads_root
from services.ledger.domain.journal import EntryKind, JournalEntry, Line


def _balance(normal_side: str, debit: int, credit: int) -> int:
    return debit - credit if normal_side == "D" else credit - debit


async def trial_balance(
    uow: UnitOfWork, as_of: datetime | None = None, lapas: str | None = None
) -> list[dict[str, Any]]:
    """Per account: debit, credit, normal-side balance and the lapas whose books it is in
    (:func:`~services.ledger.domain.accounts.account_lapas`; ``None`` for a legacy global code) — now (balances
    table) or as of a time (lines); with ``lapas``, that lapas' accounts only (their debits equal their credits)."""
    if as_of is None:
        sql = (
            "SELECT a.code AS account, a.type, a.normal_side, sum(b.debit_total) AS debit, "
            f"sum(b.credit_total) AS credit FROM {uow.table('account_balances')} b "
            f"JOIN {uow.table('accounts')} a ON a.code = b.account GROUP BY a.code, a.type, a.normal_side "
            "ORDER BY a.code"
        )
        result = await uow.conn.execute(text(sql))
    else:
        sql = (
            "SELECT a.code AS account, a.type, a.normal_side, "
            "coalesce(sum(l.amount) FILTER (WHERE l.side = 'D'), 0)::bigint AS debit, "
            "coalesce(sum(l.amount) FILTER (WHERE l.side = 'C'), 0)::bigint AS credit "
            f"FROM {uow.table('journal_lines')} l JOIN {uow.table('journal_entries')} e USING (sequence) "
            f"JOIN {uow.table('accounts')} a ON a.code = l.account WHERE e.effective_at <= :t "
            "GROUP BY a.code, a.type, a.normal_side ORDER BY a.code"
        )
        result = await uow.conn.execute(text(sql), {"t": as_of})
    rows = list(result)
    inmates = (
        await inmate_lapas(uow) if any(accounts.account_info(r.account).kind.owner == "inmate" for r in rows) else {}
    )
    listed = [
        {
            "account": r.account,
            "type": r.type,
            "lapas": accounts.account_lapas(r.account, inmates),
            "debit": int(r.debit),
            "credit": int(r.credit),
            "balance": _balance(r.normal_side, int(r.debit), int(r.credit)),
        }
        for r in rows
    ]
    return listed if lapas is None else [r for r in listed if r["lapas"] == lapas]


async def statement(
    uow: UnitOfWork, account: str, start: datetime | None = None, end: datetime | None = None
) -> dict[str, Any]:
    """Register of one account between ``start`` and ``end`` (effective time) with a running balance."""
    info = accounts.account_info(account)
    side = info.normal_side.value
    opening = 0
    if start is not None:
        row = (
            await uow.conn.execute(
                text(
                    "SELECT coalesce(sum(CASE l.side WHEN 'D' THEN l.amount ELSE -l.amount END), 0) FROM "
                    f"{uow.table('journal_lines')} l JOIN {uow.table('journal_entries')} e USING (sequence) "
                    "WHERE l.account = :a AND e.effective_at < :s"
                ),
                {"a": account, "s": start},
            )
        ).scalar_one()
        opening = int(row) if side == "D" else -int(row)
    rows = await uow.conn.execute(
        text(
            "SELECT e.sequence, e.effective_at, e.posting_key, e.kind, e.memo, e.order_key, e.policy_ref, l.side, "
            f"l.amount FROM {uow.table('journal_lines')} l JOIN {uow.table('journal_entries')} e USING (sequence) "
            "WHERE l.account = :a "
            "AND (CAST(:s AS timestamptz) IS NULL OR e.effective_at >= :s) "
            "AND (CAST(:t AS timestamptz) IS NULL OR e.effective_at < :t) "
            "ORDER BY e.effective_at, e.sequence, l.line_no"
        ),
        {"a": account, "s": start, "t": end},
    )
    running = opening
    lines = []
    for r in rows:
        signed = r.amount if r.side == side else -r.amount
        running += signed
        lines.append(
            {
                "sequence": r.sequence,
                "effective_at": r.effective_at,
                "posting_key": r.posting_key,
                "kind": r.kind,
                "memo": r.memo,
                "order_key": r.order_key,
                "policy_ref": r.policy_ref,
                "debit": r.amount if r.side == "D" else 0,
                "credit": r.amount if r.side == "C" else 0,
                "balance": running,
            }
        )
    return {
        "account": account,
        "normal_side": side,
        "opening_balance": opening,
        "lines": lines,
        "closing_balance": running,
    }


async def inmate_savings(uow: UnitOfWork, inmate_id: str) -> dict[str, Any]:
    """Savings balance of one inmate (pseudonym) and every posting behind it: order, batch, policy version."""
    account = accounts.inmate_savings(inmate_id)
    receivable = accounts.inmate_receivable(inmate_id)
    balances = await normal_balances(uow, [account, receivable])
    rows = await uow.conn.execute(
        text(
            "SELECT e.sequence, e.effective_at, e.kind, e.order_key, e.batch_id, e.policy_ref, l.side, l.amount "
            f"FROM {uow.table('journal_lines')} l JOIN {uow.table('journal_entries')} e USING (sequence) "
            "WHERE l.account = :a "
            "ORDER BY e.sequence, l.line_no"
        ),
        {"a": account},
    )
    postings = [
        {
            "sequence": r.sequence,
            "effective_at": r.effective_at,
            "kind": r.kind,
            "order_key": r.order_key,
            "batch_id": r.batch_id,
            "policy_ref": r.policy_ref,
            "amount": r.amount if r.side == "C" else -r.amount,
        }
        for r in rows
    ]
    return {
        "inmate_id": inmate_id,
        "savings_balance": balances.get(account, 0),
        "receivable_balance": balances.get(receivable, 0),
        "postings": postings,
    }


async def order_entries(uow: UnitOfWork, order_key: str) -> list[dict[str, Any]]:
    """Every journal entry of one order in sequence order, each with its lines (debit or credit per line)."""
    rows = await uow.conn.execute(
        text(
            "SELECT e.sequence, e.effective_at, e.recorded_at, e.posting_key, e.kind, e.memo, e.batch_id, "
            "e.policy_ref, e.reverses, e.chain_hash, l.line_no, l.account, l.side, l.amount "
            f"FROM {uow.table('journal_entries')} e JOIN {uow.table('journal_lines')} l USING (sequence) "
            "WHERE e.order_key = :k ORDER BY e.sequence, l.line_no"
        ),
        {"k": order_key},
    )
    entries: dict[int, dict[str, Any]] = {}
    for r in rows:
        entry = entries.setdefault(
            r.sequence,
            {
                "sequence": r.sequence,
                "effective_at": r.effective_at,
                "recorded_at": r.recorded_at,
                "posting_key": r.posting_key,
                "kind": r.kind,
                "memo": r.memo,
                "order_key": order_key,
                "batch_id": r.batch_id,
                "policy_ref": r.policy_ref,
                "reverses": r.reverses,
                "chain_hash": r.chain_hash,
                "lines": [],
            },
        )
        debit, credit = (int(r.amount), 0) if r.side == "D" else (0, int(r.amount))
        entry["lines"].append({"account": r.account, "debit": debit, "credit": credit})
    return list(entries.values())


@dataclass(frozen=True)
class Verification:
    """Result of re-computing the hash chains: entries checked, the root hash of the heads reached
    (:func:`~services.ledger.domain.hashchain.heads_root`), the sequence of the first entry found broken (None:
    intact) and what is wrong with it, and the head of each segment as far as it was verified."""

    entries: int
    head_hash: str
    first_broken: int | None
    problem: str | None
    heads: dict[str, SegmentHead] = field(default_factory=dict)


_ENTRIES_OF_SEGMENT = (
    "SELECT * FROM {schema}.journal_entries WHERE segment = :seg AND sequence > :a AND sequence <= :b "
    "ORDER BY sequence LIMIT :n"
)
_LINES_OF_SEGMENT = (
    "SELECT l.sequence, l.account, l.side, l.amount FROM {schema}.journal_lines l "
    "JOIN {schema}.journal_entries e USING (sequence) "
    "WHERE e.segment = :seg AND e.sequence BETWEEN :a AND :b ORDER BY l.sequence, l.line_no"
)


async def _committed(
    uow: UnitOfWork, segment: str, after: int, upto: int, chunk: int = 5000
) -> AsyncIterator[tuple[CommittedEntry, str]]:
    """The entries of ``segment`` with a sequence in ``(after, upto]``, in chain order, with their stored prev hash."""
    last = after
    while True:
        entries = (
            await uow.conn.execute(
                text(_ENTRIES_OF_SEGMENT.format(schema=uow.schema)), {"seg": segment, "a": last, "b": upto, "n": chunk}
            )
        ).all()
        if not entries:
            return
        lines: dict[int, list[Line]] = {}
        for r in await uow.conn.execute(
            text(_LINES_OF_SEGMENT.format(schema=uow.schema)),
            {"seg": segment, "a": entries[0].sequence, "b": entries[-1].sequence},
        ):
            lines.setdefault(r.sequence, []).append(Line(r.account, accounts.Side(r.side), int(r.amount)))
        for e in entries:
            entry = JournalEntry(
                posting_key=e.posting_key,
                request_hash=e.request_hash,
                kind=EntryKind(e.kind),
                memo=e.memo,
                effective_at=e.effective_at,
                lines=tuple(lines.get(e.sequence, ())),
                policy_ref=e.policy_ref,
                reverses=e.reverses,
                order_key=e.order_key,
                batch_id=e.batch_id,
            )
            yield CommittedEntry(e.sequence, entry, e.recorded_at, e.source_event, e.chain_hash, e.segment), e.prev_hash
        last = entries[-1].sequence


async def segment_heads(uow: UnitOfWork) -> dict[str, SegmentHead]:
    """The head of every segment now (``ledger.chain_segments``)."""
    rows = await uow.conn.execute(text(f"SELECT segment, last_sequence, hash FROM {uow.table('chain_segments')}"))
    return {r.segment: SegmentHead(r.segment, int(r.last_sequence), str(r.hash)) for r in rows}


async def verify_chain(
    uow: UnitOfWork,
    on_progress: Callable[[int, int], None] | None = None,
    after: Mapping[str, SegmentHead] | None = None,
) -> Verification:
    """Recompute every link of every segment from its genesis hash up to the segment's head as read at the start;
    name the first entry whose stored hash does not match (segments in name order, entries in chain order).

    Every segment's head is read first: a segment's entries up to its head's sequence are exactly those committed
    then (sequence increases along a chain), so postings meanwhile do not disturb the pass. ``on_progress(done,
    total)`` is called every 5,000 entries (a long journal takes minutes). ``after``: the heads an earlier pass
    verified: recompute only the links after them (``entries`` counts those); an entry altered before them is not
    seen.
    """
    heads = await segment_heads(uow)
    total = int((await uow.conn.execute(text(f"SELECT count(*) FROM {uow.table('journal_entries')}"))).scalar_one())
    verified: dict[str, SegmentHead] = {}
    count = 0
    for name, head in sorted(heads.items()):
        start = (after or {}).get(name) or SegmentHead(name, 0, GENESIS_HASH)
        expected_prev, last_seq = start.hash, start.sequence
        async for committed, prev_hash in _committed(uow, name, start.sequence, head.sequence):
            count += 1
            if count % 200 == 0:
                # ~70 ms of hashing: let the process's consumers run (the ledger verifies in its own event loop).
                await asyncio.sleep(0)
            if on_progress is not None and count % 5000 == 0:
                on_progress(count, total)
            seq = committed.sequence
            problem = _broken_link(committed, prev_hash, expected_prev)
            if problem is not None:
                verified[name] = SegmentHead(name, last_seq, expected_prev)
                return Verification(count, heads_root(verified.values()), seq, problem, verified)
            expected_prev, last_seq = committed.chain_hash, seq
        verified[name] = SegmentHead(name, last_seq, expected_prev)
        if expected_prev != head.hash or last_seq != head.sequence:
            problem = (
                f"the chain head of segment {name} (entry {head.sequence}) does not match its last entry ({last_seq}): "
                "entries removed, or the head rewritten"
            )
            return Verification(count, heads_root(verified.values()), head.sequence, problem, verified)
    return Verification(count, heads_root(verified.values()), None, None, verified)


def _broken_link(committed: CommittedEntry, prev_hash: str, expected_prev: str) -> str | None:
    """What is wrong with one entry of a chain whose previous hash should be ``expected_prev`` (None: nothing)."""
    entry, seq = committed.entry, committed.sequence
    debit = sum(x.amount for x in entry.lines if x.side is accounts.Side.DEBIT)
    credit = sum(x.amount for x in entry.lines if x.side is accounts.Side.CREDIT)
    if debit != credit or len(entry.lines) < 2:
        return f"entry {entry.posting_key} does not balance"
    if prev_hash != expected_prev or chain_hash(expected_prev, committed) != committed.chain_hash:
        return (
            f"entry {seq} ({entry.posting_key}) in segment {committed.segment} does not match its hash: altered "
            "after posting, or a link before it was"
        )
    return None


@dataclass(frozen=True)
class BalanceMismatch:
    """An account whose stored balance differs from the sum of its journal lines (debits and credits of each)."""

    account: str
    stored_debit: int
    stored_credit: int
    lines_debit: int
    lines_credit: int


_BALANCES_VS_LINES = """
SELECT coalesce(b.account, l.account) AS account,
       coalesce(b.debit_total, 0) AS stored_debit, coalesce(b.credit_total, 0) AS stored_credit,
       coalesce(l.debit, 0) AS lines_debit, coalesce(l.credit, 0) AS lines_credit
  FROM (SELECT account, sum(debit_total)::bigint AS debit_total, sum(credit_total)::bigint AS credit_total
          FROM {schema}.account_balances GROUP BY account) b
  FULL JOIN (SELECT account,
                    sum(amount) FILTER (WHERE side = 'D')::bigint AS debit,
                    sum(amount) FILTER (WHERE side = 'C')::bigint AS credit
               FROM {schema}.journal_lines GROUP BY account) l ON l.account = b.account
 WHERE coalesce(b.debit_total, 0) <> coalesce(l.debit, 0) OR coalesce(b.credit_total, 0) <> coalesce(l.credit, 0)
 ORDER BY 1"""


async def verify_balances(uow: UnitOfWork) -> tuple[int, list[BalanceMismatch]]:
    """Recompute every account's debit and credit totals from the journal lines and compare them with
    ``ledger.account_balances`` (one statement, so one snapshot); the number of accounts and every mismatch."""
    accounts_count = int((await uow.conn.execute(text(f"SELECT count(*) FROM {uow.table('accounts')}"))).scalar_one())
    rows = await uow.conn.execute(text(_BALANCES_VS_LINES.format(schema=uow.schema)))
    return accounts_count, [
        BalanceMismatch(r.account, int(r.stored_debit), int(r.stored_credit), int(r.lines_debit), int(r.lines_credit))
        for r in rows
    ]
