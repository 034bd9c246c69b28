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


async def inmate_statement(
    reads: ReadModel, inmate_id: str, start: datetime | None, end: datetime | None, moment: Moment
) -> dict[str, Any] | None:
    """The savings register of one inmate between ``start`` and ``end`` (effective), with the opening balance
    before ``start`` and a running balance; None when the inmate is not in the viewer's scope. It is
    :func:`~services.finance.queries.register.account_register` of the inmate's savings account, every line of
    the period, under the statement's header."""
    from services.finance.queries.register import account_register  # it reads Moment and account_visible here

    account = accounts.inmate_savings(inmate_id)
    found = await account_register(reads, account, moment, start=start, end=end, limit=None)
    if found is None:
        return None
    return {
        "inmate_id": inmate_id,
        "account": account,
        "start": start,
        "end": end,
        "opening_balance": found["opening"],
        "postings": found["lines"],
        "closing_balance": found["closing"],
    }
