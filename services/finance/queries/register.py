"""An account's register: its lines in effective order with the running balance on the account's normal side.

A read model beside the others of :mod:`services.finance.queries` (it lived in the pages' package); it runs on
the viewer's scoped connection (a :class:`services.finance.scope.ReadModel`), so the lapas policies apply to it as
to every other read. The inmate statement (:func:`services.finance.queries.balances.inmate_statement`) is the
register of the inmate's savings account over a period, so the page, the PDF and the API count alike.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import text

from services.finance.queries.balances import Moment, account_visible
from services.finance.scope import ReadModel
from services.ledger.domain.accounts import account_info

REGISTER_LIMIT = 1000
"""Most lines a register page shows (the latest ones; the opening balance carries what comes before)."""


async def account_register(
    reads: ReadModel,
    account: str,
    moment: Moment,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int | None = REGISTER_LIMIT,
) -> dict[str, Any] | None:
    """The lines of ``account`` effective from ``start`` and before ``end`` (the latest ``limit`` of them; None:
    no bound) with the balance after each (normal side positive), the balance before them and the closing
    balance; None when not in the viewer's scope."""
    if not await account_visible(reads, account):
        return None
    normal = str(account_info(account).normal_side)
    params = {**moment.params(), "a": account, "normal": normal, "s": start, "t": end, "n": limit}
    rows = (await reads.conn.execute(text(_register_sql(reads, moment, start, end, limit)), params)).all()
    lines = [_line(r) for r in rows if r.shown]
    if lines:
        opening = lines[0]["balance"] - _signed(lines[0], normal)
    else:  # nothing in the period: the latest line before it (always read) carries the balance
        opening = int(rows[-1].balance) if rows else 0
    closing = lines[-1]["balance"] if lines else opening
    return {"account": account, "normal_side": normal, "opening": opening, "lines": lines, "closing": closing}


def _register_sql(
    reads: ReadModel, moment: Moment, start: datetime | None, end: datetime | None, limit: int | None
) -> str:
    """The register's one query, holding only the bounds given (an ``:x IS NULL OR …`` per bound made the planner
    evaluate the lapas policies on every line). The balance runs over every line up to ``end``; the lines shown
    are those from ``start`` among the latest ``limit``, plus the very latest (``back = 1``) for the opening
    balance of a period with no line."""
    counted = [moment.condition()] + (["e.effective_at < :t"] if end is not None else [])
    shown = ["true"] + (["r.effective_at >= :s"] if start is not None else [])
    shown += ["r.back <= :n"] if limit is not None else []
    signed = "CASE l.side WHEN :normal THEN l.amount ELSE -l.amount END"
    return (
        f"SELECT r.*, {' AND '.join(shown)} AS shown FROM (SELECT e.sequence, e.posting_key, e.kind, "
        "e.effective_at, e.recorded_at, e.order_key, e.batch_id, e.policy_ref, l.side, l.amount, "
        f"sum({signed}) OVER (ORDER BY e.effective_at, e.sequence, l.line_no) AS balance, "
        "row_number() OVER (ORDER BY e.effective_at DESC, e.sequence DESC, l.line_no DESC) AS back "
        f"FROM {reads.ledger('journal_lines')} l JOIN {reads.ledger('journal_entries')} e USING (sequence) "
        f"WHERE l.account = :a AND {' AND '.join(counted)}) r "
        f"WHERE ({' AND '.join(shown)}) OR r.back = 1 ORDER BY r.back DESC"
    )


def _line(r: Any) -> dict[str, Any]:
    return {
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


def _signed(line: dict[str, Any], normal: str) -> int:
    amount: int = line["debit"] - line["credit"]
    return amount if normal == "D" else -amount
