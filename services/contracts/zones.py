"""Each lapas' own time zone, from the province the catalogue records for it (``orders.lapas.province``).

Indonesia's three zones follow provinces (Keppres 41/1987), so the zone comes from :data:`PROVINCE_ZONES` —
configuration a deployment can extend, or override per lapas (``overrides``, lapas id → IANA zone name) where a
province is missing or spelt another way. One definition, shared: the finance workspace shows times in it and the
ledger counts a lapas' accounting months in it (:mod:`services.ledger.domain.periods`).
"""

from __future__ import annotations

from collections.abc import Mapping
from zoneinfo import ZoneInfo

__all__ = ["PROVINCE_ZONES", "WIB", "WIT", "WITA", "UnknownZone", "lapas_zone"]

WIB, WITA, WIT = "Asia/Jakarta", "Asia/Makassar", "Asia/Jayapura"

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
