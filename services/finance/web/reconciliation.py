"""The reconciliation page (``/reconciliation``): marketplace receivables booked against settlements received, per
channel and month, with the unmatched items — orders completed but not settled after ``days`` days (or settled
with something left open) and settlements whose completion has not arrived — in the viewer's lapas scope
(:mod:`services.finance.queries.reconciliation` on :data:`services.finance.scope.Reads`). Each of its tables
downloads as CSV or XLSX (``?format=csv|xlsx&table=summary|unmatched|orphans``, the page's filters, every row)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response

from services.finance.auth import CurrentUser
from services.finance.queries import reconciliation
from services.finance.scope import Reads
from services.finance.templating import page_lang
from services.finance.web.common import ViewerZone, page
from services.finance.web.downloads import MAX_ROWS, PageFormat, bounded, export_links, table_download
from services.presentation.exports import Column

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
    "state": ("Keadaan", "State"),
    "received_at": ("Diterima", "Received"),
}
Table = Literal["summary", "unmatched", "orphans"]
TABLES: tuple[Table, ...] = ("summary", "unmatched", "orphans")


def columns(table: Table, rw: dict[str, str]) -> tuple[Column, ...]:
    """A table's exported columns, headed in the page's words ``rw``."""
    if table == "summary":
        return (
            Column("channel", rw["channel"]),
            Column("month", rw["month"]),
            Column("orders", rw["orders"], "int"),
            *(Column(k, rw[k], "rupiah") for k in ("booked", "settled", "open")),
            *(Column(k, rw[k], "int") for k in ("matched", "unmatched")),
        )
    if table == "unmatched":
        return (
            Column("order_key", "order"),
            Column("channel", rw["channel"]),
            Column("month", rw["month"]),
            Column("completed_at", rw["completed_at"], "datetime"),
            Column("settled_at", rw["settled_at"], "datetime"),
            *(Column(k, rw[k], "rupiah") for k in ("booked", "settled", "open")),
            Column("state", rw["state"]),
        )
    return (
        Column("order_key", "order"),
        Column("channel", rw["channel"]),
        Column("received_at", rw["received_at"], "datetime"),
        Column("settled_at", rw["settled_at"], "datetime"),
        Column("gross", rw["gross"], "rupiah"),
    )


@router.get("/reconciliation", response_model=None)
async def reconciliation_page(
    request: Request,
    user: CurrentUser,
    reads: Reads,
    zone: ViewerZone,
    month: Annotated[str | None, Query(pattern=MONTH)] = None,
    channel: Annotated[str | None, Query(pattern=CHANNEL)] = None,
    days: Annotated[int, Query(ge=0, le=365)] = 14,
    format: PageFormat = "html",
    table: Table = "summary",
) -> Response:
    """Per channel and month: receivable booked, settled, open; the unmatched orders and parked settlements (as
    CSV or XLSX: the ``table`` chosen, every row of the filters)."""
    period = reconciliation.Period(month or None, channel or None, str(zone), datetime.now(UTC), days)
    rw = {k: v[0 if page_lang(request) == "id" else 1] for k, v in _TEXTS.items()}
    if format != "html":
        rows = await _table(reads, period, table, MAX_ROWS + 1)
        stem = f"reconciliation_{table}_{month or 'all'}_{channel or 'all'}"
        return await table_download(request, user, columns(table, rw), bounded(rows), fmt=format, stem=stem, zone=zone)
    context = {
        "rw": rw,
        "rows": await reconciliation.summary(reads, period),
        "unmatched": await reconciliation.orders(reads, period),
        "orphans": await reconciliation.settlements_without_completion(reads, period),
        "filters": {"month": month or "", "channel": channel or "", "days": days},
        "exports": {t: export_links(request, t) for t in TABLES},
    }
    return await page(request, user, "reconciliation", context)


async def _table(reads: Reads, period: reconciliation.Period, table: Table, limit: int) -> list[dict[str, Any]]:
    if table == "summary":
        return await reconciliation.summary(reads, period)
    if table == "unmatched":
        return await reconciliation.orders(reads, period, limit=limit)
    return await reconciliation.settlements_without_completion(reads, period, limit)
