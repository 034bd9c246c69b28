"""A production batch as the drill-down shows it (``finance.batches``, ``finance.batch_work_group``, migration
``finance_0005``): the catalogue's batch with its workshop and lapas, its work group by pseudonymous inmate id with
the premi each earned on it, and the journal entries that name it (cursor on the sequence).

The catalogue is read through the workspace's own scoped views, the ledger under its row-level security: a batch of
another lapas is absent, like one that does not exist.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from services.finance.scope import ReadModel

_SAVINGS = "liability:inmate_savings:"
"""The savings accounts' common prefix (``services.ledger.domain.accounts.inmate_savings``)."""


async def batch_detail(reads: ReadModel, batch_id: str, after: int, limit: int) -> dict[str, Any] | None:
    """The batch ``batch_id`` with its work group and up to ``limit`` of its entries after sequence ``after``
    (``next_cursor``: where the next page starts, None on the last); None when it is not in the viewer's scope."""
    found = (
        await reads.conn.execute(
            text(
                "SELECT batch_id, workshop_id, workshop_name, lapas_id, sku, product_name, produced_qty, "
                f"production_date, unit_material_cost_idr, supplier_id FROM {reads.finance('batches')} "
                "WHERE batch_id = :b"
            ),
            {"b": batch_id},
        )
    ).first()
    if found is None:
        return None
    batch = dict(found._mapping)
    entries, after_last = await _entries(reads, batch_id, after, limit)
    return {**batch, "work_group": await _work_group(reads, batch_id), "entries": entries, "next_cursor": after_last}


async def _work_group(reads: ReadModel, batch_id: str) -> list[dict[str, Any]]:
    """Who worked on the batch, by inmate id, with their work share and the premi the visible entries naming the
    batch credited to their savings (net of claw-backs)."""
    lines, entries = reads.ledger("journal_lines"), reads.ledger("journal_entries")
    rows = await reads.conn.execute(
        text(
            "WITH premi AS (SELECT substr(l.account, length(:prefix) + 1) AS inmate_id, "
            "sum(CASE l.side WHEN 'C' THEN l.amount ELSE -l.amount END) AS amount "
            f"FROM {lines} l JOIN {entries} e USING (sequence) "
            "WHERE e.batch_id = :b AND starts_with(l.account, :prefix) GROUP BY 1) "
            "SELECT g.inmate_id, g.work_share, coalesce(p.amount, 0)::bigint AS premi "
            f"FROM {reads.finance('batch_work_group')} g LEFT JOIN premi p USING (inmate_id) "
            "WHERE g.batch_id = :b ORDER BY g.inmate_id"
        ),
        {"b": batch_id, "prefix": _SAVINGS},
    )
    return [{"inmate_id": r.inmate_id, "work_share": r.work_share, "premi": int(r.premi)} for r in rows]


async def _entries(reads: ReadModel, batch_id: str, after: int, limit: int) -> tuple[list[dict[str, Any]], int | None]:
    lines = reads.ledger("journal_lines")
    rows = (
        await reads.conn.execute(
            text(
                "SELECT e.sequence, e.posting_key, e.kind, e.effective_at, e.order_key, e.policy_ref, "
                f"(SELECT coalesce(sum(l.amount), 0) FROM {lines} l WHERE l.sequence = e.sequence "
                "AND l.side = 'D') AS amount "
                f"FROM {reads.ledger('journal_entries')} e WHERE e.batch_id = :b AND e.sequence > :after "
                "ORDER BY e.sequence LIMIT :n"
            ),
            {"b": batch_id, "after": after, "n": limit + 1},
        )
    ).all()
    page = [{**r._mapping, "amount": int(r.amount)} for r in rows[:limit]]
    return page, (page[-1]["sequence"] if len(rows) > limit else None)
