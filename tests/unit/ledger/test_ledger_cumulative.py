"""Properties of several settlements per order and of held distributions (issue 15), on the pure plan step.

For any order and any sequence of settlements (partial ones, adjustments of nothing but cash, short or long
payouts): every entry balances; after each settlement the distribution posted so far is exactly the split of the
cumulative settlement (so rounding never drifts, whatever the number of steps); the shares sum to the distributed
base; revenue is what the settlements cleared of the receivable. An order completed without batches holds
everything in unallocated, and once allocated ends with the very same books as if it had been allocated from the
start.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from services.ledger.domain.distribution import plan_distribution
from services.ledger.domain.facts import NO_ALLOCATION, OrderFacts
from services.ledger.domain.journal import EntryKind
from services.ledger.domain.postings import build_completion
from services.ledger.requests import completion_request, settlement_request
from services.ledger.settlement_plan import cleared_amounts, cumulative, distribute, plan_settlement
from tests.unit.ledger.ledger_support import DEMO_POLICIES, INMATES, LAPAS_SKUS, MemoryLedger, at, settlement_data

KEY = "shopee:shop-x:77001"


@st.composite
def orders(draw: st.DrawFn) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """An ``order_completed`` payload (1–3 batches, material ≤ 40% of price) and 1–4 settlement payloads whose
    grosses cover part, all or more of the order, with fees, PPh 22 and a payout off by a little."""
    lapas = draw(st.sampled_from(sorted(LAPAS_SKUS)))
    allocations: list[dict[str, Any]] = []
    gross = 0
    for n in range(draw(st.integers(1, 3))):
        price, quantity = draw(st.integers(1_000, 300_000)), draw(st.integers(1, 4))
        gross += price * quantity
        members = draw(st.lists(st.sampled_from(INMATES[lapas]), min_size=1, max_size=3, unique=True))
        allocations.append(
            {
                "batch_id": f"B{n}",
                "sku": draw(st.sampled_from(LAPAS_SKUS[lapas])),
                "workshop_id": "w",
                "lapas_id": lapas,
                "quantity": quantity,
                "unit_price": price,
                "unit_material_cost": draw(st.integers(0, price * 2 // 5)),
                "supplier_id": "sup-kain",
                "work_group": [{"inmate_id": m, "work_share": draw(st.integers(1, 5))} for m in members],
            }
        )
    completion = {
        "order_key": KEY,
        "channel": "shopee",
        "lapas_id": lapas,
        "raw_status": "COMPLETED",
        "update_time": at(0).isoformat(),
        "gross_amount": gross,
        "allocations": allocations,
    }
    parts = draw(st.lists(st.integers(0, gross), min_size=1, max_size=4))
    settlements = []
    for i, part in enumerate(parts):
        fee = draw(st.integers(0, part * 8 // 100))
        pph = part * 5 // 1000
        net = max(0, part - fee - pph + draw(st.sampled_from([0, 0, 1, -1, 500, -500])))
        settlements.append(
            {
                "order_key": KEY,
                "channel": "shopee",
                "settlement_id": f"S{i}",
                "gross_amount": part,
                "fees": [{"fee_type": "commission_fee", "amount": fee}],
                "pph22_withheld": pph,
                "net_payout": net if part or net else 1,
                "settled_at": (at(3) + timedelta(days=i)).isoformat(),
            }
        )
    return completion, settlements


def _distributed(ledger: MemoryLedger) -> dict[str, int]:
    """Per account, the signed total of every distribution line posted (debits positive)."""
    total: Counter[str] = Counter()
    for entry in ledger.entries.values():
        if entry.kind is EntryKind.DISTRIBUTION:
            for line in entry.lines:
                total[line.account] += line.amount if line.side.value == "D" else -line.amount
    return {k: v for k, v in total.items() if v}


def _split_of(completion: dict[str, Any], settlements: list[dict[str, Any]]) -> tuple[dict[str, int], int]:
    """Per account, the one-step split of the cumulative settlement (signed as :func:`_distributed`), and its
    base."""
    request = completion_request(completion)
    plan = plan_distribution(
        request, cumulative([settlement_request(s, request.order) for s in settlements]), DEMO_POLICIES
    )
    total: Counter[str] = Counter()
    for _, leg in plan.legs():
        total[leg.debit] += leg.amount
        total[leg.credit] -= leg.amount
    return {k: v for k, v in total.items() if v}, plan.base


@settings(max_examples=150, deadline=None)
@given(orders())
def test_after_every_settlement_the_distribution_is_the_split_of_the_cumulative_settlement(
    order: tuple[dict[str, Any], list[dict[str, Any]]],
) -> None:
    completion, settlements = order
    request = completion_request(completion)
    facts = OrderFacts(KEY, request.order.lapas_id, completion)
    ledger = MemoryLedger()
    ledger.post([build_completion(request)])
    for k, payload in enumerate(settlements, start=1):
        outcome = plan_settlement(facts, payload, request, DEMO_POLICIES)
        ledger.post(outcome.entries)  # validates every entry: balanced, at least two lines
        assert ledger.debits == ledger.credits
        if outcome.hold is not None:  # e.g. a first part too small to cover the material cost: held, not lost
            continue
        expected, base = _split_of(completion, settlements[:k])
        assert _distributed(ledger) == expected, f"after {k} settlements"
        targets = sum(-v for a, v in _distributed(ledger).items() if v < 0)
        assert targets == base, "the shares sum to the distributed base"
    cleared = sum(cleared_amounts(request.gross, [settlement_request(s, request.order) for s in settlements]))
    held = ledger.total("clearing:unallocated_proceeds:")
    assert ledger.total("revenue:sales:") + held == cleared
    assert ledger.total("asset:marketplace_receivable:") == request.gross - cleared


@settings(max_examples=100, deadline=None)
@given(orders())
def test_an_order_held_for_want_of_batches_ends_with_the_books_of_one_allocated_from_the_start(
    order: tuple[dict[str, Any], list[dict[str, Any]]],
) -> None:
    completion, settlements = order
    direct = MemoryLedger()
    request = completion_request(completion)
    facts = OrderFacts(KEY, request.order.lapas_id, completion)
    direct.post([build_completion(request)])
    for payload in settlements:
        direct.post(plan_settlement(facts, payload, request, DEMO_POLICIES).entries)
    if facts.hold is not None:
        direct.post(distribute(facts, request, DEMO_POLICIES).entries)
    if facts.hold is not None:
        return  # the whole order cannot be distributed (proceeds below material cost): nothing to compare

    unallocated = {**completion, "allocations": []}
    held_request = completion_request(unallocated)
    held = OrderFacts(KEY, held_request.order.lapas_id, unallocated, hold=NO_ALLOCATION)
    later = MemoryLedger()
    later.post([build_completion(held_request)])
    for payload in settlements:
        outcome = plan_settlement(held, payload, held_request, DEMO_POLICIES)
        assert outcome.hold == NO_ALLOCATION and not [e for e in outcome.entries if e.kind is EntryKind.DISTRIBUTION]
        later.post(outcome.entries)
    assert later.total("revenue:sales:") == 0 and later.total("clearing:unallocated_proceeds:") == request.gross
    held.allocations = completion["allocations"]
    later.post(distribute(held, completion_request(held.effective_completion()), DEMO_POLICIES).entries)
    assert held.hold is None and held.distributed == len(settlements)
    assert _distributed(later) == _distributed(direct)
    cleared = sum(cleared_amounts(request.gross, [settlement_request(s, request.order) for s in settlements]))
    assert later.total("revenue:sales:") == direct.total("revenue:sales:") == cleared
    assert later.total("clearing:unallocated_proceeds:") == request.gross - cleared


def test_a_later_settlement_that_lowers_the_base_holds_instead_of_taking_savings_back() -> None:
    completion = {
        "order_key": KEY,
        "channel": "shopee",
        "lapas_id": "sukamiskin",
        "raw_status": "COMPLETED",
        "update_time": at(0).isoformat(),
        "gross_amount": 100_000,
        "allocations": [
            {
                "batch_id": "B0",
                "sku": "SMK-BTK-001",
                "workshop_id": "w",
                "lapas_id": "sukamiskin",
                "quantity": 1,
                "unit_price": 100_000,
                "unit_material_cost": 10_000,
                "supplier_id": "sup-kain",
                "work_group": [{"inmate_id": "WBP-SUK001", "work_share": 1}],
            }
        ],
    }

    def settlement(sid: str, gross: int, fee: int, net: int) -> dict[str, Any]:
        return settlement_data(KEY, sid, gross, fee, net)

    request = completion_request(completion)
    facts = OrderFacts(KEY, "sukamiskin", completion)
    ledger = MemoryLedger()
    ledger.post([build_completion(request)])
    ledger.post(plan_settlement(facts, settlement("S1", 100_000, 0, 100_000), request, DEMO_POLICIES).entries)
    savings = "liability:inmate_savings:WBP-SUK001"
    assert ledger.balances[savings] == 13_500  # 15% of 90,000
    # a fee charged days later (paid out as 1 rupiah): B falls from 100,000 to 90,001
    later = plan_settlement(facts, settlement("S2", 0, 9_999, 1), request, DEMO_POLICIES)
    assert later.hold is not None and "back from inmate savings" in later.hold
    ledger.post(later.entries)  # the cash side posts
    assert ledger.balances[savings] == 13_500 and facts.distributed == 1
    assert ledger.debits == ledger.credits
    # a person decides (e.g. karya ledger allocate): the take-back posts and equals the split of the total
    ledger.post(distribute(facts, request, DEMO_POLICIES).entries)
    assert ledger.balances[savings] == 12_000 and facts.hold is None and facts.distributed == 2


def test_a_settlement_beyond_the_receivable_that_moves_no_money_posts_nothing() -> None:
    """Found by the property above: after the receivable is cleared, a settlement reporting gross 1 and paying,
    charging and withholding nothing used to build an entry with no lines (refused, so the batch failed)."""
    completion = {
        "order_key": KEY,
        "channel": "shopee",
        "lapas_id": "sukamiskin",
        "raw_status": "COMPLETED",
        "update_time": at(0).isoformat(),
        "gross_amount": 1_000,
        "allocations": [
            {
                "batch_id": "B0",
                "sku": "SMK-BTK-001",
                "workshop_id": "w",
                "lapas_id": "sukamiskin",
                "quantity": 1,
                "unit_price": 1_000,
                "unit_material_cost": 0,
                "supplier_id": "sup-kain",
                "work_group": [{"inmate_id": "WBP-SUK001", "work_share": 1}],
            }
        ],
    }
    request = completion_request(completion)
    facts = OrderFacts(KEY, "sukamiskin", completion)
    ledger = MemoryLedger()
    ledger.post([build_completion(request)])
    ledger.post(plan_settlement(facts, settlement_data(KEY, "S1", 1_000, 0, 1_000), request, DEMO_POLICIES).entries)
    before = dict(ledger.balances)
    nothing = plan_settlement(facts, settlement_data(KEY, "S2", 1, 0, 0), request, DEMO_POLICIES)
    assert nothing.entries == [] and nothing.hold is None
    assert [s["settlement_id"] for s in facts.settlements] == ["S1", "S2"]  # recorded: a redelivery is known
    ledger.post(nothing.entries)
    assert ledger.balances == before
