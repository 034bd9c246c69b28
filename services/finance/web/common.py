"""What every page shares: the viewer's time zone, the page words the presentation's catalogue does not hold (in
the language :func:`services.finance.templating.page_lang` chooses), day bounds in that zone, and :func:`page`."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import HTTPException, Request, Response

from services.finance.auth import User
from services.finance.presentation.messages import Lang
from services.finance.presentation.zones import WIB, UnknownZone, lapas_zone, zone_label
from services.finance.templating import page_lang, render

WORDS: dict[Lang, dict[str, str]] = {
    "id": {
        "dashboard": "Dasbor", "trial_balance": "Neraca saldo", "journal": "Jurnal", "entry": "Entri jurnal",
        "register": "Buku besar akun", "statement": "Rekening tabungan WBP", "order": "Pesanan",
        "sales_today": "Penjualan hari ini", "sales_month": "Penjualan bulan ini", "pnbp": "PNBP terutang",
        "premi": "Premi (tabungan WBP)", "suppliers": "Utang pemasok", "unallocated": "Belum dialokasikan",
        "suspense": "Suspense", "parked": "Peristiwa tertunda", "as_of": "Per tanggal", "show": "Tampilkan",
        "download": "Unduh", "next": "Berikutnya", "lines": "Baris", "chain": "Rantai hash", "causes": "Penyebab",
        "deliveries": "Webhook (disamarkan)", "source_event": "Peristiwa sumber", "opening": "Saldo awal",
        "closing": "Saldo akhir", "from": "Dari", "to": "Sampai", "memo": "Keterangan", "times_in": "Waktu dalam",
        "chain_missing": "Verifikasi rantai dan hash kepala belum tersedia di API baca.",
    },
    "en": {
        "dashboard": "Dashboard", "trial_balance": "Trial balance", "journal": "Journal", "entry": "Journal entry",
        "register": "Account register", "statement": "Inmate savings statement", "order": "Order",
        "sales_today": "Sales today", "sales_month": "Sales this month", "pnbp": "PNBP payable",
        "premi": "Premi (inmate savings)", "suppliers": "Supplier payables", "unallocated": "Unallocated",
        "suspense": "Suspense", "parked": "Parked events", "as_of": "As of", "show": "Show",
        "download": "Download", "next": "Next", "lines": "Lines", "chain": "Hash chain", "causes": "Causes",
        "deliveries": "Webhooks (redacted)", "source_event": "Source event", "opening": "Opening balance",
        "closing": "Closing balance", "from": "From", "to": "To", "memo": "Memo", "times_in": "Times in",
        "chain_missing": "Chain verification and head hash are not in the read API yet.",
    },
}  # fmt: skip


def zone_for(user: User) -> ZoneInfo:
    """The viewer's lapas' zone; WIB for every-lapas viewers and for a lapas whose zone is not configured (the
    read API does not give the catalogue's province yet)."""
    if user.lapas_scope is None:
        return ZoneInfo(WIB)
    try:
        return lapas_zone(user.lapas_scope, None)
    except UnknownZone:
        return ZoneInfo(WIB)


def day_start(day: date, zone: ZoneInfo) -> datetime:
    """Midnight starting ``day`` in ``zone``."""
    return datetime.combine(day, time(), tzinfo=zone)


def end_of_day(day: date, zone: ZoneInfo) -> datetime:
    """The last microsecond of ``day`` in ``zone`` (an ``as_of`` that counts the whole day)."""
    return day_start(day + timedelta(days=1), zone) - timedelta(microseconds=1)


def parse_day(value: str | None, field: str) -> date | None:
    """A ``YYYY-MM-DD`` query value (None when empty); 422 naming ``field`` otherwise."""
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise HTTPException(status_code=422, detail=f"{field}: not a date (YYYY-MM-DD)") from None


async def page(request: Request, user: User, name: str, context: dict[str, Any], status_code: int = 200) -> Response:
    """Render ``pages/<name>.html`` with the zone and the words of the page's language (:func:`render` chooses it
    and keeps a ``?lang=`` choice)."""
    zone = zone_for(user)
    extra = {"zone": zone, "zone_name": zone_label(zone), "w": WORDS[page_lang(request)]}
    return await render(request, f"pages/{name}.html", {**extra, **context}, status_code)
