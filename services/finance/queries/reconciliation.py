"""Reconciliation of marketplace receivables against settlements, per channel and month, with the unmatched items.

What completion books and settlement clears is one account per lapas and channel,
``asset:marketplace_receivable:<lapas>:<channel>`` (the channel is the code's last segment; legacy global codes
``asset:marketplace_receivable:<channel>`` read the same)
(:mod:`services.ledger.domain.postings`: completion debits the gross, settlement credits what completion
recognised; a short payment goes to suspense, not here). Per order of the viewer's scope (the database's lapas
policies decide which orders, entries and lines are visible):

- ``booked``: the receivable's debits of its ``sale_completed`` entries; ``settled``: its credits of its
  ``settlement`` entries; ``open``: debits minus credits of every entry (refunds and corrections included);
- state ``matched`` (settled, nothing open), ``difference`` (settled, something still open), ``unsettled``
  (completed ``overdue_days`` or more before ``now`` without a settlement: an unmatched item), ``awaiting``
  (completed more recently: not yet late).

A settlement without a completion is parked by the ledger (``ledger.pending_events`` waiting for the completion);
it is an unmatched item of its channel, in the month the marketplace says it settled. Its lapas is not known
before the completion, so the policies show it to every-lapas viewers only. Months are those of the completion
(of the settlement for a parked one) in the viewer's time zone. All amounts are integer rupiah; one statement per
question, no per-order round trips.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text

from services.finance.scope import ReadModel

RECEIVABLE = "asset:marketplace_receivable:"
SETTLEMENT_REPORTED = "karya.marketplace.settlement_reported.v1"


@dataclass(frozen=True, slots=True)
class Period:
    """A reconciliation's question: the month (``YYYY-MM``, None for every month), the channel (None: every
    channel), the zone months are counted in, ``now`` and after how many days an unsettled completion is late."""

    month: str | None
    channel: str | None
    zone: str
    now: datetime
    overdue_days: int = 14


_PER_ORDER = """
WITH per_order AS (
  SELECT e.order_key, regexp_replace(l.account, '^.*:', '') AS channel,
         coalesce(sum(l.amount) FILTER (WHERE l.side = 'D' AND e.kind = 'sale_completed'), 0)::bigint AS booked,
         coalesce(sum(l.amount) FILTER (WHERE l.side = 'C' AND e.kind = 'settlement'), 0)::bigint AS settled,
         sum(CASE l.side WHEN 'D' THEN l.amount ELSE -l.amount END)::bigint AS open,
         min(e.effective_at) FILTER (WHERE e.kind = 'sale_completed') AS completed_at,
         max(e.effective_at) FILTER (WHERE e.kind = 'settlement') AS settled_at
    FROM {lines} l JOIN {entries} e USING (sequence)
   WHERE starts_with(l.account, :prefix) AND e.order_key IS NOT NULL
   GROUP BY e.order_key, l.account
), stated AS (
  SELECT p.*, to_char(p.completed_at AT TIME ZONE :zone, 'YYYY-MM') AS month,
         CASE WHEN p.settled_at IS NOT NULL AND p.open = 0 THEN 'matched'
              WHEN p.settled_at IS NOT NULL THEN 'difference'
              WHEN p.completed_at <= :late_before THEN 'unsettled'
              ELSE 'awaiting' END AS state
    FROM per_order p WHERE p.completed_at IS NOT NULL
)
SELECT * FROM stated
 WHERE {picked}"""

_SUMMARY = f"""
SELECT channel, month, count(*) AS orders, sum(booked)::bigint AS booked, sum(settled)::bigint AS settled,
       sum(open)::bigint AS open, count(*) FILTER (WHERE state = 'matched') AS matched,
       count(*) FILTER (WHERE state IN ('unsettled', 'difference')) AS unmatched
  FROM ({_PER_ORDER}) o GROUP BY channel, month ORDER BY month DESC, channel"""

_ITEMS = f"""
SELECT order_key, channel, month, booked, settled, open, completed_at, settled_at, state
  FROM ({_PER_ORDER}) o {{unmatched}}
 ORDER BY completed_at, order_key LIMIT :n"""

_SETTLED_ONLY = """
SELECT * FROM (
  SELECT p.order_key, split_part(p.order_key, ':', 1) AS channel, p.received_at,
         (p.envelope -> 'data' ->> 'gross_amount')::bigint AS gross,
         coalesce((p.envelope -> 'data' ->> 'settled_at')::timestamptz, p.received_at) AS settled_at
    FROM {pending} p
   WHERE p.type = :type AND p.waiting_for = 'completion') s
 WHERE {picked}
 ORDER BY s.settled_at, s.order_key LIMIT :n"""


def _picked(period: Period, month: str) -> str:
    """Only the filters the period gives (an ``:x IS NULL OR`` per optional filter keeps the planner from using
    them, as in :meth:`services.finance.queries.balances.Moment.condition`); ``month`` is the month's expression."""
    given = {f"{month} = :month": period.month, "channel = :channel": period.channel}
    return " AND ".join(["true", *(sql for sql, value in given.items() if value is not None)])


def _params(reads: ReadModel, period: Period, limit: int) -> tuple[dict[str, str], dict[str, Any]]:
    tables = {
        "lines": reads.ledger("journal_lines"),
        "entries": reads.ledger("journal_entries"),
        "picked": _picked(period, "month"),
    }
    params = {
        "prefix": RECEIVABLE,
        "zone": period.zone,
        "late_before": period.now - timedelta(days=period.overdue_days),
        "month": period.month,
        "channel": period.channel,
        "n": limit,
    }
    return tables, params


async def summary(reads: ReadModel, period: Period) -> list[dict[str, Any]]:
    """Per channel and month: orders, receivable booked, settled, still open, matched and unmatched counts."""
    tables, params = _params(reads, period, 0)
    rows = await reads.conn.execute(text(_SUMMARY.format(**tables)), params)
    return [
        {
            "channel": r.channel,
            "month": r.month,
            "orders": int(r.orders),
            "booked": int(r.booked),
            "settled": int(r.settled),
            "open": int(r.open),
            "matched": int(r.matched),
            "unmatched": int(r.unmatched),
        }
        for r in rows
    ]


async def orders(reads: ReadModel, period: Period, *, every: bool = False, limit: int = 500) -> list[dict[str, Any]]:
    """The unmatched orders (``unsettled`` and ``difference``), oldest completion first; ``every``: all orders of
    the period with their state (``matched``, ``awaiting`` too)."""
    tables, params = _params(reads, period, limit)
    unmatched = "" if every else "WHERE state IN ('unsettled', 'difference')"
    rows = await reads.conn.execute(text(_ITEMS.format(**tables, unmatched=unmatched)), params)
    return [dict(r._mapping) for r in rows]


async def settlements_without_completion(reads: ReadModel, period: Period, limit: int = 500) -> list[dict[str, Any]]:
    """Settlements the ledger parked because their order's completion has not arrived, oldest first."""
    _, params = _params(reads, period, limit)
    picked = _picked(period, "to_char(s.settled_at AT TIME ZONE :zone, 'YYYY-MM')")
    sql = _SETTLED_ONLY.format(pending=reads.ledger("pending_events"), picked=picked)
    rows = await reads.conn.execute(text(sql), params | {"type": SETTLEMENT_REPORTED})
    return [dict(r._mapping) for r in rows]
