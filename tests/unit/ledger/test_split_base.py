"""Split base per policy (issue 17 item 3): ``base: revenue | profit`` and fixed deductions — the legs of a batch,
their properties for any policy and sale (they sum exactly to the base, whole rupiah, largest remainder, none
negative), the refusals, the file's validation messages by field, and the stored form and hash of a version."""

from __future__ import annotations

from datetime import UTC, datetime
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.ledger.adapters.policy_repo import _body
from services.ledger.domain.allocation import allocate
from services.ledger.domain.distribution import Leg, plan_distribution
from services.ledger.domain.errors import DistributionError, PolicyError
from services.ledger.domain.model import (
    BatchAllocation,
    CompletionRequest,
    OrderRef,
    SettlementRequest,
    WorkMember,
)
from services.ledger.domain.policy import (
    Deduction,
    ShareRule,
    ShareTarget,
    SplitBase,
    SplitPolicy,
    policy_hash,
)
from services.ledger.domain.policy_file import parse_policies

AT = datetime(2026, 6, 1, tzinfo=UTC)
ORDER = OrderRef("shopee:shop-cpn:77", "shopee", "cipinang")
A, B = "WBP-AAA001", "WBP-BBB002"
RULES = (
    ShareRule(ShareTarget.PNBP, Fraction(1, 4)),
    ShareRule(ShareTarget.INMATE_PREMI, Fraction(1, 4)),
    ShareRule(ShareTarget.PRODUCTION_CAPITAL, Fraction(1, 2)),
)
KOPERASI = "liability:deduction_payable:cipinang:koperasi-cipinang"
TARGETS = (ShareTarget.PNBP, ShareTarget.INMATE_PREMI, ShareTarget.PRODUCTION_CAPITAL)


def policy(base: SplitBase, *deductions: Deduction, rules: tuple[ShareRule, ...] = RULES) -> SplitPolicy:
    return SplitPolicy("p", 1, "cipinang", None, datetime(2025, 1, 1, tzinfo=UTC), rules, "", base=base,
                       deductions=deductions)  # fmt: skip


def sale(unit_material_cost: int, quantity: int = 5, net: int = 89_500) -> tuple[CompletionRequest, SettlementRequest]:
    """``quantity`` units at 20,000 (G 100,000 for five) from one batch; fees 10,000, PPh 22 500."""
    batch = BatchAllocation("B1", "CPN-CCN-002", quantity, 20_000, unit_material_cost, "sup-kelapa",
                            (WorkMember(A, 2), WorkMember(B, 1)))  # fmt: skip
    gross = quantity * 20_000
    settlement = SettlementRequest(ORDER, "ESC-1", gross, {"commission_fee": gross // 10}, gross // 200, net, AT)
    return CompletionRequest(ORDER, gross, AT, (batch,)), settlement


def legs(p: SplitPolicy, unit_material_cost: int = 4_500) -> set[tuple[str, str, int]]:
    plan = plan_distribution(*sale(unit_material_cost), [p])
    return {(leg.debit, leg.credit, leg.amount) for _, leg in plan.legs()}


MATERIAL = ("expense:material_cost:cipinang", "liability:supplier_payable:cipinang:sup-kelapa", 22_500)


def test_revenue_base_with_a_rate_deduction_is_the_worked_example() -> None:
    # base 89,500; koperasi 2% 1,790; 87,710 split 25/25/50 (the .5 tie to PNBP); capital 43,855 − 22,500
    assert legs(policy(SplitBase.REVENUE, Deduction("koperasi", KOPERASI, rate=Fraction(1, 50)))) == {
        MATERIAL,
        ("expense:split_deduction:cipinang", KOPERASI, 1_790),
        ("expense:pnbp_share:cipinang", "liability:pnbp_payable:cipinang", 21_928),
        ("expense:inmate_premi:cipinang", f"liability:inmate_savings:{A}", 14_618),
        ("expense:inmate_premi:cipinang", f"liability:inmate_savings:{B}", 7_309),
        ("expense:capital_allocation:cipinang", "equity:production_capital:cipinang", 21_355),
    }


def test_profit_base_with_a_per_unit_deduction() -> None:
    packaging = Deduction("packaging", "liability:supplier_payable:cipinang:sup-kemas", per_unit=1_000)
    # base 89,500 − 22,500 = 67,000; packaging 5 × 1,000; 62,000 split 25/25/50; premi 15,500 over 2:1
    assert legs(policy(SplitBase.PROFIT, packaging)) == {
        MATERIAL,
        ("expense:split_deduction:cipinang", "liability:supplier_payable:cipinang:sup-kemas", 5_000),
        ("expense:pnbp_share:cipinang", "liability:pnbp_payable:cipinang", 15_500),
        ("expense:inmate_premi:cipinang", f"liability:inmate_savings:{A}", 10_333),
        ("expense:inmate_premi:cipinang", f"liability:inmate_savings:{B}", 5_167),
        ("expense:capital_allocation:cipinang", "equity:production_capital:cipinang", 31_000),
    }


def test_profit_base_without_deductions_is_todays_split() -> None:
    assert legs(policy(SplitBase.PROFIT)) == {
        MATERIAL,
        ("expense:pnbp_share:cipinang", "liability:pnbp_payable:cipinang", 16_750),
        ("expense:inmate_premi:cipinang", f"liability:inmate_savings:{A}", 11_167),
        ("expense:inmate_premi:cipinang", f"liability:inmate_savings:{B}", 5_583),
        ("expense:capital_allocation:cipinang", "equity:production_capital:cipinang", 33_500),
    }


def test_a_capital_share_exactly_the_material_cost_posts_no_capital_leg() -> None:
    # base 89,500 split 25/25/50: capital 44,750 = material 5 × 8,950
    found = legs(policy(SplitBase.REVENUE), 8_950)
    assert not any(credit.startswith("equity:") for _, credit, _ in found)
    assert sum(amount for *_, amount in found) == 89_500


@pytest.mark.parametrize(
    ("p", "unit_material_cost", "message"),
    [
        (policy(SplitBase.REVENUE), 9_000, "production capital share 44750 of revenue-base policy p@v1 does not cover "
         "the material cost 45000"),
        (policy(SplitBase.PROFIT), 18_000, "attributed proceeds 89500 do not cover the material cost 90000"),
        (policy(SplitBase.REVENUE), 18_000, "attributed proceeds 89500 do not cover the material cost 90000"),
        (policy(SplitBase.PROFIT, Deduction("box", KOPERASI, per_unit=14_000)), 4_500,
         "the deductions 70000 of policy p@v1 exceed its profit base 67000"),
    ],
)  # fmt: skip
def test_a_distribution_that_cannot_be_made_is_refused(p: SplitPolicy, unit_material_cost: int, message: str) -> None:
    with pytest.raises(DistributionError, match=message):
        plan_distribution(*sale(unit_material_cost), [p])


# --- properties ----------------------------------------------------------------------------------


@st.composite
def policies(draw: st.DrawFn) -> SplitPolicy:
    """Any valid policy: either base, 1–3 rules summing to 1 (capital always present), 0–3 deductions."""
    weights = [draw(st.integers(0, 50)) for _ in range(2)] + [draw(st.integers(1, 50))]
    total = sum(weights)
    rules = tuple(
        ShareRule(t, Fraction(w, total))
        for t, w in zip(
            (ShareTarget.PNBP, ShareTarget.INMATE_PREMI, ShareTarget.PRODUCTION_CAPITAL), weights, strict=True
        )
    )
    deductions: list[Deduction] = []
    for n in range(draw(st.integers(0, 3))):
        if draw(st.booleans()):
            rate = Fraction(draw(st.integers(1, 300)), 1000)  # three at most: together below 1
            deductions.append(Deduction(f"d{n}", KOPERASI, rate=rate))
        else:
            deductions.append(
                Deduction(f"d{n}", "equity:production_capital:cipinang", per_unit=draw(st.integers(1, 3000)))
            )
    return policy(draw(st.sampled_from(SplitBase)), *deductions, rules=rules)


@given(policies(), st.integers(0, 20_000), st.integers(1, 9), st.integers(0, 200_000))
def test_any_distribution_sums_exactly_to_the_base_in_whole_positive_rupiah(
    p: SplitPolicy, unit_material_cost: int, quantity: int, net: int
) -> None:
    completion, settlement = sale(unit_material_cost, quantity, net)
    try:
        plan = plan_distribution(completion, settlement, [p])
    except DistributionError:
        _assert_refusal_is_right(p, completion, plan_base(completion, settlement))
        return
    all_legs = [leg for _, leg in plan.legs()]
    assert sum(leg.amount for leg in all_legs) == plan.base
    assert all(type(leg.amount) is int and leg.amount > 0 for leg in all_legs)
    batch = completion.allocations[0]
    base = plan.base if p.base is SplitBase.REVENUE else plan.base - batch.material_cost
    deducted = p.deduct(base, quantity)
    rates = [d.rate for d in p.deductions if d.rate is not None]
    if rates:  # rate deductions: the largest-remainder parts of the base with its rest
        parts = allocate(base, [*rates, 1 - sum(rates, Fraction(0))])[:-1]
        assert [a for d, a in zip(p.deductions, deducted, strict=True) if d.rate is not None] == parts
    shares = dict(
        zip([r.target for r in p.rules], allocate(base - sum(deducted), [r.share for r in p.rules]), strict=True)
    )
    assert _paid(all_legs, "liability:pnbp_payable:") == shares[ShareTarget.PNBP]
    assert _paid(all_legs, "liability:inmate_savings:") == shares[ShareTarget.INMATE_PREMI]
    capital_share = shares[ShareTarget.PRODUCTION_CAPITAL]
    material = batch.material_cost if p.base is SplitBase.REVENUE else 0
    deducted_to_capital = sum(a for d, a in zip(p.deductions, deducted, strict=True) if d.per_unit is not None)
    assert _paid(all_legs, "equity:production_capital:") == capital_share - material + deducted_to_capital
    assert _paid(all_legs, "liability:supplier_payable:") == batch.material_cost


def plan_base(completion: CompletionRequest, settlement: SettlementRequest) -> int:
    return min(settlement.net_payout, completion.gross - settlement.fee_total - settlement.pph22_withheld)


def _assert_refusal_is_right(p: SplitPolicy, completion: CompletionRequest, base: int) -> None:
    """A refusal only when the proceeds cannot pay what comes before the shares."""
    batch = completion.allocations[0]
    if base < batch.material_cost:
        return
    split_base = base if p.base is SplitBase.REVENUE else base - batch.material_cost
    rest = split_base - sum(p.deduct(split_base, batch.quantity))
    if rest < 0:
        return
    capital = dict(zip([r.target for r in p.rules], allocate(rest, [r.share for r in p.rules]), strict=True))
    assert p.base is SplitBase.REVENUE and capital[ShareTarget.PRODUCTION_CAPITAL] < batch.material_cost


def _paid(all_legs: list[Leg], prefix: str) -> int:
    return sum(leg.amount for leg in all_legs if leg.credit.startswith(prefix))


# --- the policy file -------------------------------------------------------------------------------


def raw(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "policy_id": "cipinang-ladle",
        "version": 1,
        "lapas_id": "cipinang",
        "effective_from": "2026-01-01T00:00:00+07:00",
        "rules": [
            {"target": "pnbp", "share": "25%"},
            {"target": "inmate_premi", "share": "25%"},
            {"target": "production_capital", "share": "50%"},
        ],
    }
    return {**data, **changes}


def error_of(data: dict[str, Any]) -> str:
    with pytest.raises(PolicyError) as caught:
        parse_policies([data], "p.yaml")
    return str(caught.value)


def deduction(**fields: Any) -> dict[str, Any]:
    return {"deductions": [{"name": "koperasi", "account": KOPERASI, **fields}]}


@pytest.mark.parametrize(
    ("data", "fragments"),
    [
        (raw(base="sales"), ["field 'base'", "must be one of profit, revenue, got 'sales'"]),
        (
            raw(base="revenue", rules=[{"target": "pnbp", "share": "50%"}, {"target": "inmate_premi", "share": "50%"}]),
            ["field 'base'", "a revenue base needs a production_capital rule"],
        ),
        (raw(deductions="2%"), ["field 'deductions'", "must be a list"]),
        (raw(deductions=["koperasi"]), ["field 'deductions[0]'", "must be a mapping"]),
        (raw(**deduction(rate="2%", amount_per_unit=500)), ["field 'deductions[0]'", "exactly one of rate or amount"]),
        (raw(**deduction()), ["field 'deductions[0]'", "exactly one of rate or amount_per_unit"]),
        (raw(**deduction(rate="100%")), ["field 'deductions[0].rate'", "not between 0 and 1"]),
        (raw(**deduction(rate=0.02)), ["field 'deductions[0].rate'", "float"]),
        (raw(**deduction(amount_per_unit=0)), ["field 'deductions[0].amount_per_unit'", ">= 1"]),
        (raw(**deduction(amount_per_unit=1.5)), ["field 'deductions[0].amount_per_unit'", "whole rupiah"]),
        (raw(**deduction(rate="2%", note="x")), ["field 'deductions[0].note'", "unknown field"]),
        (raw(deductions=[{"account": KOPERASI, "rate": "2%"}]), ["field 'deductions[0].name'", "is required"]),
        (raw(deductions=[{"name": "Koperasi!", "account": KOPERASI, "rate": "2%"}]), ["field 'deductions[0].name'"]),
        (
            raw(deductions=[{"name": "a", "account": KOPERASI, "rate": "2%"}] * 2),
            ["field 'deductions[1].name'", "'a' appears twice"],
        ),
        (
            raw(deductions=[{"name": f"d{n}", "account": KOPERASI, "rate": "60%"} for n in range(2)]),
            ["field 'deductions'", "the rates sum to 6/5", "below 1"],
        ),
        (
            raw(**{"deductions": [{"name": "x", "account": "revenue:sales:cipinang", "rate": "2%"}]}),
            ["field 'deductions[0].account'", "is not a deduction account"],
        ),
        (
            raw(**{"deductions": [{"name": "x", "account": "liability:pnbp_payable:kerobokan", "rate": "2%"}]}),
            ["field 'deductions[0].account'", "belongs to another lapas than 'cipinang'"],
        ),
        (
            raw(**{"deductions": [{"name": "x", "account": "liability:koperasi", "rate": "2%"}]}),
            ["field 'deductions[0].account'", "unknown liability account 'koperasi'"],
        ),
    ],
)
def test_policy_file_errors_name_the_field(data: dict[str, Any], fragments: list[str]) -> None:
    message = error_of(data)
    assert "p.yaml: policy[0] (id 'cipinang-ladle')" in message
    for fragment in fragments:
        assert fragment in message


def test_constructing_an_invalid_policy_directly_fails() -> None:
    with pytest.raises(PolicyError, match="revenue base needs a production_capital rule"):
        policy(SplitBase.REVENUE, rules=(ShareRule(ShareTarget.PNBP, Fraction(1)),))
    with pytest.raises(PolicyError, match=r"deductions\[0\]: give exactly one of rate or amount_per_unit"):
        policy(SplitBase.PROFIT, Deduction("x", KOPERASI))


def test_the_base_is_part_of_the_version_and_a_profit_base_keeps_its_hash() -> None:
    implicit, explicit = parse_policies([raw()], "a"), parse_policies([raw(base="profit")], "b")
    assert policy_hash(implicit[0]) == policy_hash(explicit[0])
    revenue = parse_policies([raw(base="revenue")], "c")[0]
    deducted = parse_policies([raw(**deduction(rate="2%"))], "d")[0]
    assert len({policy_hash(implicit[0]), policy_hash(revenue), policy_hash(deducted)}) == 3
    assert "base" not in _body(implicit[0]) and "deductions" not in _body(implicit[0])


def test_the_stored_body_parses_back_to_the_same_version() -> None:
    data = raw(
        base="revenue",
        deductions=[
            {"name": "koperasi", "rate": "2%", "account": KOPERASI},
            {"name": "box", "amount_per_unit": 500, "account": "liability:supplier_payable:cipinang:sup-kemas"},
        ],
    )
    loaded = parse_policies([data], "file")[0]
    stored = parse_policies([_body(loaded)], "split_policies")[0]
    assert stored == loaded and policy_hash(stored) == policy_hash(loaded)
    assert stored.base is SplitBase.REVENUE and stored.deductions[1].per_unit == 500
