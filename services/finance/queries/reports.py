"""The monthly report of one lapas: what its orders' entries of the month moved, per report line.

A report line is a set of accounts (by code prefix) read on its normal side: sales (``revenue:sales:<lapas>``, net
of output PPN), the output PPN in their price, marketplace fees (net of their input PPN), that input PPN, PPh 22
withheld per treatment (creditable, borne as a cost, to claim back), PNBP, premi (inmates' savings), suppliers
(material cost) and production capital. The entries counted are those of the lapas' orders
(``ledger.order_facts``) effective in the month's bounds, read in the request's one snapshot
(:func:`services.finance.scope.scoped_read`), so the figures are those of the chain heads read in it. The viewer's
lapas policies apply: another lapas' orders are not visible, so its
report is not found.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text

from services.finance.scope import ReadModel


@dataclass(frozen=True, slots=True)
class ReportLine:
    """One figure of the report: its message key, the account code prefix it sums and that account's normal side
    (``'C'``: credits less debits; ``'D'``: debits less credits). ``{lapas}`` in the prefix is the report's lapas."""

    key: str
    prefix: str
    normal_side: str


REPORT_LINES: tuple[ReportLine, ...] = (
    ReportLine("sales", "revenue:sales:{lapas}", "C"),
    ReportLine("ppn_output", "liability:ppn_output:{lapas}", "C"),
    ReportLine("fees", "expense:marketplace_fee:", "D"),
    ReportLine("ppn_input", "asset:ppn_input:{lapas}", "D"),
    ReportLine("tax_withheld", "asset:pph22_prepaid", "D"),
    ReportLine("pph22_expense", "expense:pph22_withheld:{lapas}", "D"),
    ReportLine("pph22_reclaimable", "asset:pph22_reclaimable:{lapas}", "D"),
    ReportLine("pnbp", "liability:pnbp_payable:{lapas}", "C"),
    ReportLine("premi", "liability:inmate_savings:", "C"),
    ReportLine("suppliers", "liability:supplier_payable:", "C"),
    ReportLine("capital", "equity:production_capital:{lapas}", "C"),
)
"""The report's figures, in the order shown."""


async def lapas_visible(reads: ReadModel, lapas: str) -> bool:
    """Whether ``lapas`` has an order or a split policy in the viewer's scope (else its report is a 404)."""
    sql = (
        f"SELECT EXISTS (SELECT 1 FROM {reads.ledger('order_facts')} WHERE lapas_id = :l) "
        f"OR EXISTS (SELECT 1 FROM {reads.ledger('split_policies')} WHERE lapas_id = :l)"
    )
    return bool((await reads.conn.execute(text(sql), {"l": lapas})).scalar_one())


async def lapas_month(reads: ReadModel, lapas: str, start: datetime, end: datetime) -> list[tuple[str, int]]:
    """Per :data:`REPORT_LINES` (in order) the signed total of the lines of ``lapas``' orders' entries effective in
    ``[start, end)``; a line with no movement is 0."""
    keys = [r.key for r in REPORT_LINES]
    prefixes = [r.prefix.format(lapas=lapas) for r in REPORT_LINES]
    sides = [r.normal_side for r in REPORT_LINES]
    rows = await reads.conn.execute(
        text(
            "SELECT k.key, sum(CASE WHEN l.side = k.side THEN l.amount ELSE -l.amount END)::bigint AS total "
            f"FROM {reads.ledger('journal_entries')} e "
            f"JOIN {reads.ledger('order_facts')} f ON f.order_key = e.order_key "
            f"JOIN {reads.ledger('journal_lines')} l ON l.sequence = e.sequence "
            "JOIN unnest(CAST(:keys AS text[]), CAST(:prefixes AS text[]), CAST(:sides AS text[])) "
            "AS k(key, prefix, side) ON starts_with(l.account, k.prefix) "
            "WHERE f.lapas_id = :lapas AND e.effective_at >= :start AND e.effective_at < :end GROUP BY k.key"
        ),
        {"keys": keys, "prefixes": prefixes, "sides": sides, "lapas": lapas, "start": start, "end": end},
    )
    totals = {str(r.key): int(r.total) for r in rows}
    return [(key, totals.get(key, 0)) for key in keys]
