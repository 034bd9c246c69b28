"""Properties of line-aware refunds (services/ledger/domain/refunds.py), pure, with Hypothesis.

Per order and any sequence of line refunds: the refunded gross per batch sums exactly to the refund and each line's
part is its largest-remainder split over the batches of its SKU; a refund whose lines explain its whole amount
touches no batch outside its lines; every entry balances; each refund moves the order's revenue − fees − PPh 22 −
distribution by exactly zero (no residual nobody owns); no batch gives back more than it was distributed; and the
premi follows the policy's ``claw_back_premi``.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.ledger.domain.distribution import DistributionPlan, plan_distribution
from services.ledger.domain.errors import PolicyError, RefundError
from services.ledger.domain.journal import JournalEntry
from services.ledger.domain.model import CompletionRequest
from services.ledger.domain.policy import ClawBack, policy_hash
from services.ledger.domain.policy_file import parse_policies
from services.ledger.domain.refunds import LineRefund, RefundedLine, build_line_refund, gross_per_batch
from tests.unit.ledger.ledger_support import (
    COMPLETION,
    DEMO_POLICIES,
    ORDER,
    SETTLEMENT,
    A,
    B,
    completions,
    settlements,
)


@st.composite
def refunds_of(draw: st.DrawFn, completion: CompletionRequest, left: int, explained: bool) -> LineRefund:
    """A refund of at most ``left`` with lines on the order's SKUs (``explained``: the lines are the whole amount)."""
    skus = sorted({a.sku for a in completion.allocations})
    lines: list[RefundedLine] = []
    budget = draw(st.integers(1, max(1, left)))
    for sku in draw(st.lists(st.sampled_from(skus), min_size=1, max_size=3, unique=True)):
        amount = draw(st.integers(0 if lines else 1, budget - sum(x.amount for x in lines)))
        lines.append(RefundedLine(sku, draw(st.integers(1, 3)), amount))
    amount = sum(x.amount for x in lines) if explained else budget
    returned = draw(st.integers(0, amount))
    fees = draw(st.integers(0, returned))
    return LineRefund(
        completion.order,
        f"RF-{draw(st.integers(1, 10**6))}",
        amount,
        completion.completed_at + timedelta(days=9),
        tuple(lines),
        fees_returned=fees,
        pph22_returned=returned - fees,
    )


def residual(entries: list[JournalEntry]) -> int:
    """Revenue − fees − PPh 22 − distribution expenses over ``entries``."""
    total = 0
    for entry in entries:
        for line in entry.lines:
            if line.account.startswith(("revenue:", "expense:", "asset:pph22_prepaid:")):
                total += line.amount if line.side.value == "C" else -line.amount
    return total


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_refunded_gross_per_batch_is_exact_and_stays_on_the_lines(data: st.DataObject) -> None:
    completion = data.draw(completions())
    refund = data.draw(refunds_of(completion, completion.gross, explained=data.draw(st.booleans())))
    gross = gross_per_batch(completion.allocations, refund)
    assert gross is not None
    assert sum(gross) == refund.amount
    refunded_skus = {x.sku for x in refund.lines if x.amount}
    if refund.amount == sum(x.amount for x in refund.lines):
        for allocation, part in zip(completion.allocations, gross, strict=True):
            if allocation.sku not in refunded_skus:
                assert part == 0, "a batch outside the refunded lines is touched"
    if len(refund.lines) == 1 and refund.amount == refund.lines[0].amount:  # largest remainder, within a rupiah
        matches = [a for a in completion.allocations if a.sku == refund.lines[0].sku]
        weight = sum(a.quantity * a.unit_price for a in matches)
        for allocation, part in zip(completion.allocations, gross, strict=True):
            if allocation in matches:
                exact = Fraction(refund.amount * allocation.quantity * allocation.unit_price, weight)
                assert abs(part - exact) < 1


def test_a_line_for_a_sku_the_order_does_not_have_is_not_matched() -> None:
    completion = COMPLETION
    refund = LineRefund(completion.order, "RF-1", 10, completion.completed_at, (RefundedLine("NOPE-001", 1, 10),))
    assert gross_per_batch(completion.allocations, refund) is None


def _plan(data: st.DataObject) -> tuple[CompletionRequest, DistributionPlan]:
    completion = data.draw(completions())
    settlement = data.draw(settlements(completion))
    return completion, plan_distribution(completion, settlement, DEMO_POLICIES)


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_refunds_close_the_books_and_follow_the_claw_back_policy(data: st.DataObject) -> None:
    completion, plan = _plan(data)
    mode = data.draw(st.sampled_from(list(ClawBack)))
    modes = {b.policy_ref: mode for b in plan.batches}
    balances = {leg.credit: leg.amount for _, leg in plan.legs() if "inmate_savings" in leg.credit}
    balances = {a: data.draw(st.integers(0, v)) for a, v in sorted(balances.items())}  # some was paid out
    refunded, taken = 0, dict[str, int]()
    for n in range(data.draw(st.integers(1, 3))):
        if refunded == plan.gross:
            break
        explained = data.draw(st.booleans())
        refund = replace(data.draw(refunds_of(completion, plan.gross - refunded, explained)), refund_id=f"RF-{n}")
        entries, after = build_line_refund(plan, completion.allocations, refund, refunded, taken, modes, balances)
        for entry in entries:
            entry.validate()
        assert residual(entries) == 0, "a refund leaves a residual nobody owns"
        proceeds = {b.batch_id: b.proceeds for b in plan.batches}
        assert all(before <= after[b] <= proceeds[b] for b, before in {**dict.fromkeys(after, 0), **taken}.items())
        if refund.amount == sum(x.amount for x in refund.lines):
            lined = {x.sku for x in refund.lines if x.amount}
            outside = {a.batch_id for a in completion.allocations if a.sku not in lined}
            assert not {e.batch_id for e in entries[1:]} & outside
        inmate_lines = [(ln, e) for e in entries[1:] for ln in e.lines if "inmate_" in ln.account]
        if mode is ClawBack.NEVER:
            assert all(ln.side.value == "C" for ln, _ in inmate_lines), "never: no premi taken back"
        if mode is not ClawBack.RECEIVABLE:
            assert not [ln for ln, _ in inmate_lines if "inmate_receivable" in ln.account]
        for ln, _ in inmate_lines:
            if ln.account.startswith("liability:inmate_savings:"):
                balances[ln.account] = balances.get(ln.account, 0) + (ln.amount if ln.side.value == "C" else -ln.amount)
        assert all(v >= 0 for v in balances.values()), "savings below zero"
        refunded, taken = refunded + refund.amount, after


def test_more_given_back_than_refunded_is_refused() -> None:
    completion = COMPLETION
    refund = LineRefund(completion.order, "RF-1", 100, completion.completed_at, fees_returned=80, pph22_returned=30)
    with pytest.raises(RefundError, match="exceed the refund's amount"):
        refund.validate()


def test_claw_back_premi_is_parsed_hashed_and_validated() -> None:
    raw = {
        "policy_id": "x-standard",
        "version": 1,
        "lapas_id": "x",
        "effective_from": "2026-01-01T00:00:00+07:00",
        "rules": [{"target": "pnbp", "share": "1/2"}, {"target": "inmate_premi", "share": "1/2"}],
    }
    (default,) = parse_policies({"policies": [raw]}, "t")
    (saving,) = parse_policies({"policies": [{**raw, "claw_back_premi": "from_savings"}]}, "t")
    assert default.claw_back_premi is ClawBack.NEVER and saving.claw_back_premi is ClawBack.FROM_SAVINGS
    assert policy_hash(default) != policy_hash(saving)
    with pytest.raises(PolicyError, match="claw_back_premi"):
        parse_policies({"policies": [{**raw, "claw_back_premi": "always"}]}, "t")


@pytest.mark.parametrize("mode", list(ClawBack))
def test_full_refund_of_the_worked_example_by_claw_back_mode(mode: ClawBack) -> None:
    """Two pairs of gloves (policy cipinang-gloves), fully refunded with nothing given back, A's savings down to
    5,000 and B's to 0: never takes no premi back; from_savings takes A's 5,000 and capital absorbs the rest;
    receivable takes A's 5,000 and books the rest on the inmates. Material stays with the supplier."""
    plan = plan_distribution(COMPLETION, SETTLEMENT, DEMO_POLICIES)
    (batch,) = plan.batches
    refund = LineRefund(ORDER, "RF-1", 150_000, COMPLETION.completed_at, (RefundedLine("CPN-GLV-001", 2, 150_000),))
    balances = {f"liability:inmate_savings:{A}": 5_000, f"liability:inmate_savings:{B}": 0}
    entries, taken = build_line_refund(plan, COMPLETION.allocations, refund, 0, {}, {batch.policy_ref: mode}, balances)
    assert taken == {batch.batch_id: plan.base}
    lines = {(ln.account, ln.side.value): ln.amount for ln in entries[1].lines}
    premi = sum(leg.amount for leg in batch.legs if "inmate_savings" in leg.credit)
    from_savings = 0 if mode is ClawBack.NEVER else 5_000
    receivable = premi - 5_000 if mode is ClawBack.RECEIVABLE else 0
    assert lines.get((f"liability:inmate_savings:{A}", "D"), 0) == from_savings
    assert (f"liability:inmate_savings:{B}", "D") not in lines
    owed = sum(v for (account, side), v in lines.items() if account.startswith("asset:inmate_receivable:"))
    assert owed == receivable
    assert ("liability:supplier_payable:cipinang:sup-benang", "D") not in lines, "material stays with the supplier"
    capital_leg = sum(leg.amount for leg in batch.legs if leg.credit.startswith("equity:"))
    excess = refund.cash - plan.base  # 150,000 paid back, 134,250 distributed: capital bears the fees kept
    absorbed = batch.material_cost + premi - from_savings - receivable + excess
    assert lines[("equity:production_capital:cipinang", "D")] == capital_leg + absorbed
    assert residual(entries) == 0
