"""Balances of accounts and the trial balance as of a time (effective) or as known at a time (recorded), and the
savings statement of one inmate with its running balance."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text

from services.finance.scope import ReadModel
from services.ledger.domain import accounts


@dataclass(frozen=True, slots=True)
class Moment:
    """Which lines count: effective at or before ``as_of``, recorded at or before ``known_at`` (None: no bound)."""

    as_of: datetime | None = None
    known_at: datetime | None = None

    def params(self) -> dict[str, datetime | None]:
        """The bind parameters of :meth:`condition`."""
        return {"as_of": self.as_of, "known_at": self.known_at}

    def condition(self) -> str:
        """The condition on an entry ``e``: only the bounds given (an ``:x IS NULL OR …`` per bound made the
        planner evaluate the lapas policies on every line: 3x slower under a lapas scope)."""
        bounds = ["true"]
        if self.as_of is not None:
            bounds.append("e.effective_at <= :as_of")
        if self.known_at is not None:
            bounds.append("e.recorded_at <= :known_at")
        return " AND ".join(bounds)


def normal_balance(normal_side: str, debit: int, credit: int) -> int:
    """The balance on the account's normal side."""
    return debit - credit if normal_side == "D" else credit - debit


async def account_totals(reads: ReadModel, moment: Moment, prefix: str | None = None) -> list[dict[str, Any]]:
    """Per account with visible lines (code starting with ``prefix``): debit and credit totals and balance."""
    rows = await reads.conn.execute(
        text(
            "SELECT a.code AS account, a.type, a.normal_side, "
            "coalesce(sum(l.amount) FILTER (WHERE l.side = 'D'), 0)::bigint AS debit, "
            "coalesce(sum(l.amount) FILTER (WHERE l.side = 'C'), 0)::bigint AS credit "
            f"FROM {reads.ledger('journal_lines')} l JOIN {reads.ledger('journal_entries')} e USING (sequence) "
            f"JOIN {reads.ledger('accounts')} a ON a.code = l.account "
            f"WHERE {moment.condition()} {'' if prefix is None else 'AND starts_with(l.account, :prefix)'} "
            "GROUP BY a.code, a.type, a.normal_side ORDER BY a.code"
        ),
        {**moment.params(), "prefix": prefix},
    )
    return [
        {
            "account": r.account,
            "type": r.type,
            "normal_side": r.normal_side,
            "debit": int(r.debit),
            "credit": int(r.credit),
            "balance": normal_balance(r.normal_side, int(r.debit), int(r.credit)),
        }
        for r in rows
    ]


async def trial_balance(reads: ReadModel, moment: Moment) -> dict[str, Any]:
    """Every visible account's totals and the grand totals; ``balanced`` when debits equal credits."""
    rows = await account_totals(reads, moment)
    debit, credit = sum(r["debit"] for r in rows), sum(r["credit"] for r in rows)
    return {
        "as_of": moment.as_of,
        "known_at": moment.known_at,
        "accounts": rows,
        "total_debit": debit,
        "total_credit": credit,
        "balanced": debit == credit,
    }


async def account_visible(reads: ReadModel, account: str) -> bool:
    """Whether ``account`` exists in the viewer's scope."""
    sql = f"SELECT 1 FROM {reads.ledger('accounts')} WHERE code = :a"
    return (await reads.conn.execute(text(sql), {"a": account})).first() is not None


_SIGNED = "CASE l.side WHEN 'C' THEN l.amount ELSE -l.amount END"


async def inmate_statement(
    reads: ReadModel, inmate_id: str, start: datetime | None, end: datetime | None, moment: Moment
) -> dict[str, Any] | None:
    """The savings register of one inmate between ``start`` and ``end`` (effective), with the opening balance
    before ``start`` and a running balance; None when the inmate is not in the viewer's scope."""
    account = accounts.inmate_savings(inmate_id)
    if not await account_visible(reads, account):
        return None
    lines, entries = reads.ledger("journal_lines"), reads.ledger("journal_entries")
    params = {**moment.params(), "a": account, "s": start, "t": end}
    opening = int(
        (
            await reads.conn.execute(
                text(
                    f"SELECT coalesce(sum({_SIGNED}), 0) FROM {lines} l JOIN {entries} e USING (sequence) "
                    f"WHERE l.account = :a AND {moment.condition()} AND CAST(:s AS timestamptz) IS NOT NULL "
                    "AND e.effective_at < :s"
                ),
                params,
            )
        ).scalar_one()
    )
    rows = await reads.conn.execute(
        text(
            "SELECT e.sequence, e.posting_key, e.kind, e.effective_at, e.recorded_at, e.order_key, e.batch_id, "
            f"e.policy_ref, l.side, l.amount, CAST(:opening AS bigint) + sum({_SIGNED}) OVER "
            "(ORDER BY e.effective_at, e.sequence, l.line_no) AS balance "
            f"FROM {lines} l JOIN {entries} e USING (sequence) WHERE l.account = :a AND {moment.condition()} "
            "AND (CAST(:s AS timestamptz) IS NULL OR e.effective_at >= :s) "
            "AND (CAST(:t AS timestamptz) IS NULL OR e.effective_at < :t) "
            "ORDER BY e.effective_at, e.sequence, l.line_no"
        ),
        {**params, "opening": opening},
    )
    postings = [
        {
            "sequence": r.sequence,
            "posting_key": r.posting_key,
            "kind": r.kind,
            "effective_at": r.effective_at,
            "recorded_at": r.recorded_at,
            "order_key": r.order_key,
            "batch_id": r.batch_id,
            "policy_ref": r.policy_ref,
            "credit": int(r.amount) if r.side == "C" else 0,
            "debit": int(r.amount) if r.side == "D" else 0,
            "balance": int(r.balance),
        }
        for r in rows
    ]
    return {
        "inmate_id": inmate_id,
        "account": account,
        "start": start,
        "end": end,
        "opening_balance": opening,
        "postings": postings,
        "closing_balance": postings[-1]["balance"] if postings else opening,
    }
