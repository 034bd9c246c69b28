"""An account's register: its lines in effective order with the running balance on the account's normal side.

A read model beside the others of :mod:`services.finance.queries` (it lived in the pages' package); it runs on
the viewer's scoped connection (a :class:`services.finance.scope.ReadModel`), so the lapas policies apply to it as
to every other read.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from services.finance.queries.balances import Moment, account_visible
from services.finance.scope import ReadModel
from services.ledger.domain.accounts import account_info

REGISTER_LIMIT = 1000
"""Most lines a register page shows (the latest ones; the opening balance carries what comes before)."""


async def account_register(reads: ReadModel, account: str, moment: Moment) -> dict[str, Any] | None:
    """The latest :data:`REGISTER_LIMIT` lines of ``account`` with the balance after each (normal side
    positive), the balance before them and the closing balance; None when not in the viewer's scope."""
    if not await account_visible(reads, account):
        return None
    normal = account_info(account).normal_side
    signed = "CASE l.side WHEN :normal THEN l.amount ELSE -l.amount END"
    rows = (
        await reads.conn.execute(
            text(
                "SELECT * FROM (SELECT e.sequence, e.kind, e.effective_at, e.order_key, l.side, l.amount, "
                f"sum({signed}) OVER (ORDER BY e.effective_at, e.sequence, l.line_no) AS balance, "
                "row_number() OVER (ORDER BY e.effective_at DESC, e.sequence DESC, l.line_no DESC) AS back "
                f"FROM {reads.ledger('journal_lines')} l JOIN {reads.ledger('journal_entries')} e USING (sequence) "
                f"WHERE l.account = :a AND {moment.condition()}) r WHERE back <= :n ORDER BY back DESC"
            ),
            {**moment.params(), "a": account, "normal": str(normal), "n": REGISTER_LIMIT},
        )
    ).all()
    lines = [
        {
            "sequence": r.sequence,
            "kind": r.kind,
            "effective_at": r.effective_at,
            "order_key": r.order_key,
            "debit": int(r.amount) if r.side == "D" else 0,
            "credit": int(r.amount) if r.side == "C" else 0,
            "balance": int(r.balance),
        }
        for r in rows
    ]
    first = lines[0] if lines else None
    opening = 0 if first is None else first["balance"] - _signed(first, str(normal))
    closing = lines[-1]["balance"] if lines else 0
    return {"account": account, "normal_side": str(normal), "opening": opening, "lines": lines, "closing": closing}


def _signed(line: dict[str, Any], normal: str) -> int:
    amount: int = line["debit"] - line["credit"]
    return amount if normal == "D" else -amount
