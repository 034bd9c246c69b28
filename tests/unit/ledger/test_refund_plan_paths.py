"""Refund paths on the pure plan step (in memory): lines matched by the channel's listing ids, a netted refund
planned together with the settlement it took below material cost, and an amount-only refund through the same
line-aware planner (default ``claw_back_premi: never``).
"""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from infra.messaging.envelope import Envelope
from services.ledger.domain import accounts
from services.ledger.domain.distribution import plan_distribution
from services.ledger.domain.journal import EntryKind, request_hash
from services.ledger.domain.refunds import Listing, match_sku, taken_by_amount_only_refunds
from services.ledger.posting_plan import PostingInputs, PostingPlan, plan_postings
from services.ledger.requests import RecentCompletions, completion_request, refund_request, settlement_request
from tests.integration.ledger_support import Batch, completed, refunded, settled
from tests.unit.ledger.ledger_support import DEMO_POLICIES, MemoryLedger

T = datetime(2026, 5, 20, 8, tzinfo=UTC)
KEY = "shopee:shop-1:9301"
X = Batch("B-X", "SMK-BTK-001", "sukamiskin", 2, 100_000, 20_000, "sup-kain", (("WBP-SMK00A", 1),))
Y = Batch("B-Y", "SMK-MBL-002", "sukamiskin", 1, 50_000, 10_000, "sup-kain", (("WBP-SMK00B", 1),))
LISTINGS = [Listing("SMK-BTK-001", "P-1", "S-1"), Listing("SMK-MBL-002", "P-2", "S-2")]


def _plan(work: list[Envelope]) -> PostingPlan:
    return plan_postings(PostingInputs(work, {}, DEMO_POLICIES, {}, {}), RecentCompletions())


def _refund(amount: int, line: dict[str, object] | None = None, **extra: object) -> Envelope:
    envelope = refunded(KEY, "RF-1", amount, T)
    if line is not None:
        envelope.data["lines"] = [{"quantity": 1, "amount": amount, **line}]
    envelope.data.update(extra)
    return envelope


def _listed_completion() -> Envelope:
    """The two-batch order, each allocation naming the listing it was sold under."""
    envelope = completed(KEY, [X, Y], T)
    for allocation, (product, sku) in zip(envelope.data["allocations"], [("P-1", "S-1"), ("P-2", "S-2")], strict=True):
        allocation["channel_product_id"], allocation["channel_sku_id"] = product, sku
    return envelope


def test_a_line_is_matched_by_seller_sku_then_channel_sku_id_then_channel_product_id() -> None:
    assert match_sku("SMK-MBL-002", "S-1", "P-1", LISTINGS) == "SMK-MBL-002"
    assert match_sku(None, "S-2", None, LISTINGS) == "SMK-MBL-002"
    assert match_sku("UNKNOWN", None, "P-2", LISTINGS) == "SMK-MBL-002"
    assert match_sku(None, "S-9", "P-1", LISTINGS) == "SMK-BTK-001"
    assert match_sku(None, None, "P-3", LISTINGS) is None
    two_variants = [Listing("A", "P-1", "S-1"), Listing("B", "P-1", "S-2")]
    assert match_sku(None, None, "P-1", two_variants) is None, "a product id naming two SKUs decides nothing"


def test_a_refund_line_naming_only_the_channel_sku_id_reverses_only_that_listings_batch() -> None:
    escrow = settled(KEY, 250_000, T, fees={"commission_fee": 15_000})
    plan = _plan([_listed_completion(), escrow, _refund(50_000, {"channel_sku_id": "S-2"})])
    assert plan.refused == [] and plan.parked == []
    reversals = {e.batch_id for e, _ in plan.entries if e.posting_key.startswith(f"{KEY}:refund:RF-1:")}
    assert reversals == {"B-Y"}
    # without the listing in the completion the line cannot be matched: spread over both batches, as before
    plain = _plan([completed(KEY, [X, Y], T), escrow, _refund(50_000, {"channel_sku_id": "S-2"})])
    assert {e.batch_id for e, _ in plain.entries if e.posting_key.startswith(f"{KEY}:refund:RF-1:")} == {"B-X", "B-Y"}


def test_an_amount_only_refund_is_spread_over_every_batch_and_keeps_the_premi_by_default() -> None:
    escrow = settled(KEY, 250_000, T, fees={"commission_fee": 15_000})
    plan = _plan([completed(KEY, [X, Y], T), escrow, _refund(25_000)])
    reversed_batches = {e.batch_id for e, _ in plan.entries if e.posting_key.startswith(f"{KEY}:refund:RF-1:")}
    assert reversed_batches == {"B-X", "B-Y"}
    touched = {line.account for e, _ in plan.entries if e.kind.value == "refund_reversal" for line in e.lines}
    assert not any(a.startswith(("liability:inmate_savings:", "asset:inmate_receivable:")) for a in touched)
    assert plan.facts[KEY].refund_taken == {"B-X": 20_000, "B-Y": 5_000}  # c = R, by quantity × unit price


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 100), st.booleans())
def test_a_netted_refund_closes_the_order_its_settlement_alone_could_not_distribute(units: int, lines: bool) -> None:
    """Three units of 100,000 at 65,000 material each; ``units`` thousand rupiah of one unit refunded and netted
    in the escrow (nothing given back): whether or not the settlement alone covers the material cost, the order is
    distributed, nothing parks, and revenue − fees − PPh 22 − distribution of the order is 0."""
    batch = Batch("B-N", "SMK-BTK-001", "sukamiskin", 3, 100_000, 65_000, "sup-kain", (("WBP-SMK00C", 1),))
    amount = units * 1_000
    net = 300_000 - 21_000 - 1_500 - amount
    escrow = settled(KEY, 300_000, T, fees={"commission_fee": 18_000, "service_fee": 3_000}, net=net)
    refund = _refund(amount, {"seller_sku": "SMK-BTK-001"} if lines else None, netted_in_settlement=True)
    plan = _plan([completed(KEY, [batch], T), escrow, refund])
    assert plan.refused == [] and plan.parked == [] and plan.conflicts == []
    assert plan.facts[KEY].hold is None
    ledger = MemoryLedger()
    ledger.post([e for e, _ in plan.entries])
    assert ledger.debits == ledger.credits
    assert ledger.total(accounts.suspense("sukamiskin")) == 0 and ledger.total(accounts.bank("sukamiskin")) == net
    assert ledger.total("liability:supplier_payable:") == 195_000
    income = sum(
        v if a.startswith("revenue:") else -v
        for a, v in ledger.balances.items()
        if a.startswith(("revenue:", "expense:", accounts.pph22_prepaid("sukamiskin")))
    )
    assert income == 0


def test_an_order_refunded_the_old_way_keeps_its_history_and_starts_from_what_it_took_back() -> None:
    """Facts as an amount-only refund of the pro-rata path left them (refunded gross, no take-back per batch): its
    redelivery is no conflict, and the next refund starts from what the old one took back per batch."""
    completion, escrow = completed(KEY, [X, Y], T), settled(KEY, 250_000, T, fees={"commission_fee": 15_000})
    request = completion_request(completion.data)
    order = _plan([completion, escrow]).facts[KEY]
    order.refunded_gross, order.refund_taken = 50_000, {}
    old = refunded(KEY, "RF-OLD", 50_000, T)
    legacy = {f"{KEY}:refund:RF-OLD": request_hash(EntryKind.REFUND, refund_request(old.data, request.order))}
    again = plan_postings(PostingInputs([old], {KEY: order}, DEMO_POLICIES, legacy, {}), RecentCompletions())
    assert again.entries == [] and again.conflicts == []
    plan = plan_postings(PostingInputs([_refund(25_000)], {KEY: order}, DEMO_POLICIES, {}, {}), RecentCompletions())
    distribution = plan_distribution(request, settlement_request(escrow.data, request.order), DEMO_POLICIES)
    before = taken_by_amount_only_refunds(distribution, 50_000)
    assert plan.facts[KEY].refund_taken == {"B-X": before["B-X"] + 20_000, "B-Y": before["B-Y"] + 5_000}
