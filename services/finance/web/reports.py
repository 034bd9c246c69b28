"""Report pages and documents: the monthly lapas report (``/reports/lapas/{lapas}/{YYYY-MM}``, as a page or a
CSV, XLSX or PDF download) and the inmate savings statement as a PDF (``/inmates/{inmate_id}/statement.pdf``).

Both read in the viewer's scope (another lapas' report or inmate is the 404 page) and in one snapshot of the
database (:func:`services.finance.scope.scoped_read`): the figures are those of the chain heads read in the same
request, whatever is posted meanwhile. Every PDF is stamped with the user, the time and the root hash of those heads
(every segment's head, :mod:`services.finance.queries.chain`); every download is written to the audit log.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Path, Request, Response

from services.finance.api.accounts import INMATE_ID
from services.finance.auth import CurrentUser
from services.finance.presentation.pdf import LapasMonthReport, Stamp, inmate_statement_pdf, lapas_report_pdf
from services.finance.queries import balances, chain, reports
from services.finance.queries.balances import Moment
from services.finance.queries.lapas import zone_of_lapas
from services.finance.scope import ReadModel, Reads
from services.finance.templating import page_lang
from services.finance.web.common import day_of, day_start, page, zone_of
from services.finance.web.downloads import audited_download, table_download
from services.ledger.domain import accounts
from services.presentation.exports import Column
from services.presentation.messages import message
from services.presentation.zones import format_month

router = APIRouter(include_in_schema=False)
LAPAS = r"^[a-z0-9][a-z0-9_-]{0,63}$"
MONTH = r"^[0-9]{4}-(0[1-9]|1[0-2])$"
REPORT_COLUMNS = (Column("item", "report_item"), Column("key", "key"), Column("amount", "amount", "rupiah"))


def month_bounds(month: str, zone: ZoneInfo) -> tuple[date, datetime, datetime]:
    """The first day of ``YYYY-MM`` and the month's bounds ``[start, end)`` in ``zone`` (422 naming ``month``
    outside :mod:`services.finance.time_range`)."""
    first = day_of(f"{month}-01", "month")
    return first, day_start(first, zone), day_start(_next_month(first), zone)


def _next_month(first: date) -> date:
    return date(first.year + first.month // 12, first.month % 12 + 1, 1)


def _previous_month(first: date) -> date:
    return date(first.year - (first.month == 1), (first.month - 2) % 12 + 1, 1)


@dataclass(frozen=True, slots=True)
class MonthReport:
    """One lapas' month as its page, its downloads and the read API show it: the figures (message key, rupiah)
    read in the snapshot of ``head`` (the chains' heads), the month counted in the lapas' own ``zone`` as
    ``[start, end)``."""

    lapas: str
    month: str
    first: date
    zone: ZoneInfo
    start: datetime
    end: datetime
    head: chain.ChainHead
    amounts: list[tuple[str, int]]


async def month_report(reads: ReadModel, lapas: str, month: str) -> MonthReport | None:
    """The report of ``lapas`` for ``month`` (``YYYY-MM``; 422 outside :mod:`services.finance.time_range`); None
    when the lapas is not in the viewer's scope."""
    if not await reports.lapas_visible(reads, lapas):
        return None
    zone = await zone_of_lapas(reads, lapas)  # finance.lapas' province
    first, start, end = month_bounds(month, zone)
    head = await chain.chain_head(reads)
    amounts = await reports.lapas_month(reads, lapas, start, end)
    return MonthReport(lapas, month, first, zone, start, end, head, amounts)


@router.get("/reports/lapas/{lapas}/{month}", response_model=None)
async def lapas_report(
    request: Request,
    user: CurrentUser,
    reads: Reads,
    lapas: Annotated[str, Path(pattern=LAPAS)],
    month: Annotated[str, Path(pattern=MONTH)],
    format: Literal["html", "csv", "xlsx", "pdf"] = "html",
) -> Response:
    """One lapas' month (in its zone): sales, output PPN, marketplace fees, input PPN, PPh 22 withheld per
    treatment, PNBP, premi, suppliers, capital."""
    report, lang = await month_report(reads, lapas, month), page_lang(request)
    if report is None:
        return await page(request, user, "missing", {"what": "report"}, status_code=404)
    first, zone, head, amounts = report.first, report.zone, report.head, report.amounts
    if format == "html":
        context = {"lapas": lapas, "month": month, "title_month": format_month(first, lang), "amounts": amounts}
        around = {"previous": f"{_previous_month(first):%Y-%m}", "next": f"{_next_month(first):%Y-%m}"}
        return await page(request, user, "report_lapas", context | around | {"head": head, "report_zone": zone})
    stem = f"lapas_report_{lapas}_{month}"
    if format == "pdf":
        stamp = Stamp(user.name, datetime.now(UTC), head.hash)
        body = lapas_report_pdf(LapasMonthReport(lapas, lapas, first, amounts), stamp, zone, lang)
        return await audited_download(request, user, body, stem, "pdf")
    rows = [{"item": message(key, lang), "key": key, "amount": amount} for key, amount in amounts]
    title = f"{lapas} {month}"
    return await table_download(request, user, REPORT_COLUMNS, rows, fmt=format, stem=stem, zone=zone, title=title)


async def _statement_at_head(reads: ReadModel, inmate_id: str) -> tuple[dict[str, object], chain.ChainHead] | None:
    """The statement in :func:`services.finance.presentation.pdf.inmate_statement_pdf`'s shape and the chains' head
    of the same snapshot; None when the inmate is not in scope."""
    receivable = accounts.inmate_receivable(inmate_id)
    head = await chain.chain_head(reads)
    found = await balances.inmate_statement(reads, inmate_id, None, None, Moment())
    if found is None:
        return None
    owed = await balances.account_totals(reads, Moment(), receivable)
    postings = [p | {"amount": p["credit"] - p["debit"]} for p in found["postings"]]
    statement = {
        "inmate_id": inmate_id,
        "postings": postings,
        "savings_balance": found["closing_balance"],
        "receivable_balance": sum(r["balance"] for r in owed if r["account"] == receivable),
    }
    return statement, head


@router.get("/inmates/{inmate_id}/statement.pdf", response_model=None)
async def inmate_statement_document(
    request: Request, user: CurrentUser, reads: Reads, inmate_id: Annotated[str, Path(pattern=INMATE_ID)]
) -> Response:
    """The inmate's savings statement as a PDF stamped with the user, the time and the root hash of the chains'
    heads."""
    found = await _statement_at_head(reads, inmate_id)
    if found is None:
        return await page(request, user, "missing", {"what": "inmate"}, status_code=404)
    statement, head = found
    zone = zone_of(request, user)
    stamp = Stamp(user.name, datetime.now(UTC), head.hash)
    body = inmate_statement_pdf(statement, stamp, zone, page_lang(request))
    stem = f"inmate_statement_{inmate_id}"
    return await audited_download(request, user, body, stem, "pdf")
