"""What every page shares: the viewer's time zone, the page words the presentation's catalogue does not hold (in
the language :func:`services.finance.templating.page_lang` chooses), day bounds in that zone, and :func:`page`."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import Depends, HTTPException, Request, Response

from services.finance.auth import User
from services.finance.queries.lapas import viewer_zone
from services.finance.scope import Reads
from services.finance.templating import page_lang, render
from services.finance.time_range import accepted_day
from services.presentation.messages import LANGS, Lang
from services.presentation.zones import WIB, UnknownZone, lapas_zone, zone_label

_TEXTS: dict[str, tuple[str, str]] = {
    "dashboard": ("Dasbor", "Dashboard"),
    "trial_balance": ("Neraca saldo", "Trial balance"),
    "journal": ("Jurnal", "Journal"),
    "entry": ("Entri jurnal", "Journal entry"),
    "register": ("Buku besar akun", "Account register"),
    "statement": ("Rekening tabungan WBP", "Inmate savings statement"),
    "order": ("Pesanan", "Order"),
    "sales_today": ("Penjualan hari ini", "Sales today"),
    "sales_month": ("Penjualan bulan ini", "Sales this month"),
    "pnbp": ("PNBP terutang", "PNBP payable"),
    "premi": ("Premi (tabungan WBP)", "Premi (inmate savings)"),
    "suppliers": ("Utang pemasok", "Supplier payables"),
    "unallocated": ("Belum dialokasikan", "Unallocated"),
    "suspense": ("Suspense", "Suspense"),
    "parked": ("Peristiwa tertunda", "Parked events"),
    "as_of": ("Per tanggal", "As of"),
    "show": ("Tampilkan", "Show"),
    "download": ("Unduh", "Download"),
    "next": ("Berikutnya", "Next"),
    "lines": ("Baris", "Lines"),
    "chain": ("Rantai hash", "Hash chain"),
    "causes": ("Penyebab", "Causes"),
    "deliveries": ("Webhook (disamarkan)", "Webhooks (redacted)"),
    "source_event": ("Peristiwa sumber", "Source event"),
    "opening": ("Saldo awal", "Opening balance"),
    "closing": ("Saldo akhir", "Closing balance"),
    "from": ("Dari", "From"),
    "to": ("Sampai", "To"),
    "memo": ("Keterangan", "Memo"),
    "times_in": ("Waktu dalam", "Times in"),
    "chain_missing": (
        "Belum ada verifikasi rantai yang tercatat.",
        "No chain verification recorded yet.",
    ),
}
"""Each page word in Bahasa Indonesia and English."""
WORDS: dict[Lang, dict[str, str]] = {lang: {k: v[i] for k, v in _TEXTS.items()} for i, lang in enumerate(LANGS)}


def zone_for(user: User) -> ZoneInfo:
    """The zone without a database read: WIB (no province is known here). A page whose route does not take
    :data:`ViewerZone` and does not resolve it (the payouts page) falls back to it; the others show the lapas' own
    zone."""
    if user.lapas_scope is None:
        return ZoneInfo(WIB)
    try:
        return lapas_zone(user.lapas_scope, None)
    except UnknownZone:
        return ZoneInfo(WIB)


async def resolve_zone(request: Request, reads: Reads) -> ZoneInfo:
    """The viewer's lapas' own zone from the catalogue's province (``finance.lapas``), kept on the request for
    :func:`page` and :func:`zone_of`."""
    zone = await viewer_zone(reads)
    request.state.zone = zone
    return zone


ViewerZone = Annotated[ZoneInfo, Depends(resolve_zone)]
"""A page's zone: its viewer's lapas' own (kerobokan in Bali: WITA), WIB for every-lapas viewers."""


def zone_of(request: Request, user: User) -> ZoneInfo:
    """The zone :data:`ViewerZone` found for this request, else :func:`zone_for`'s."""
    zone = getattr(request.state, "zone", None)
    return zone if isinstance(zone, ZoneInfo) else zone_for(user)


def day_start(day: date, zone: ZoneInfo) -> datetime:
    """Midnight starting ``day`` in ``zone``."""
    return datetime.combine(day, time(), tzinfo=zone)


def end_of_day(day: date, zone: ZoneInfo) -> datetime:
    """The last microsecond of ``day`` in ``zone`` (an ``as_of`` that counts the whole day)."""
    return day_start(day + timedelta(days=1), zone) - timedelta(microseconds=1)


def parse_day(value: str | None, field: str) -> date | None:
    """A ``YYYY-MM-DD`` query value (None when empty); 422 naming ``field`` otherwise."""
    return day_of(value, field) if value else None


def day_of(value: str, field: str) -> date:
    """The day ``YYYY-MM-DD`` within :mod:`services.finance.time_range`; 422 naming ``field`` otherwise."""
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise HTTPException(status_code=422, detail=f"{field}: not a date (YYYY-MM-DD)") from None
    try:
        return accepted_day(day)
    except ValueError as exc:
        raise HTTPException(status_code=422, detail=f"{field}: {exc}") from None


async def page(request: Request, user: User, name: str, context: dict[str, Any], status_code: int = 200) -> Response:
    """Render ``pages/<name>.html`` with the zone and the words of the page's language (:func:`render` chooses it
    and keeps a ``?lang=`` choice)."""
    zone = zone_of(request, user)
    extra = {"zone": zone, "zone_name": zone_label(zone), "w": WORDS[page_lang(request)]}
    return await render(request, f"pages/{name}.html", {**extra, **context}, status_code)
