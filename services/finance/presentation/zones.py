"""Each lapas' own time zone, and instants shown in it.

The catalogue records a lapas' province (``orders.lapas.province``), not its zone; Indonesia's three zones follow
provinces, so the zone comes from :data:`PROVINCE_ZONES` — configuration a deployment can extend or override per
lapas (``overrides``, lapas id → IANA zone name) where a province is missing or spelt another way.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from zoneinfo import ZoneInfo

from services.finance.presentation.messages import MONTHS, Lang

WIB, WITA, WIT = "Asia/Jakarta", "Asia/Makassar", "Asia/Jayapura"
ABBREVIATIONS = {WIB: "WIB", WITA: "WITA", WIT: "WIT", "UTC": "UTC"}

#: Province (lower case, as the catalogue spells it) → IANA zone (the zone boundaries of Keppres 41/1987).
PROVINCE_ZONES: dict[str, str] = {
    **dict.fromkeys(
        (
            "aceh", "sumatera utara", "sumatera barat", "riau", "kepulauan riau", "jambi", "bengkulu",
            "sumatera selatan", "kepulauan bangka belitung", "lampung", "banten", "dki jakarta", "jawa barat",
            "jawa tengah", "di yogyakarta", "daerah istimewa yogyakarta", "jawa timur", "kalimantan barat",
            "kalimantan tengah",
        ),
        WIB,
    ),
    **dict.fromkeys(
        (
            "bali", "nusa tenggara barat", "nusa tenggara timur", "kalimantan selatan", "kalimantan timur",
            "kalimantan utara", "sulawesi utara", "gorontalo", "sulawesi tengah", "sulawesi barat",
            "sulawesi selatan", "sulawesi tenggara",
        ),
        WITA,
    ),
    **dict.fromkeys(
        (
            "maluku", "maluku utara", "papua", "papua barat", "papua barat daya", "papua tengah",
            "papua pegunungan", "papua selatan",
        ),
        WIT,
    ),
}  # fmt: skip


class UnknownZone(LookupError):
    """A lapas whose zone is neither overridden nor derivable from its province."""


def lapas_zone(lapas_id: str, province: str | None, overrides: Mapping[str, str] | None = None) -> ZoneInfo:
    """The zone of one lapas: its override if configured, else its province's; :class:`UnknownZone` otherwise."""
    name = (overrides or {}).get(lapas_id) or PROVINCE_ZONES.get((province or "").strip().lower())
    if name is None:
        raise UnknownZone(
            f"no time zone for lapas {lapas_id!r} (province {province!r}): add the province to PROVINCE_ZONES "
            "or the lapas to the zone overrides"
        )
    return ZoneInfo(name)


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
