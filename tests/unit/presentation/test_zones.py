"""Instants shown in a lapas' own zone (:mod:`services.presentation.zones`), property-tested: the shown
time is the instant's wall clock in the province's zone (WIB +7, WITA +8, WIT +9, no daylight saving), the ISO form
names the same instant, and the zone of every configured province is one of the three."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from services.presentation.zones import (
    PROVINCE_ZONES,
    WIB,
    WIT,
    WITA,
    format_datetime,
    iso_local,
    lapas_zone,
    zone_label,
)

OFFSETS = {WIB: 7, WITA: 8, WIT: 9}
instants = st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC))
provinces = st.sampled_from(sorted(PROVINCE_ZONES))


@given(instants, provinces, st.sampled_from(["id", "en"]))
def test_a_time_shows_its_provinces_offset_and_label(moment: datetime, province: str, lang: str) -> None:
    zone = lapas_zone("l", province.upper())  # the catalogue's spelling may differ in case
    wall = moment + timedelta(hours=OFFSETS[PROVINCE_ZONES[province]])
    shown = format_datetime(moment, zone, "en" if lang == "en" else "id")
    separator = ":" if lang == "en" else "."
    assert shown.endswith(f" {wall:%H}{separator}{wall:%M} {zone_label(zone)}")
    assert shown.startswith(f"{wall.day} ") and str(wall.year) in shown


@given(instants, provinces)
def test_the_iso_form_is_the_same_instant_at_the_zones_offset(moment: datetime, province: str) -> None:
    shown = iso_local(moment, lapas_zone("l", province))
    back = datetime.fromisoformat(shown)
    assert back == moment.replace(microsecond=0)
    assert back.utcoffset() == timedelta(hours=OFFSETS[PROVINCE_ZONES[province]])


def test_kerobokan_in_bali_is_wita_and_an_override_wins() -> None:
    assert zone_label(lapas_zone("kerobokan", "Bali")) == "WITA"
    assert zone_label(lapas_zone("kerobokan", "Bali", {"kerobokan": WIT})) == "WIT"
