"""The reconciliation page (``/reconciliation``): marketplace receivables booked against settlements received, per
channel and month, with the unmatched items — orders completed but not settled after ``days`` days (or settled
with something left open) and settlements whose completion has not arrived — in the viewer's lapas scope
(:mod:`services.finance.queries.reconciliation` on :data:`services.finance.scope.Reads`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from services.finance.auth import CurrentUser
from services.finance.queries import reconciliation
from services.finance.scope import Reads
from services.finance.templating import page_lang
from services.finance.web.common import ViewerZone, page

router = APIRouter(include_in_schema=False)
MONTH = r"^\d{4}-(0[1-9]|1[0-2])$"
CHANNEL = r"^[a-z0-9_-]{1,40}$"
_TEXTS: dict[str, tuple[str, str]] = {
    "title": ("Rekonsiliasi piutang marketplace", "Marketplace receivables reconciliation"),
    "month": ("Bulan", "Month"),
    "channel": ("Kanal", "Channel"),
    "days": ("Terlambat setelah (hari)", "Late after (days)"),
    "show": ("Tampilkan", "Show"),
    "orders": ("Pesanan", "Orders"),
    "booked": ("Piutang dicatat", "Receivable booked"),
    "settled": ("Penyelesaian diterima", "Settlements received"),
    "open": ("Sisa terbuka", "Still open"),
    "matched": ("Cocok", "Matched"),
    "unmatched": ("Tidak cocok", "Unmatched"),
    "unsettled": ("Selesai, belum dibayar", "Completed, not settled"),
    "difference": ("Dibayar, masih ada selisih", "Settled, difference open"),
    "completed_at": ("Selesai", "Completed"),
    "settled_at": ("Dibayar", "Settled"),
    "orphans": ("Penyelesaian tanpa penyelesaian pesanan", "Settlements without a completion"),
    "gross": ("Bruto", "Gross"),
    "none": ("Tidak ada.", "None."),
}


@router.get("/reconciliation")
async def reconciliation_page(
    request: Request,
    user: CurrentUser,
    reads: Reads,
    zone: ViewerZone,
    month: Annotated[str | None, Query(pattern=MONTH)] = None,
    channel: Annotated[str | None, Query(pattern=CHANNEL)] = None,
    days: Annotated[int, Query(ge=0, le=365)] = 14,
) -> Response:
    """Per channel and month: receivable booked, settled, open; the unmatched orders and parked settlements."""
    period = reconciliation.Period(month or None, channel or None, str(zone), datetime.now(UTC), days)
    context = {
        "rw": {k: v[0 if page_lang(request) == "id" else 1] for k, v in _TEXTS.items()},
        "rows": await reconciliation.summary(reads, period),
        "unmatched": await reconciliation.orders(reads, period),
        "orphans": await reconciliation.settlements_without_completion(reads, period),
        "filters": {"month": month or "", "channel": channel or "", "days": days},
    }
    return await page(request, user, "reconciliation", context)
