"""Each lapas' own time zone, and instants shown in it.

The catalogue records a lapas' province (``orders.lapas.province``), not its zone; the zone comes from the
province by :func:`services.contracts.zones.lapas_zone` (re-exported here), the one rule the ledger's periods use
too.
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from services.contracts.zones import PROVINCE_ZONES, WIB, WIT, WITA, UnknownZone, lapas_zone
from services.presentation.messages import MONTHS, Lang

__all__ = [
    "ABBREVIATIONS",
    "PROVINCE_ZONES",
    "WIB",
    "WIT",
    "WITA",
    "UnknownZone",
    "format_date",
    "format_datetime",
    "format_month",
    "iso_local",
    "lapas_zone",
    "zone_label",
]

ABBREVIATIONS = {WIB: "WIB", WITA: "WITA", WIT: "WIT", "UTC": "UTC"}


def zone_label(zone: ZoneInfo) -> str:
    """``WIB``, ``WITA``, ``WIT`` (``UTC``), else the IANA name."""
    return ABBREVIATIONS.get(zone.key, zone.key)


def format_datetime(moment: datetime, zone: ZoneInfo, lang: Lang = "id", *, seconds: bool = False) -> str:
    """``2 Desember 2026 14.05 WITA`` (Indonesian uses a dot between hours and minutes) or ``2 December 2026 14:05
    WITA``; a naive ``moment`` is refused (the ledger stores instants)."""
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment!r}: the ledger's times are instants")
    local = moment.astimezone(zone)
    clock = local.strftime("%H:%M:%S" if seconds else "%H:%M")
    if lang == "id":
        clock = clock.replace(":", ".")
    return f"{format_date(local.date(), lang)} {clock} {zone_label(zone)}"


def format_date(day: date, lang: Lang = "id") -> str:
    """``2 Desember 2026`` / ``2 December 2026``."""
    return f"{day.day} {MONTHS[lang][day.month - 1]} {day.year}"


def format_month(day: date, lang: Lang = "id") -> str:
    """``Desember 2026`` / ``December 2026``: the month of ``day``."""
    return f"{MONTHS[lang][day.month - 1]} {day.year}"


def iso_local(moment: datetime, zone: ZoneInfo) -> str:
    """ISO 8601 in the zone with its offset, to the second: ``2026-12-02T14:05:00+08:00`` (CSV, JSON)."""
    return moment.astimezone(zone).isoformat(timespec="seconds")
