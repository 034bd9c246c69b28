"""The PPh 22 withholding page (``/withholding``): every settlement that withheld PPh 22 in the viewer's lapas,
newest first, with its slip reference, what 0.5% of its price excluding PPN comes to and whether it is flagged for
review (off by more than the lapas' tolerance; the row is marked and links to its order). Filters: flagged only,
lapas, settlement days in the viewer's zone; ``?format=csv|xlsx`` downloads every slip the filters select, audited
(:mod:`services.finance.web.downloads`). Read through :mod:`services.finance.queries.withholding` on the scoped
read model, so the database's lapas policies decide what it shows.

:func:`tax_overview` is what the dashboard shows of the same: the flagged count and, per lapas, the tax setting in
force (PKP or not, the PPh 22 treatment, the version)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, Response

from services.finance.api.params import text_query
from services.finance.auth import CurrentUser
from services.finance.queries import withholding
from services.finance.queries.lapas import visible_lapas
from services.finance.scope import ReadModel, Reads
from services.finance.templating import page_lang
from services.finance.web.common import ViewerZone, day_start, page, parse_day
from services.finance.web.downloads import PageFormat, every_row, export_links, table_download
from services.presentation.exports import Column

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 100
_TEXTS: dict[str, tuple[str, str]] = {
    "title": ("Pemotongan PPh 22", "PPh 22 withholding"),
    "flagged_only": ("Hanya yang perlu diperiksa", "Flagged only"),
    "review": ("PERLU DIPERIKSA", "TO REVIEW"),
    "flagged_count": ("PPh 22 perlu diperiksa", "PPh 22 to review"),
    "settings": ("Pengaturan pajak yang berlaku", "Tax settings in force"),
    "pkp": ("PKP", "PKP"),
    "pph22": ("Perlakuan PPh 22", "PPh 22 treatment"),
    "version": ("Versi", "Version"),
    "effective_from": ("Berlaku sejak", "In force since"),
    "yes": ("Ya", "Yes"),
    "no": ("Tidak", "No"),
    "unset": ("Belum diatur (tanpa PPN, PPh 22 sebagai pajak dibayar dimuka)", "Not set (no PPN, PPh 22 prepaid)"),
    "creditable": ("Dikreditkan", "Creditable"),
    "expense": ("Dibebankan", "Borne as a cost"),
    "exempt": ("Diminta kembali (SKB)", "Claimed back (exemption)"),
    "note": (
        "Baris bertanda: PPh 22 yang dipotong berbeda dari 0,5% harga tanpa PPN lebih dari toleransi lapas — periksa "
        "faktur marketplace. Dana tetap dibukukan sesuai laporan.",
        "Marked rows: the PPh 22 withheld differs from 0.5% of the price excluding PPN by more than the lapas' "
        "tolerance — check the marketplace's invoice. The money is posted as reported either way.",
    ),
}
COLUMNS = (
    Column("settled_at", "settled_at", "datetime"),
    Column("lapas_id", "lapas"),
    Column("order_key", "order"),
    Column("slip_ref", "slip_ref"),
    Column("withheld", "withheld", "rupiah"),
    Column("expected", "expected", "rupiah"),
    Column("difference", "difference", "rupiah"),
    Column("tolerance", "tolerance", "rupiah"),
    Column("flagged", "flagged", "int"),
    Column("tax_ref", "tax_ref"),
    Column("posting_key", "posting_key"),
)
"""The exported columns (``flagged``: 1 to review, 0 not); headers from the presentation's catalogue."""


def words(request: Request) -> dict[str, str]:
    """This page's words in the request's language."""
    index = 0 if page_lang(request) == "id" else 1
    return {k: v[index] for k, v in _TEXTS.items()}


def _exported(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r | {"flagged": int(r["flagged"])} for r in rows]


@router.get("/withholding", response_model=None)
async def withholding_page(
    request: Request,
    user: CurrentUser,
    reads: Reads,
    zone: ViewerZone,
    flagged: bool = False,
    lapas: Annotated[str | None, text_query("lapas", max_length=100)] = None,
    start: Annotated[str | None, Query(alias="from", max_length=10)] = None,
    end: Annotated[str | None, Query(alias="to", max_length=10)] = None,
    cursor: Annotated[str | None, text_query("cursor")] = None,
    format: PageFormat = "html",
) -> Response:
    """The slips of the viewer's lapas, newest first (``flagged``: only those to review; ``from``/``to``: days in
    the viewer's zone); as CSV or XLSX every slip the filters select."""
    first, last = parse_day(start, "from"), parse_day(end, "to")
    if first is not None and last is not None and last < first:
        raise HTTPException(status_code=422, detail="to: the period ends before it starts")
    where = withholding.SlipFilter(
        lapas or None,
        True if flagged else None,
        None if first is None else day_start(first, zone),
        None if last is None else day_start(last + timedelta(days=1), zone),
    )
    rw = words(request)
    if format != "html":

        async def fetch(after: str | None, n: int) -> tuple[list[dict[str, Any]], str | None]:
            return await withholding.slips_page(reads, where, withholding.parse_cursor(after), n)

        rows = _exported(await every_row(fetch))
        stem = f"pph22_withholding_{'flagged' if flagged else 'all'}_{start or 'start'}_{end or 'now'}"
        return await table_download(request, user, COLUMNS, rows, fmt=format, stem=stem, zone=zone)
    try:
        after = withholding.parse_cursor(cursor or None)
    except withholding.BadCursor:
        raise HTTPException(status_code=422, detail="cursor: not a cursor this page gave") from None
    slips, next_cursor = await withholding.slips_page(reads, where, after, PAGE_SIZE)
    context = {
        "rw": rw,
        "slips": slips,
        "next_url": None if next_cursor is None else str(request.url.include_query_params(cursor=next_cursor)),
        "filters": {"flagged": flagged, "lapas": lapas or "", "from": start or "", "to": end or ""},
        "exports": export_links(request),
    }
    return await page(request, user, "withholding", context)


async def tax_overview(reads: ReadModel) -> dict[str, Any]:
    """The dashboard's tax figures: how many slips are flagged, and per lapas of the viewer's scope (its own lapas,
    the catalogue's and those with a setting) the setting in force now."""
    lapas_ids = {x.lapas_id for x in await visible_lapas(reads)}
    if reads.viewer.lapas_scope is not None:
        lapas_ids.add(reads.viewer.lapas_scope)
    settings = await withholding.stored_settings(reads)
    return {
        "flagged": await withholding.flagged_count(reads),
        "settings": withholding.settings_in_force(settings, lapas_ids, datetime.now(UTC)),
    }
