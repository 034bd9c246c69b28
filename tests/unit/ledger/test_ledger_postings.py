"""Posting builders: a worked example to the rupiah, balance properties, refund cumulative allocation."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.ledger.domain import accounts as acc
from services.ledger.domain.distribution import (
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
    WorkMember,
)
from services.ledger.domain.postings import (
    build_completion,
    build_distribution,
    build_payout,
    build_settlement,
)
from services.ledger.domain.refunds import LineRefund, build_line_refund
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
        ("asset:marketplace_receivable:cipinang:shopee", "D", 150_000),
        ("clearing:undistributed_proceeds:cipinang", "C", 150_000),
    }
    settled = build_settlement(SETTLEMENT, recognised_gross=150_000)
    assert lines_of(settled) == {
        ("asset:bank:cipinang:main", "D", 134_250),
        ("expense:marketplace_fee:cipinang:commission_fee", "D", 12_000),
        ("expense:marketplace_fee:cipinang:service_fee", "D", 3_000),
        ("asset:pph22_prepaid:cipinang", "D", 750),
        ("asset:marketplace_receivable:cipinang:shopee", "C", 150_000),
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
        ("liability:supplier_payable:cipinang:sup-benang", "C", 40_000),
        ("liability:pnbp_payable:cipinang", "C", 37_700),
        (f"liability:inmate_savings:{A}", "C", 14_138),
        (f"liability:inmate_savings:{B}", "C", 9_425),
        ("equity:production_capital:cipinang", "C", 32_987),
    }


def test_settlement_differences_go_to_suspense_on_either_side() -> None:
    short = build_settlement(replace(SETTLEMENT, net_payout=134_000), 150_000)
    assert ("clearing:suspense:cipinang", "D", 250) in lines_of(short)
    extra = build_settlement(replace(SETTLEMENT, net_payout=135_000), 150_000)
    assert ("clearing:suspense:cipinang", "C", 750) in lines_of(extra)
    # Only money both expected and received is split: the excess waits in suspense.
    over = replace(SETTLEMENT, net_payout=135_000)
    assert plan_distribution(COMPLETION, over, DEMO_POLICIES).base == 134_250
    under = replace(SETTLEMENT, net_payout=134_000)
    assert plan_distribution(COMPLETION, under, DEMO_POLICIES).base == 134_000


# --- errors --------------------------------------------------------------------------------------


def test_over_refund_and_foreign_refund_are_refused() -> None:
    plan = plan_distribution(COMPLETION, SETTLEMENT, DEMO_POLICIES)
    allocations = COMPLETION.allocations
    with pytest.raises(RefundError, match="brings refunds to 150001, more than the gross 150000"):
        build_line_refund(plan, allocations, refund("R9", 1), 150_000, {}, {}, {})
    other = LineRefund(OrderRef("shopee:shop-cpn:999", "shopee", "cipinang"), "R1", 5, datetime(2026, 3, 1, tzinfo=UTC))
    with pytest.raises(RefundError, match="refund is for shopee:shop-cpn:999"):
        build_line_refund(plan, allocations, other, 0, {}, {}, {})


def test_payout_above_the_balance_is_refused() -> None:
    request = PayoutRequest(A, "release-1", 14_139, datetime(2026, 3, 1, tzinfo=UTC))
    with pytest.raises(InsufficientBalanceError, match="exceeds the savings balance 14138"):
        build_payout(request, {acc.inmate_savings(A): 14_138}, "cipinang")
    entry = build_payout(
        PayoutRequest(A, "release-1", 14_138, datetime(2026, 3, 1, tzinfo=UTC)),
        {acc.inmate_savings(A): 14_138},
        "cipinang",
    )
    assert lines_of(entry) == {(acc.inmate_savings(A), "D", 14_138), ("asset:bank:cipinang:main", "C", 14_138)}
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
