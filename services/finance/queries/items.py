"""Work items: proceeds held in unallocated, differences in suspense (per order), and parked events."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from services.finance.scope import ReadModel

_OPEN_BY_ORDER = """
SELECT e.order_key, l.account,
       sum(CASE l.side WHEN '{side}' THEN l.amount ELSE -l.amount END)::bigint AS amount,
       min(e.effective_at) AS first_at, max(e.effective_at) AS last_at, count(DISTINCT e.sequence) AS entries
  FROM {lines} l JOIN {entries} e USING (sequence)
 WHERE starts_with(l.account, :prefix)
   {after}
 GROUP BY e.order_key, l.account
HAVING sum(CASE l.side WHEN 'D' THEN l.amount ELSE -l.amount END) <> 0
 ORDER BY coalesce(e.order_key, ''), l.account
 LIMIT :n"""


async def _open_by_order(
    reads: ReadModel, prefix: str, side: str, after: str | None, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    sql = _OPEN_BY_ORDER.format(
        side=side,
        lines=reads.ledger("journal_lines"),
        entries=reads.ledger("journal_entries"),
        after="" if after is None else "AND (coalesce(e.order_key, ''), l.account) > (:key, :account)",
    )
    key, _, account = (after or "").partition(" ")
    params = {"prefix": prefix, "key": key, "account": account, "n": limit + 1}
    rows = (await reads.conn.execute(text(sql), params)).all()
    items = [
        {
            "order_key": r.order_key,
            "account": r.account,
            "amount": int(r.amount),
            "first_at": r.first_at,
            "last_at": r.last_at,
            "entries": int(r.entries),
        }
        for r in rows[:limit]
    ]
    last = items[-1] if len(rows) > limit else None  # the cursor: "<order key or empty> <account>", the sort key
    return items, (None if last is None else f"{last['order_key'] or ''} {last['account']}")


async def unallocated(reads: ReadModel, after: str | None, limit: int) -> tuple[list[dict[str, Any]], str | None]:
    """Orders whose proceeds wait in ``clearing:unallocated_proceeds:*`` (credit balance), by order key."""
    return await _open_by_order(reads, "clearing:unallocated_proceeds:", "C", after, limit)


async def suspense(reads: ReadModel, after: str | None, limit: int) -> tuple[list[dict[str, Any]], str | None]:
    """Orders with a balance left in ``clearing:suspense`` (debit: cash that did not arrive), by order key."""
    return await _open_by_order(reads, "clearing:suspense", "D", after, limit)


async def parked(reads: ReadModel, after: str | None, limit: int) -> tuple[list[dict[str, Any]], str | None]:
    """Events parked until what they depend on arrives (``ledger.pending_events``), by order key and event id;
    the cursor is ``<order key> <event id>`` of the last item."""
    key, _, event = (after or "").rpartition(" ")
    rows = (
        await reads.conn.execute(
            text(
                "SELECT event_id, order_key, type, waiting_for, received_at "
                f"FROM {reads.ledger('pending_events')} "
                f"{'' if after is None else 'WHERE (order_key, event_id::text) > (:key, :event) '}"
                "ORDER BY order_key, event_id::text LIMIT :n"
            ),
            {"after": after, "key": key, "event": event, "n": limit + 1},
        )
    ).all()
    items = [
        {
            "event_id": str(r.event_id),
            "order_key": r.order_key,
            "type": r.type,
            "waiting_for": r.waiting_for,
            "received_at": r.received_at,
        }
        for r in rows[:limit]
    ]
    last = items[-1] if len(rows) > limit else None  # the cursor: "<order key or empty> <account>", the sort key
    return items, (f"{last['order_key']} {last['event_id']}" if last else None)
