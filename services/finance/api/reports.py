"""``/api/v1/reports/lapas/{lapas}/{month}``: the monthly report of one lapas — the figures its page, CSV, XLSX and
PDF show (:func:`services.finance.web.reports.month_report`), with the chain head they hold at."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path

from services.finance.api.models import LapasReport
from services.finance.api.params import NOT_FOUND, not_found
from services.finance.api.reconciliation import accepted_month
from services.finance.scope import Reads
from services.finance.web.reports import LAPAS, MONTH, month_report

router = APIRouter(prefix="/api/v1/reports", tags=["reports"])


@router.get("/lapas/{lapas}/{month}", response_model=LapasReport, responses=NOT_FOUND)
async def lapas_report(
    reads: Reads,
    lapas: Annotated[str, Path(pattern=LAPAS, description="Lapas id.")],
    month: Annotated[str, Path(pattern=MONTH, description="YYYY-MM, in the lapas' own zone.")],
) -> dict[str, Any]:
    """Sales (net of output PPN), output PPN, marketplace fees (net of input PPN), input PPN, PPh 22 withheld per
    treatment, PNBP, premi, suppliers and production capital of the lapas' orders' entries effective in the month
    (in the lapas' zone), up to the chain head read first. 404 when the lapas is not in the viewer's scope; 422 for a
    month outside the years the ledger holds."""
    report = await month_report(reads, lapas, accepted_month(month, "path"))
    if report is None:
        not_found("report")
    return {
        "lapas_id": report.lapas,
        "month": report.month,
        "zone": report.zone.key,
        "start": report.start,
        "end": report.end,
        "head": {"sequence": report.head.sequence, "hash": report.head.hash},
        "figures": [{"key": key, "amount": amount} for key, amount in report.amounts],
    }
