"""PDF documents (WeasyPrint, from an HTML string): the inmate savings statement and the monthly lapas report.

Every page carries a stamp: the root hash of the chain segment heads the numbers were read under (what an anchor taken
at that moment commits to, ``ledger.chain_anchors.heads_root``; ``karya ledger verify`` prints the current one), when
and by whom the document was made. Inmates appear only by pseudonym.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from html import escape
from typing import Any
from zoneinfo import ZoneInfo

from weasyprint import HTML

from services.presentation.messages import DEFAULT_LANG, Lang, message
from services.presentation.money import rupiah
from services.presentation.zones import format_datetime, format_month

_CSS = """
@page { size: A4; margin: 18mm 14mm 22mm 14mm;
        @bottom-left { content: element(stamp); } @bottom-right { content: counter(page) "/" counter(pages); } }
body { font-family: "DejaVu Sans", sans-serif; font-size: 9pt; }
h1 { font-size: 14pt; margin: 0 0 4mm 0; }
table { width: 100%; border-collapse: collapse; margin-top: 4mm; }
th, td { border-bottom: 0.5pt solid #999; padding: 1.2mm 1.5mm; text-align: left; }
td.num, th.num { text-align: right; white-space: nowrap; }
tr.total td { font-weight: bold; border-top: 1pt solid #000; }
.stamp { position: running(stamp); font-size: 7pt; color: #444; word-break: break-all; }
"""


@dataclass(frozen=True)
class Stamp:
    """Who made a document, when, and the root hash of the chain segment heads its numbers were read under (every
    segment's head, :func:`services.ledger.domain.hashchain.heads_root`)."""

    user: str
    made_at: datetime
    head_hash: str

    def text(self, zone: ZoneInfo, lang: Lang) -> str:
        """The stamp line in ``lang``, its time in ``zone``."""
        when = format_datetime(self.made_at, zone, lang, seconds=True)
        return message("stamp", lang, user=self.user, time=when, head_hash=self.head_hash)


@dataclass(frozen=True)
class LapasMonthReport:
    """One lapas' month: the named amounts (message keys such as ``sales``, ``pnbp``) in integer rupiah."""

    lapas_id: str
    lapas_name: str
    month: date
    amounts: Sequence[tuple[str, int]]


def _document(title: str, body: str, stamp: Stamp, zone: ZoneInfo, lang: Lang) -> bytes:
    html = (
        f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f"<style>{_CSS}</style></head><body>"
        f'<div class="stamp">{escape(stamp.text(zone, lang))}</div><h1>{escape(title)}</h1>{body}</body></html>'
    )
    pdf = HTML(string=html).write_pdf()
    assert pdf is not None  # write_pdf without a target returns the bytes
    return bytes(pdf)


def _cell(value: str, numeric: bool = False) -> str:
    return f'<td class="num">{escape(value)}</td>' if numeric else f"<td>{escape(value)}</td>"


def inmate_statement_pdf(
    statement: Mapping[str, Any], stamp: Stamp, zone: ZoneInfo, lang: Lang = DEFAULT_LANG
) -> bytes:
    """The savings statement of one inmate as :func:`services.ledger.reports.inmate_savings` returns it: every
    posting (time in the lapas' zone, kind, order, batch, policy, amount) and the balances."""
    heads = ("sequence", "time", "kind", "order", "batch", "policy", "amount")
    rows = "".join(
        "<tr>"
        + _cell(str(p["sequence"]))
        + _cell(format_datetime(p["effective_at"], zone, lang))
        + _cell(str(p["kind"]))
        + _cell(p["order_key"] or "")
        + _cell(p["batch_id"] or "")
        + _cell(p["policy_ref"] or "")
        + _cell(rupiah(p["amount"]), numeric=True)
        + "</tr>"
        for p in statement["postings"]
    )
    head = "".join(f'<th class="{"num" if h == "amount" else ""}">{escape(message(h, lang))}</th>' for h in heads)
    body = (
        f"<p>{escape(message('inmate', lang))}: <b>{escape(statement['inmate_id'])}</b></p>"
        f"<table><thead><tr>{head}</tr></thead><tbody>{rows}"
        f'<tr class="total"><td colspan="6">{escape(message("savings_balance", lang))}</td>'
        f"{_cell(rupiah(statement['savings_balance']), numeric=True)}</tr>"
        f'<tr><td colspan="6">{escape(message("receivable_balance", lang))}</td>'
        f"{_cell(rupiah(statement['receivable_balance']), numeric=True)}</tr></tbody></table>"
    )
    title = f"{message('inmate_statement', lang)} — {statement['inmate_id']}"
    return _document(title, body, stamp, zone, lang)


def lapas_report_pdf(report: LapasMonthReport, stamp: Stamp, zone: ZoneInfo, lang: Lang = DEFAULT_LANG) -> bytes:
    """The monthly report of one lapas: one row per named amount (sales, fees, tax withheld, PNBP, premi,
    suppliers, capital, as the caller gives them), in the order given."""
    rows = "".join(f"<tr>{_cell(message(k, lang))}{_cell(rupiah(v), numeric=True)}</tr>" for k, v in report.amounts)
    body = (
        f"<p>{escape(report.lapas_name)} ({escape(report.lapas_id)}) · {escape(message('period', lang))}: "
        f"{escape(format_month(report.month, lang))}</p>"
        f'<table><thead><tr><th></th><th class="num">{escape(message("amount", lang))}</th></tr></thead>'
        f"<tbody>{rows}</tbody></table>"
    )
    title = f"{message('lapas_report', lang)} — {report.lapas_name}, {format_month(report.month, lang)}"
    return _document(title, body, stamp, zone, lang)
