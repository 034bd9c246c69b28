"""Journal entries: a page of entries by period, posting key, order, kind or account (cursor on the sequence);
one entry with its lines, its link in the hash chain and what caused it; one order with its entries."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text

from services.finance.queries.balances import Moment
from services.finance.queries.settlements import order_settlements
from services.finance.scope import ReadModel

_ENTRY_COLUMNS = (
    "e.sequence, e.posting_key, e.kind, e.memo, e.effective_at, e.recorded_at, e.order_key, e.batch_id, "
    "e.policy_ref, e.reverses, e.source_event"
)
_FIELDS = (
    "sequence",
    "posting_key",
    "kind",
    "memo",
    "effective_at",
    "recorded_at",
    "order_key",
    "batch_id",
    "policy_ref",
    "reverses",
    "source_event",
)


@dataclass(frozen=True, slots=True)
class EntryFilter:
    """What a page of entries is chosen by (None: not filtered on it); ``start``/``end`` bound ``effective_at``."""

    start: datetime | None = None
    end: datetime | None = None
    posting_key: str | None = None
    order_key: str | None = None
    kind: str | None = None
    account: str | None = None

    def params(self) -> dict[str, object]:
        """The bind parameters of :meth:`condition`."""
        return {
            "s": self.start,
            "t": self.end,
            "pk": self.posting_key,
            "ok": self.order_key,
            "kind": self.kind,
            "acct": self.account,
        }

    def condition(self, lines: str) -> str:
        """The condition on an entry ``e``: only the filters given (see :meth:`Moment.condition`); ``lines`` is
        the journal lines' table, for the account filter."""
        given = {
            "e.effective_at >= :s": self.start,
            "e.effective_at < :t": self.end,
            "starts_with(e.posting_key, :pk)": self.posting_key,
            "e.order_key = :ok": self.order_key,
            "e.kind = :kind": self.kind,
            f"EXISTS (SELECT 1 FROM {lines} x WHERE x.sequence = e.sequence AND x.account = :acct)": self.account,
        }
        return " AND ".join(["true", *(sql for sql, value in given.items() if value is not None)])


def _entry(row: Any) -> dict[str, Any]:
    out = {name: getattr(row, name) for name in _FIELDS}
    out["amount"] = int(row.amount)
    return out


async def entries_page(
    reads: ReadModel, where: EntryFilter, moment: Moment, after: int, limit: int
) -> tuple[list[dict[str, Any]], int | None]:
    """Up to ``limit`` entries after sequence ``after``, in sequence order, each with its amount (the sum of its
    debits); and the cursor of the next page (None on the last)."""
    lines = reads.ledger("journal_lines")
    rows = (
        await reads.conn.execute(
            text(
                f"SELECT {_ENTRY_COLUMNS}, (SELECT coalesce(sum(l.amount), 0) FROM {lines} l "
                "WHERE l.sequence = e.sequence AND l.side = 'D') AS amount "
                f"FROM {reads.ledger('journal_entries')} e "
                f"WHERE e.sequence > :after AND {moment.condition()} AND {where.condition(lines)} "
                "ORDER BY e.sequence LIMIT :n"
            ),
            {**moment.params(), **where.params(), "after": after, "n": limit + 1},
        )
    ).all()
    page = [_entry(r) for r in rows[:limit]]
    return page, (page[-1]["sequence"] if len(rows) > limit else None)


async def deliveries_of(reads: ReadModel, order_key: str, *, bodies: bool) -> list[dict[str, Any]]:
    """The webhook deliveries of an order as the redacted view shows them (no buyer data, no headers)."""
    body = ", body" if bodies else ""
    rows = await reads.conn.execute(
        text(
            "SELECT delivery_id, channel, webhook_type, received_at, body_bytes, body_sha256, redacted_at"
            f"{body} FROM {reads.finance('deliveries_redacted')} WHERE order_key = :k ORDER BY delivery_id"
        ),
        {"k": order_key},
    )
    return [dict(r._mapping) for r in rows]


async def entry_detail(reads: ReadModel, sequence: int) -> dict[str, Any] | None:
    """One entry with its lines, its chain link (previous hash, own hash, the neighbouring sequences the viewer
    sees) and the events that caused it (its source event, the order's webhook deliveries, redacted); None when
    it does not exist in the viewer's scope."""
    entries, lines = reads.ledger("journal_entries"), reads.ledger("journal_lines")
    row = (
        await reads.conn.execute(
            text(
                f"SELECT {_ENTRY_COLUMNS}, e.prev_hash, e.chain_hash, "
                f"(SELECT max(p.sequence) FROM {entries} p WHERE p.sequence < e.sequence) AS previous_sequence, "
                f"(SELECT min(n.sequence) FROM {entries} n WHERE n.sequence > e.sequence) AS next_sequence, "
                f"(SELECT coalesce(sum(l.amount), 0) FROM {lines} l WHERE l.sequence = e.sequence "
                "AND l.side = 'D') AS amount "
                f"FROM {entries} e WHERE e.sequence = :s"
            ),
            {"s": sequence},
        )
    ).first()
    if row is None:
        return None
    detail = _entry(row)
    detail["chain"] = {
        "prev_hash": row.prev_hash,
        "chain_hash": row.chain_hash,
        "previous_sequence": row.previous_sequence,
        "next_sequence": row.next_sequence,
    }
    detail["lines"] = [
        {"line_no": r.line_no, "account": r.account, "side": r.side, "amount": int(r.amount)}
        for r in await reads.conn.execute(
            text(f"SELECT line_no, account, side, amount FROM {lines} WHERE sequence = :s ORDER BY line_no"),
            {"s": sequence},
        )
    ]
    detail["deliveries"] = await deliveries_of(reads, row.order_key, bodies=True) if row.order_key else []
    return detail


async def order_detail(reads: ReadModel, order_key: str) -> dict[str, Any] | None:
    """What the ledger knows of one order (lapas, refunded gross), its entries, its settlements and its webhook
    deliveries; None when the order is not in the viewer's scope."""
    facts = (
        await reads.conn.execute(
            text(
                f"SELECT order_key, lapas_id, refunded_gross, updated_at FROM {reads.ledger('order_facts')} "
                "WHERE order_key = :k"
            ),
            {"k": order_key},
        )
    ).first()
    if facts is None:
        return None
    entries, _ = await entries_page(reads, EntryFilter(order_key=order_key), Moment(), 0, 10_000)
    return {
        "order_key": facts.order_key,
        "lapas_id": facts.lapas_id,
        "refunded_gross": int(facts.refunded_gross),
        "updated_at": facts.updated_at,
        "entries": entries,
        "settlements": await order_settlements(reads, order_key),
        "deliveries": await deliveries_of(reads, order_key, bodies=False),
    }
