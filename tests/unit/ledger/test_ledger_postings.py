"""Posting builders: a worked example to the rupiah, balance properties, refund cumulative allocation."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.ledger.domain import accounts as acc
from services.ledger.domain.distribution import (
    BatchPlan,
    DistributionPlan,
    Leg,
    cumulative_reversal,
    plan_distribution,
)
from services.ledger.domain.errors import (
    DistributionError,
    InsufficientBalanceError,
    RefundError,
    RequestError,
)
from services.ledger.domain.journal import EntryKind, JournalEntry
from services.ledger.domain.model import (
    BatchAllocation,
    CompletionRequest,
    OrderRef,
    PayoutRequest,
    RefundRequest,
    WorkMember,
)
from services.ledger.domain.postings import (
    build_completion,
    build_distribution,
    build_payout,
    build_refund,
    build_settlement,
    entries_balance_changes,
)
from tests.unit.ledger.ledger_support import (
    COMPLETION,
    DEMO_POLICIES,
    GLOVES,
    ORDER,
    SETTLEMENT,
    A,
    B,
    MemoryLedger,
    completions,
    refund,
    settlements,
)


def lines_of(entry: JournalEntry) -> set[tuple[str, str, int]]:
    return {(line.account, line.side.value, line.amount) for line in entry.lines}


# --- worked example ----------------------------------------------------------------------------


def test_worked_example_completion_settlement_distribution() -> None:
    completed = build_completion(COMPLETION)
    assert completed.posting_key == "shopee:shop-cpn:240001:completed"
    assert lines_of(completed) == {
        ("asset:marketplace_receivable:shopee", "D", 150_000),
        ("clearing:undistributed_proceeds:cipinang", "C", 150_000),
    }
    settled = build_settlement(SETTLEMENT, recognised_gross=150_000)
    assert lines_of(settled) == {
        ("asset:bank:main", "D", 134_250),
        ("expense:marketplace_fee:commission_fee", "D", 12_000),
        ("expense:marketplace_fee:service_fee", "D", 3_000),
        ("asset:pph22_prepaid", "D", 750),
        ("asset:marketplace_receivable:shopee", "C", 150_000),
        ("clearing:undistributed_proceeds:cipinang", "D", 150_000),
        ("revenue:sales:cipinang", "C", 150_000),
    }
    plan = plan_distribution(COMPLETION, SETTLEMENT, DEMO_POLICIES)
    assert plan.base == 134_250
    (distributed,) = build_distribution(plan, SETTLEMENT)
    # Gloves policy 2/5, 1/4, 7/20 of 134,250 - 40,000 = 94,250: 37,700 / 23,562.5 / 32,987.5; the tie
    # goes to premi (the earlier rule). Premi 23,563 over work shares 3:2 = 14,137.8 / 9,425.2.
    assert distributed.policy_ref == "cipinang-gloves@v1"
    assert distributed.posting_key == "shopee:shop-cpn:240001:distribution:B-GLV-26-01"
    assert lines_of(distributed) == {
        ("expense:material_cost:cipinang", "D", 40_000),
        ("expense:pnbp_share:cipinang", "D", 37_700),
        ("expense:inmate_premi:cipinang", "D", 23_563),
        ("expense:capital_allocation:cipinang", "D", 32_987),
        ("liability:supplier_payable:sup-benang", "C", 40_000),
        ("liability:pnbp_payable:cipinang", "C", 37_700),
        (f"liability:inmate_savings:{A}", "C", 14_138),
        (f"liability:inmate_savings:{B}", "C", 9_425),
        ("equity:production_capital:cipinang", "C", 32_987),
    }


def test_worked_example_partial_then_full_refund() -> None:
    plan = plan_distribution(COMPLETION, SETTLEMENT, DEMO_POLICIES)
    ledger = MemoryLedger()
    ledger.post(
        [
            build_completion(COMPLETION),
            build_settlement(SETTLEMENT, 150_000),
            *build_distribution(plan, SETTLEMENT),
        ]
    )
    cash, reversal = build_refund(plan, refund("R1", 75_000), 0, ledger.balances)
    assert cash.reverses is None  # an order may have several settlements: the refund names none of them
    assert lines_of(cash) == {("revenue:sales:cipinang", "D", 75_000), ("asset:bank:main", "C", 75_000)}
    # Half the gross takes back 67,125 of the base: half of every leg, the .5 tie to the earlier leg.
    assert reversal.reverses == "shopee:shop-cpn:240001:distribution:B-GLV-26-01"
    assert reversal.policy_ref == "cipinang-gloves@v1"
    assert lines_of(reversal) == {
        ("liability:supplier_payable:sup-benang", "D", 20_000),
        ("liability:pnbp_payable:cipinang", "D", 18_850),
        (f"liability:inmate_savings:{A}", "D", 7_069),
        (f"liability:inmate_savings:{B}", "D", 4_713),
        ("equity:production_capital:cipinang", "D", 16_493),
        ("expense:material_cost:cipinang", "C", 20_000),
        ("expense:pnbp_share:cipinang", "C", 18_850),
        ("expense:inmate_premi:cipinang", "C", 11_782),
        ("expense:capital_allocation:cipinang", "C", 16_493),
    }
    ledger.post([cash, reversal])
    assert entries_balance_changes([cash, reversal])["revenue:sales:cipinang"] == -75_000
    ledger.post(build_refund(plan, refund("R2", 75_000), 75_000, ledger.balances))
    for account, balance in ledger.balances.items():
        if not account.startswith(("asset:", "expense:marketplace_fee", "clearing:suspense")):
            assert balance == 0, account
    assert ledger.balances["asset:bank:main"] == 134_250 - 150_000


def test_refund_after_payout_goes_to_the_inmate_receivable() -> None:
    plan = plan_distribution(COMPLETION, SETTLEMENT, DEMO_POLICIES)
    ledger = MemoryLedger()
    ledger.post(
        [
            build_completion(COMPLETION),
            build_settlement(SETTLEMENT, 150_000),
            *build_distribution(plan, SETTLEMENT),
        ]
    )
    ledger.post(
        [build_payout(PayoutRequest(A, "release-1", 10_000, datetime(2026, 2, 5, tzinfo=UTC)), ledger.balances)]
    )
    ledger.post(build_refund(plan, refund("R1", 150_000), 0, ledger.balances))
    assert ledger.balances[acc.inmate_savings(A)] == 0
    assert ledger.balances[acc.inmate_receivable(A)] == 10_000
    assert ledger.balances[acc.inmate_savings(B)] == 0
    assert acc.inmate_receivable(B) not in ledger.balances


def test_a_rupiah_handed_back_settles_the_receivable_first() -> None:
    """Largest remainder is not monotone: cumulative 3 -> legs [1, 1, 1], cumulative 4 -> [0, 2, 2]."""
    legs = (
        Leg(acc.inmate_premi_expense("cipinang"), acc.inmate_savings(A), 1),
        Leg(acc.material_cost_expense("cipinang"), acc.supplier_payable("sup-1"), 3),
        Leg(acc.capital_allocation_expense("cipinang"), acc.production_capital("cipinang"), 3),
    )
    plan = DistributionPlan(ORDER, 7, 7, (BatchPlan("B1", "CPN-GLV-001", "p@v1", "0" * 64, 7, 3, legs),))
    assert cumulative_reversal(plan, 3) == [1, 1, 1]
    assert cumulative_reversal(plan, 4) == [0, 2, 2]
    # The inmate's 1 rupiah of premi was paid out: the first refund books it as owed, the next hands it back.
    balances = {acc.inmate_savings(A): 0}
    _, first = build_refund(plan, refund("R1", 3), 0, balances)
    assert (acc.inmate_receivable(A), "D", 1) in lines_of(first)
    balances[acc.inmate_receivable(A)] = 1
    _, second = build_refund(plan, refund("R2", 1), 3, balances)
    assert (acc.inmate_receivable(A), "C", 1) in lines_of(second)
    assert (acc.inmate_premi_expense("cipinang"), "D", 1) in lines_of(second)
    assert acc.inmate_savings(A) not in {line.account for line in second.lines}


def test_settlement_differences_go_to_suspense_on_either_side() -> None:
    short = build_settlement(replace(SETTLEMENT, net_payout=134_000), 150_000)
    assert ("clearing:suspense", "D", 250) in lines_of(short)
    extra = build_settlement(replace(SETTLEMENT, net_payout=135_000), 150_000)
    assert ("clearing:suspense", "C", 750) in lines_of(extra)
    # Only money both expected and received is split: the excess waits in suspense.
    over = replace(SETTLEMENT, net_payout=135_000)
    assert plan_distribution(COMPLETION, over, DEMO_POLICIES).base == 134_250
    under = replace(SETTLEMENT, net_payout=134_000)
    assert plan_distribution(COMPLETION, under, DEMO_POLICIES).base == 134_000


def test_refund_with_returned_fees_and_a_clawback_difference() -> None:
    plan = plan_distribution(COMPLETION, SETTLEMENT, DEMO_POLICIES)
    cash, *_ = build_refund(
        plan,
        refund("R1", 10_000, fees_returned={"commission_fee": 800}, pph22_returned=50, clawback=9_000),
        0,
        {},
    )
    assert lines_of(cash) == {
        ("revenue:sales:cipinang", "D", 10_000),
        ("asset:bank:main", "C", 9_000),
        ("expense:marketplace_fee:commission_fee", "C", 800),
        ("asset:pph22_prepaid", "C", 50),
        ("clearing:suspense", "C", 150),
    }


# --- errors --------------------------------------------------------------------------------------


def test_over_refund_and_foreign_refund_are_refused() -> None:
    plan = plan_distribution(COMPLETION, SETTLEMENT, DEMO_POLICIES)
    with pytest.raises(RefundError, match="brings refunds to 150001, more than the gross 150000"):
        build_refund(plan, refund("R9", 1), 150_000, {})
    other = RefundRequest(
        OrderRef("shopee:shop-cpn:999", "shopee", "cipinang"), "R1", 5, datetime(2026, 3, 1, tzinfo=UTC)
    )
    with pytest.raises(RefundError, match="refund is for shopee:shop-cpn:999"):
        build_refund(plan, other, 0, {})


def test_payout_above_the_balance_is_refused() -> None:
    request = PayoutRequest(A, "release-1", 14_139, datetime(2026, 3, 1, tzinfo=UTC))
    with pytest.raises(InsufficientBalanceError, match="exceeds the savings balance 14138"):
        build_payout(request, {acc.inmate_savings(A): 14_138})
    entry = build_payout(
        PayoutRequest(A, "release-1", 14_138, datetime(2026, 3, 1, tzinfo=UTC)),
        {acc.inmate_savings(A): 14_138},
    )
    assert lines_of(entry) == {(acc.inmate_savings(A), "D", 14_138), ("asset:bank:main", "C", 14_138)}
    assert entry.posting_key == f"payout:{A}:release-1"


def test_proceeds_below_material_cost_are_not_distributed() -> None:
    dear = BatchAllocation("B-1", "CPN-GLV-001", 2, 75_000, 70_000, "sup-benang", (WorkMember(A, 1),))
    completion = CompletionRequest(ORDER, 150_000, COMPLETION.completed_at, (dear,))
    with pytest.raises(DistributionError, match="do not cover the material cost 140000"):
        plan_distribution(completion, SETTLEMENT, DEMO_POLICIES)


@pytest.mark.parametrize(
    "broken",
    [
        CompletionRequest(ORDER, 0, COMPLETION.completed_at, (GLOVES,)),
        CompletionRequest(ORDER, 150_000, datetime(2026, 2, 1), (GLOVES,)),
        CompletionRequest(ORDER, 150_000, COMPLETION.completed_at, (GLOVES, GLOVES)),
        CompletionRequest(OrderRef("shopee-240001", "shopee", "cipinang"), 1, COMPLETION.completed_at, (GLOVES,)),
        CompletionRequest(ORDER, 150_000.0, COMPLETION.completed_at, (GLOVES,)),  # type: ignore[arg-type]
        CompletionRequest(
            ORDER,
            1,
            COMPLETION.completed_at,
            (BatchAllocation("B", "S", 1, 1, 0, "s", (WorkMember(A, 0), WorkMember(B, Fraction(0)))),),
        ),
        CompletionRequest(ORDER, 1, COMPLETION.completed_at, (BatchAllocation("B", "S", 1, 1, 0, "s", ()),)),
    ],
)
def test_malformed_requests_are_rejected(broken: CompletionRequest) -> None:
    # (A completion without allocations is well formed: its proceeds wait in unallocated.)
    with pytest.raises(RequestError):
        build_completion(broken)


def test_settlement_request_checks() -> None:
    with pytest.raises(RequestError, match=r"fees\[commission_fee\] must be >= 0"):
        build_settlement(replace(SETTLEMENT, fees={"commission_fee": -1}), 150_000)
    with pytest.raises(RequestError, match="recognised gross"):
        build_settlement(SETTLEMENT, -1)


# --- properties over random orders ---------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_every_builder_balances_and_the_split_is_exact(data: st.DataObject) -> None:
    completion = data.draw(completions())
    settlement = data.draw(settlements(completion))
    plan = plan_distribution(completion, settlement, DEMO_POLICIES)
    ledger = MemoryLedger()
    entries = [build_completion(completion), build_settlement(settlement, completion.gross)]
    entries += build_distribution(plan, settlement)
    for entry in entries:
        assert entry.debit_total == entry.credit_total > 0
    ledger.post(entries)
    assert ledger.debits == ledger.credits
    assert ledger.total("revenue:sales:") == completion.gross
    assert ledger.total("clearing:undistributed_proceeds:") == 0
    assert ledger.total("asset:marketplace_receivable:") == 0
    distributed = sum(e.credit_total for e in entries if e.kind is EntryKind.DISTRIBUTION)
    assert (
        distributed
        == plan.base
        == min(settlement.net_payout, completion.gross - settlement.fee_total - settlement.pph22_withheld)
    )
    assert ledger.total("liability:supplier_payable:") == sum(a.material_cost for a in completion.allocations)
    assert {e.batch_id for e in entries if e.kind is EntryKind.DISTRIBUTION} <= {
        a.batch_id for a in completion.allocations
    }


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_cumulative_refunds_never_over_reverse_and_a_full_refund_reverses_exactly(
    data: st.DataObject,
) -> None:
    completion = data.draw(completions())
    settlement = data.draw(settlements(completion))
    plan = plan_distribution(completion, settlement, DEMO_POLICIES)
    ledger = MemoryLedger()
    ledger.post([build_completion(completion), build_settlement(settlement, completion.gross)])
    ledger.post(build_distribution(plan, settlement))
    after_distribution = dict(ledger.balances)
    legs = [leg for _, leg in plan.legs()]
    inmates = {leg.credit.rsplit(":", 1)[1] for leg in legs if leg.credit.startswith("liability:inmate_savings:")}
    paid_out: dict[str, int] = {}
    refunded = 0
    full = data.draw(st.booleans())
    for n in range(data.draw(st.integers(min_value=1, max_value=6))):
        if data.draw(st.booleans()) and inmates:  # sometimes an inmate is released in between
            inmate = data.draw(st.sampled_from(sorted(inmates)))
            balance = ledger.balances.get(acc.inmate_savings(inmate), 0)
            if balance > 0:
                amount = data.draw(st.integers(min_value=1, max_value=balance))
                ledger.post(
                    [build_payout(PayoutRequest(inmate, f"p{n}", amount, settlement.settled_at), ledger.balances)]
                )
                paid_out[inmate] = paid_out.get(inmate, 0) + amount
        if refunded == completion.gross:
            break
        amount = data.draw(st.integers(min_value=1, max_value=completion.gross - refunded))
        request = RefundRequest(completion.order, f"r{n}", amount, settlement.settled_at + timedelta(days=n))
        ledger.post(build_refund(plan, request, refunded, ledger.balances))
        refunded += amount
        reversed_now = cumulative_reversal(plan, refunded)
        assert all(0 <= r <= leg.amount for r, leg in zip(reversed_now, legs, strict=True))
        _check_targets(ledger.balances, after_distribution, inmates, paid_out)
    if full and refunded < completion.gross:
        request = RefundRequest(completion.order, "final", completion.gross - refunded, settlement.settled_at)
        ledger.post(build_refund(plan, request, refunded, ledger.balances))
        refunded = completion.gross
    assert ledger.debits == ledger.credits
    assert ledger.total("revenue:sales:") == completion.gross - refunded
    if refunded == completion.gross:
        for account, balance in ledger.balances.items():
            if account.startswith(
                (
                    "expense:material_cost",
                    "expense:pnbp",
                    "expense:inmate",
                    "expense:capital",
                    "liability:",
                    "equity:",
                )
            ):
                assert balance == 0, account
        for inmate in inmates:
            net = ledger.balances.get(acc.inmate_savings(inmate), 0) - ledger.balances.get(
                acc.inmate_receivable(inmate), 0
            )
            assert net + paid_out.get(inmate, 0) == 0
            assert ledger.balances.get(acc.inmate_receivable(inmate), 0) == paid_out.get(inmate, 0)


def _check_targets(
    balances: dict[str, int], distributed: dict[str, int], inmates: set[str], paid: dict[str, int]
) -> None:
    """What every target lost is between 0 and what the distribution gave it; savings never negative."""
    for account, given_amount in distributed.items():
        if account.startswith(("liability:pnbp", "liability:supplier", "equity:")):
            assert 0 <= balances.get(account, 0) <= given_amount, account
    for inmate in inmates:
        savings = balances.get(acc.inmate_savings(inmate), 0)
        receivable = balances.get(acc.inmate_receivable(inmate), 0)
        assert savings >= 0 and receivable >= 0
        kept = savings - receivable + paid.get(inmate, 0)  # premi not yet taken back
        assert 0 <= kept <= distributed.get(acc.inmate_savings(inmate), 0)
