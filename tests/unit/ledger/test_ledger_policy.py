"""Split policies: exact shares, validation messages, selection, hashing, the demo policy file."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta, timezone
from fractions import Fraction
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from services.ledger.domain.errors import NoPolicyError, PolicyError
from services.ledger.domain.policy import (
    ShareRule,
    ShareTarget,
    SplitPolicy,
    policy_hash,
    select_policy,
)
from services.ledger.domain.policy_file import parse_policies, parse_share
from tests.unit.ledger.ledger_support import DEMO_POLICIES, DEMO_POLICY_FILE

WIB = timezone(timedelta(hours=7))
WITA = timezone(timedelta(hours=8))


def base_policy(**changes: Any) -> dict[str, Any]:
    policy: dict[str, Any] = {
        "policy_id": "cipinang-standard",
        "version": 1,
        "lapas_id": "cipinang",
        "effective_from": "2026-01-01T00:00:00+07:00",
        "rules": [
            {"target": "pnbp", "share": "50%"},
            {"target": "inmate_premi", "share": "15%"},
            {"target": "production_capital", "share": "35%"},
        ],
    }
    policy.update(changes)
    return policy


def error_of(data: object) -> str:
    with pytest.raises(PolicyError) as caught:
        parse_policies(data, "test.yaml")
    return str(caught.value)


# --- the demo file -------------------------------------------------------------------------------


def test_demo_policies_parse_and_cover_every_demo_lapas() -> None:
    data = yaml.safe_load(DEMO_POLICY_FILE.read_text(encoding="utf-8"))
    policies = parse_policies(data, str(DEMO_POLICY_FILE))
    assert {p.lapas_id for p in policies} == {"cipinang", "sukamiskin", "kerobokan", "tangerang"}
    refs = {p.ref for p in policies}
    assert {"cipinang-gloves@v1", "kerobokan-standard@v1", "kerobokan-standard@v2"} <= refs
    splits = {p.ref: [r.share for r in p.rules] for p in policies}
    assert splits["cipinang-standard@v1"] == [Fraction(1, 2), Fraction(15, 100), Fraction(35, 100)]
    assert splits["sukamiskin-standard@v1"] == [Fraction(25, 100), Fraction(15, 100), Fraction(60, 100)]
    assert splits["kerobokan-standard@v1"] == [Fraction(1, 2), Fraction(35, 100), Fraction(15, 100)]
    assert next(p for p in policies if p.ref == "cipinang-gloves@v1").sku == "CPN-GLV-001"


def test_demo_selection_product_override_and_versions() -> None:
    late_2026 = datetime(2026, 9, 1, tzinfo=WIB)
    assert select_policy(DEMO_POLICIES, "cipinang", "CPN-GLV-001", late_2026).ref == "cipinang-gloves@v1"
    assert select_policy(DEMO_POLICIES, "cipinang", "CPN-GLV-002", late_2026).ref == "cipinang-standard@v1"
    assert select_policy(DEMO_POLICIES, "cipinang", None, late_2026).ref == "cipinang-standard@v1"
    # Before the glove override starts, the lapas-wide policy applies to gloves too.
    before_override = datetime(2025, 5, 31, 23, 59, tzinfo=WIB)
    assert select_policy(DEMO_POLICIES, "cipinang", "CPN-GLV-001", before_override).ref == "cipinang-standard@v1"
    # Kerobokan v2 starts at midnight WITA on 1 July 2026 (= 16:00 UTC on 30 June).
    assert (
        select_policy(DEMO_POLICIES, "kerobokan", "KRB-MAT-001", datetime(2026, 6, 30, 15, 59, 59, tzinfo=UTC)).version
        == 1
    )
    assert select_policy(DEMO_POLICIES, "kerobokan", "KRB-MAT-001", datetime(2026, 6, 30, 16, tzinfo=UTC)).version == 2
    assert select_policy(DEMO_POLICIES, "kerobokan", None, datetime(2026, 7, 1, tzinfo=WITA)).version == 2


def test_selection_errors() -> None:
    with pytest.raises(NoPolicyError, match="no split policy in force for lapas 'cipinang'"):
        select_policy(DEMO_POLICIES, "cipinang", None, datetime(2024, 12, 31, tzinfo=WIB))
    with pytest.raises(NoPolicyError, match="'nusakambangan'"):
        select_policy(DEMO_POLICIES, "nusakambangan", None, datetime(2026, 1, 1, tzinfo=UTC))
    with pytest.raises(NoPolicyError, match="naive"):
        select_policy(DEMO_POLICIES, "cipinang", None, datetime(2026, 1, 1))


def test_product_specific_beats_a_newer_lapas_wide_policy() -> None:
    policies = parse_policies(
        [
            base_policy(policy_id="cpn-gloves", sku="CPN-GLV-001", effective_from="2025-01-01T00:00:00+07:00"),
            base_policy(policy_id="cpn", effective_from="2026-01-01T00:00:00+07:00"),
        ],
        "x.yaml",
    )
    assert select_policy(policies, "cipinang", "CPN-GLV-001", datetime(2026, 6, 1, tzinfo=UTC)).ref == "cpn-gloves@v1"


# --- shares ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("50%", Fraction(1, 2)),
        ("12.5%", Fraction(1, 8)),
        ("12.5 %", Fraction(1, 8)),
        ("15/100", Fraction(3, 20)),
        ("1/3", Fraction(1, 3)),
        ("0.35", Fraction(7, 20)),
        ("0.333333", Fraction(333333, 1000000)),
        (" 1 ", Fraction(1)),
        (1, Fraction(1)),
        (0, Fraction(0)),
        ("0%", Fraction(0)),
    ],
)
def test_parse_share_is_exact(text: object, expected: Fraction) -> None:
    assert parse_share(text) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (0.35, "float; write the share as a quoted string"),
        (True, "bool"),
        ("-5%", "negative"),
        ("1/0", "divides by zero"),
        ("abc", "not a percentage"),
        ("1e-2", "not a percentage"),
        ("nan", "not a percentage"),
        ("35%%", "not a percentage"),
        (2, "not 0 or 1"),
        (None, "must be a string"),
    ],
)
def test_parse_share_rejects(value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_share(value)


@given(st.lists(st.integers(min_value=0, max_value=1000), min_size=1, max_size=3), st.integers(0, 10**12))
def test_any_exact_split_parses_and_splits_the_whole_remainder(weights: list[int], remainder: int) -> None:
    total = sum(weights) or 1
    shares = [f"{w}/{total}" for w in weights] if sum(weights) else ["1"] + ["0"] * (len(weights) - 1)
    targets = list(ShareTarget)[: len(weights)]
    policy = parse_policies(
        [base_policy(rules=[{"target": t.value, "share": s} for t, s in zip(targets, shares, strict=True)])],
        "h",
    )[0]
    parts = policy.split(remainder)
    assert sum(amount for _, amount in parts) == remainder
    assert [t for t, _ in parts] == targets


# --- validation messages ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "fragments"),
    [
        (
            base_policy(rules=[{"target": "pnbp", "share": "50%"}, {"target": "inmate_premi", "share": "15%"}]),
            ["field 'rules'", "sum to 13/20", "not exactly 1"],
        ),
        (
            base_policy(rules=[{"target": "pnbp", "share": 0.5}, {"target": "inmate_premi", "share": "50%"}]),
            ["field 'rules[0].share'", "float"],
        ),
        (
            base_policy(rules=[{"target": "pnbp", "share": "-10%"}, {"target": "inmate_premi", "share": "110%"}]),
            ["field 'rules[0].share'", "negative"],
        ),
        (
            base_policy(rules=[{"target": "pnbp", "share": "50%"}, {"target": "pnbp", "share": "50%"}]),
            ["field 'rules'", "target pnbp appears twice"],
        ),
        (
            base_policy(rules=[{"target": "warden", "share": "100%"}]),
            ["field 'rules[0].target'", "'warden' is not one of pnbp, inmate_premi, production_capital"],
        ),
        (base_policy(rules=[{"target": "pnbp", "share": "100%", "note": "x"}]), ["field 'rules[0].note'"]),
        (base_policy(rules=[]), ["field 'rules'", "non-empty list"]),
        (base_policy(effective_from="2026-01-01T00:00:00"), ["field 'effective_from'", "no time zone"]),
        (base_policy(effective_from="1 Jan 2026"), ["field 'effective_from'", "not an ISO 8601"]),
        (base_policy(effective_from=None), ["field 'effective_from'", "is required"]),
        (base_policy(version=0), ["field 'version'", "integer >= 1"]),
        (base_policy(version="2"), ["field 'version'"]),
        (base_policy(lapas_id="cipinang:east"), ["field 'lapas_id'", "must match"]),
        (base_policy(policy_id="Cipinang Standard"), ["field 'policy_id'", "must match"]),
        (base_policy(sku=""), ["field 'sku'"]),
        (base_policy(owner="kalapas"), ["field 'owner'", "unknown field"]),
    ],
)
def test_validation_names_source_policy_and_field(policy: dict[str, Any], fragments: list[str]) -> None:
    message = error_of({"policies": [base_policy(policy_id="other", lapas_id="tangerang"), policy]})
    assert "test.yaml: policy[1]" in message
    for fragment in fragments:
        assert fragment in message
    if isinstance(policy.get("policy_id"), str) and " " not in policy["policy_id"]:
        assert "(id 'cipinang-standard')" in message


def test_every_problem_is_reported_at_once() -> None:
    message = error_of([base_policy(version=0), base_policy(policy_id="b", lapas_id="", rules=[])])
    assert len(message.splitlines()) == 3
    assert "policy[0] (id 'cipinang-standard'): field 'version'" in message
    assert "policy[1] (id 'b'): field 'lapas_id'" in message
    assert "policy[1] (id 'b'): field 'rules'" in message


@pytest.mark.parametrize(
    ("policies", "fragment"),
    [
        (
            [base_policy(), base_policy(effective_from="2026-02-01T00:00:00+07:00")],
            "version 1 is defined twice",
        ),
        (
            [base_policy(), base_policy(version=2, effective_from="2025-12-01T00:00:00+07:00")],
            "version 2 must start after version 1",
        ),
        (
            [
                base_policy(),
                base_policy(version=2, lapas_id="tangerang", effective_from="2026-02-01T00:00:00+07:00"),
            ],
            "must keep the same lapas and sku",
        ),
        ([base_policy(), base_policy(policy_id="cipinang-b")], "selection would be ambiguous"),
        # The same instant written in another time zone is the same instant.
        (
            [base_policy(), base_policy(policy_id="cipinang-b", effective_from="2025-12-31T17:00:00+00:00")],
            "selection would be ambiguous",
        ),
    ],
)
def test_cross_policy_checks(policies: list[dict[str, Any]], fragment: str) -> None:
    message = error_of(policies)
    assert "policy[1]" in message
    assert fragment in message


@pytest.mark.parametrize("data", [None, [], {"policies": []}, "policies", 3])
def test_top_level_must_be_a_list_of_policies(data: object) -> None:
    assert "expected a non-empty list of policies" in error_of(data)


def test_top_level_unknown_key() -> None:
    assert "top level: field 'polices'" in error_of({"polices": [], "policies": [base_policy()]})


def test_accepts_yaml_timestamps_and_a_bare_list() -> None:
    data = yaml.safe_load(
        "- policy_id: p\n  version: 1\n  lapas_id: tangerang\n  effective_from: 2026-01-01T00:00:00+07:00\n"
        "  rules: [{target: production_capital, share: '100%'}]\n"
    )
    (policy,) = parse_policies(data, "inline")
    assert policy.effective_from == datetime(2026, 1, 1, tzinfo=WIB)
    assert policy.split(1234) == [(ShareTarget.PRODUCTION_CAPITAL, 1234)]


def test_constructing_an_invalid_policy_directly_fails() -> None:
    with pytest.raises(PolicyError, match="not exactly 1"):
        SplitPolicy(
            "p",
            1,
            "cipinang",
            None,
            datetime(2026, 1, 1, tzinfo=UTC),
            (ShareRule(ShareTarget.PNBP, Fraction(1, 3)),),
        )
    with pytest.raises(PolicyError, match="no time zone"):
        SplitPolicy(
            "p",
            1,
            "cipinang",
            None,
            datetime(2026, 1, 1),
            (ShareRule(ShareTarget.PNBP, Fraction(1)),),
        )


# --- hashing -------------------------------------------------------------------------------------


def test_policy_hash_is_canonical() -> None:
    (a,) = parse_policies([base_policy()], "a")
    same_instant = base_policy(effective_from="2025-12-31T17:00:00+00:00", description="other words")
    same_shares = base_policy(
        rules=[
            {"target": "pnbp", "share": "1/2"},
            {"target": "inmate_premi", "share": "0.15"},
            {"target": "production_capital", "share": "35/100"},
        ]
    )
    assert policy_hash(a) == policy_hash(parse_policies([same_instant], "b")[0])
    assert policy_hash(a) == policy_hash(parse_policies([same_shares], "c")[0])
    # Pinned: a change here means the canonical form changed and recorded policy hashes no longer match.
    assert policy_hash(a) == "2a41cc10afbf74bcb1730336bf0ce974e5e8d8cee3bb8f29224b572574042356"
    changed = [
        base_policy(version=2),
        base_policy(sku="CPN-GLV-001"),
        base_policy(effective_from="2026-01-01T00:00:01+07:00"),
        base_policy(
            rules=[
                {"target": "pnbp", "share": "50%"},
                {"target": "production_capital", "share": "35%"},
                {"target": "inmate_premi", "share": "15%"},
            ]
        ),
        base_policy(
            rules=[
                {"target": "pnbp", "share": "49%"},
                {"target": "inmate_premi", "share": "16%"},
                {"target": "production_capital", "share": "35%"},
            ]
        ),
    ]
    hashes = {policy_hash(parse_policies([c], "d")[0]) for c in changed}
    assert len(hashes) == len(changed) and policy_hash(a) not in hashes


def test_parse_does_not_mutate_its_input() -> None:
    data = {"policies": [base_policy()]}
    before = copy.deepcopy(data)
    parse_policies(data, "x")
    assert data == before
