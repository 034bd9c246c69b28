"""The ``tax_settings`` section of a policy file: the demo's, and every problem of a bad one reported at once."""

from __future__ import annotations

from fractions import Fraction

import pytest
import yaml

from services.ledger.domain.errors import PolicyError
from services.ledger.domain.tax import Pph22Treatment
from services.ledger.domain.tax_file import parse_tax_settings, tax_setting_body, tax_setting_hash
from tests.unit.ledger.ledger_support import DEMO_POLICY_FILE


def test_the_demo_has_a_pkp_lapas_and_every_pph22_treatment() -> None:
    settings = parse_tax_settings(yaml.safe_load(DEMO_POLICY_FILE.read_text()), str(DEMO_POLICY_FILE))
    by_lapas = {s.lapas_id: s for s in settings}
    assert set(by_lapas) == {"cipinang", "sukamiskin", "kerobokan", "tangerang"}
    assert [s.lapas_id for s in settings if s.pkp] == ["cipinang"]
    assert by_lapas["cipinang"].ppn_fraction == Fraction(11, 100)
    assert {s.pph22 for s in settings} == set(Pph22Treatment)


def test_a_stored_body_reads_back_as_the_same_setting() -> None:
    (setting,) = parse_tax_settings(
        [{"lapas_id": "x", "version": 1, "effective_from": "2025-01-01T00:00:00+07:00", "pkp": True}], "t"
    )
    (again,) = parse_tax_settings([tax_setting_body(setting)], "stored")
    assert again == setting and tax_setting_hash(again) == tax_setting_hash(setting)
    assert (
        setting.ref == "tax:x@v1"
        and setting.pph22 is Pph22Treatment.CREDITABLE
        and setting.pph22_rate == Fraction(1, 200)
    )


def test_every_problem_is_reported_at_once() -> None:
    bad = {
        "tax_settings": [
            {"lapas_id": "a b", "version": 0, "effective_from": "2025-01-01", "pkp": "yes", "pph22": "final"},
            {"lapas_id": "x", "version": 1, "effective_from": "2025-06-01T00:00:00+07:00", "ppn_rate": 0.11},
            {"lapas_id": "x", "version": 2, "effective_from": "2025-01-01T00:00:00+07:00", "pph22_tolerance": -1},
            {"lapas_id": "y", "version": 1, "effective_from": "2025-01-01T00:00:00+07:00", "colour": "red"},
        ]
    }
    with pytest.raises(PolicyError) as caught:
        parse_tax_settings(bad, "bad.yaml")
    message = str(caught.value)
    for expected in (
        "tax_settings[0] ('a b'): field 'lapas_id'",
        "field 'version': must be an integer >= 1",
        "has no time zone",
        "field 'pkp': must be true or false",
        "field 'pph22': must be one of creditable, expense, exempt, got 'final'",
        "tax_settings[1] ('x'): field 'ppn_rate': 0.11 is a float",
        "field 'pph22_tolerance': must be whole rupiah >= 0",
        "tax_settings[3] ('y'): field 'colour': unknown field",
    ):
        assert expected in message, expected


def test_a_later_version_must_start_later() -> None:
    data = [
        {"lapas_id": "x", "version": 1, "effective_from": "2025-06-01T00:00:00+07:00"},
        {"lapas_id": "x", "version": 2, "effective_from": "2025-01-01T00:00:00+07:00"},
    ]
    with pytest.raises(PolicyError, match="version 2 must start after version 1"):
        parse_tax_settings(data, "t")


def test_a_file_without_the_section_has_no_settings() -> None:
    assert parse_tax_settings({"policies": []}, "p.yaml") == []
