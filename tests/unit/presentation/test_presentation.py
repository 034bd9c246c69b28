"""Rupiah, sides, zones and words as Karya shows them (the finance workspace, the ledger's CLI reports)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from services.presentation.messages import CATALOGUE, lang_of, message
from services.presentation.money import parse_rupiah, rupiah, rupiah_side
from services.presentation.zones import (
    PROVINCE_ZONES,
    UnknownZone,
    format_datetime,
    format_month,
    iso_local,
    lapas_zone,
)

amounts = st.integers(min_value=-(10**15), max_value=10**15)


def test_rupiah_groups_by_dots_without_decimals() -> None:
    assert rupiah(0) == "Rp 0"
    assert rupiah(999) == "Rp 999"
    assert rupiah(1_234_567) == "Rp 1.234.567"
    assert rupiah(-1_000) == "-Rp 1.000"


def test_sides_in_both_languages() -> None:
    assert rupiah_side(5_000, "D") == "Rp 5.000 D"
    assert rupiah_side(-5_000, "D") == "Rp 5.000 K"
    assert rupiah_side(-5_000, "D", "en") == "Rp 5.000 Cr"
    assert rupiah_side(0, "C", "en") == "Rp 0 Cr"


def test_floats_and_bools_are_not_rupiah() -> None:
    with pytest.raises(TypeError):
        rupiah(1.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        rupiah(True)


@given(amounts)
def test_rupiah_reads_back_to_the_same_integer(amount: int) -> None:
    assert parse_rupiah(rupiah(amount)) == amount


@given(amounts, st.sampled_from(["D", "C"]), st.sampled_from(["id", "en"]))
def test_a_sided_balance_reads_back_signed_towards_its_normal_side(amount: int, normal: str, lang: str) -> None:
    text = rupiah_side(amount, normal, lang)  # type: ignore[arg-type]
    assert "-" not in text
    assert parse_rupiah(text, normal) == amount  # type: ignore[arg-type]


@pytest.mark.parametrize("text", ["Rp 1,234", "Rp 1.23", "1.234", "Rp 12.34.567", "-Rp 5 D", "Rp 5 X", "Rp  5"])
def test_malformed_amounts_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_rupiah(text)


def test_a_lapas_zone_comes_from_its_province_or_an_override() -> None:
    assert lapas_zone("cipinang", "DKI Jakarta").key == "Asia/Jakarta"
    assert lapas_zone("kerobokan", "Bali").key == "Asia/Makassar"
    assert lapas_zone("abepura", " Papua ").key == "Asia/Jayapura"
    assert lapas_zone("x", "Atlantis", {"x": "Asia/Makassar"}).key == "Asia/Makassar"
    with pytest.raises(UnknownZone, match="Atlantis"):
        lapas_zone("x", "Atlantis")
    assert set(PROVINCE_ZONES.values()) == {"Asia/Jakarta", "Asia/Makassar", "Asia/Jayapura"}


def test_every_lapas_of_the_demo_catalogue_has_a_zone() -> None:
    catalogue = yaml.safe_load((Path(__file__).parents[3] / "deploy/demo/catalogue.yaml").read_text())
    zones = {lapas["lapas_id"]: lapas_zone(lapas["lapas_id"], lapas["province"]).key for lapas in catalogue["lapas"]}
    assert zones and zones["cipinang"] == "Asia/Jakarta"


def test_times_are_shown_in_the_lapas_zone_with_its_abbreviation() -> None:
    moment = datetime(2026, 12, 31, 17, 5, tzinfo=UTC)
    assert format_datetime(moment, lapas_zone("a", "DKI Jakarta")) == "1 Januari 2027 00.05 WIB"
    assert format_datetime(moment, lapas_zone("b", "Bali"), "en") == "1 January 2027 01:05 WITA"
    assert format_datetime(moment, lapas_zone("c", "Maluku"), seconds=True) == "1 Januari 2027 02.05.00 WIT"
    assert iso_local(moment, lapas_zone("b", "Bali")) == "2027-01-01T01:05:00+08:00"
    assert format_month(date(2026, 8, 1)) == "Agustus 2026"
    with pytest.raises(ValueError, match="naive"):
        format_datetime(datetime(2026, 1, 1), lapas_zone("a", "Banten"))


def test_every_message_exists_in_both_languages() -> None:
    assert set(CATALOGUE["id"]) == set(CATALOGUE["en"])
    assert message("balance") == "Saldo"
    assert message("balance", "en") == "Balance"
    assert (
        message("stamp", "en", user="u", time="t", head_hash="h")
        == "Made by u at t; root hash of the chain segment heads h"
    )
    assert [lang_of(v) for v in (None, "en", "en-GB,en;q=0.9", "id", "fr")] == ["id", "en", "en", "id", "id"]
