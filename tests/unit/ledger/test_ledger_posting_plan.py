"""The posting and payout plan steps with in-memory inputs: no database, no broker.

What the posting use case loads (parked events, order facts, stored hashes, inmate balances) is handed to
:func:`plan_postings` as plain values; these tests check the decisions it makes from them: park, post once,
redelivery vs conflict (an amount-only refund posted under its old request hash too), refunds taking back
from the balances read before the batch as the policy's ``claw_back_premi`` says, refusals.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from infra.messaging.envelope import Envelope, make_envelope
from services.contracts.marketplace import SETTLEMENT_REPORTED, SettlementReported
from services.ledger.domain import accounts
from services.ledger.domain.errors import InsufficientBalanceError, LedgerDomainError
from services.ledger.domain.facts import OrderFacts
from services.ledger.domain.journal import EntryKind, request_hash
from services.ledger.domain.model import PayoutRequest
from services.ledger.domain.policy import ClawBack, SplitPolicy
from services.ledger.domain.postings import settlement_key
from services.ledger.payouts import PayoutFacts, plan_payout
from services.ledger.posting_plan import (
    PostingInputs,
    PostingPlan,
    check_arrivals,
    lookup_keys,
    plan_postings,
    refund_accounts,
)
from services.ledger.requests import Checked, RecentCompletions, refund_request
from tests.integration.ledger_support import Batch, completed, refunded, reissued, settled
from tests.unit.ledger.ledger_support import DEMO_POLICIES

T = datetime(2026, 5, 20, 8, tzinfo=UTC)
KEY = "shopee:shop-1:9001"
INMATE = "WBP-SMK001"
ORDER = [Batch("B-9001", "SMK-BTK-001", "sukamiskin", 3, 70_000, 15_000, "sup-kain", ((INMATE, 1),))]
SAVINGS = accounts.inmate_savings(INMATE)


def _plan(
    work: list[Envelope],
    facts: dict[str, OrderFacts] | None = None,
    known: dict[str, str] | None = None,
    balances: dict[str, int] | None = None,
    policies: list[SplitPolicy] | None = None,
) -> PostingPlan:
    inputs = PostingInputs(work, facts or {}, policies or DEMO_POLICIES, known or {}, balances or {})
    return plan_postings(inputs, RecentCompletions())


def _settled_facts(completion: Envelope, settlement: Envelope, refunded_gross: int = 0) -> dict[str, OrderFacts]:
    facts = OrderFacts(KEY, "sukamiskin", completion.data, [settlement.data], refunded_gross, distributed=1)
    return {KEY: facts}


def test_a_settlement_before_its_completion_is_parked_and_nothing_is_posted() -> None:
    plan = _plan([settled(KEY, 210_000, T)])
    assert [w for _, w in plan.parked] == ["completion"]
    assert plan.entries == [] and plan.refused == [] and plan.facts == {}


def test_completion_and_settlement_in_one_batch_post_the_sale_the_settlement_and_its_distribution() -> None:
    completion, settlement = completed(KEY, ORDER, T), settled(KEY, 210_000, T)
    plan = _plan([settlement, completion])  # accounting order, whatever the arrival order
    kinds = [e.kind for e, _ in plan.entries]
    assert kinds[:2] == [EntryKind.SALE_COMPLETED, EntryKind.SETTLEMENT]
    assert set(kinds[2:]) == {EntryKind.DISTRIBUTION}
    assert [src for _, src in plan.entries][:2] == [str(completion.event_id), str(settlement.event_id)]
    facts = plan.facts[KEY]
    assert facts.is_new and facts.settlements == [settlement.data] and facts.distributed == 1
    assert plan.inmate_changes[SAVINGS] > 0


def test_the_plan_does_not_change_the_facts_it_was_given() -> None:
    completion, settlement = completed(KEY, ORDER, T), settled(KEY, 210_000, T)
    stored = {KEY: OrderFacts(KEY, "sukamiskin", completion.data)}
    plan = _plan([settlement], stored)
    assert plan.facts[KEY].settlements == [settlement.data] and plan.facts[KEY].changed
    assert stored[KEY].settlements == [] and not stored[KEY].changed


def test_a_settlement_already_posted_is_a_redelivery_or_a_conflict_by_its_content() -> None:
    completion, settlement = completed(KEY, ORDER, T), settled(KEY, 210_000, T)
    stored = {KEY: OrderFacts(KEY, "sukamiskin", completion.data)}
    first = _plan([settlement], stored)
    after = {KEY: replace(first.facts[KEY], changed=False)}
    again = _plan([reissued(settlement)], after)
    assert again.entries == [] and again.conflicts == [] and not again.facts[KEY].changed
    changed = make_envelope(type=settlement.type, source="t", subject=KEY, data={**settlement.data, "net_payout": 1})
    conflicting = _plan([changed], after)
    key = settlement_key(KEY, settlement.data["settlement_id"])
    assert conflicting.entries == [] and [c.posting_key for c in conflicting.conflicts] == [key]


def _claw_back(mode: ClawBack) -> list[SplitPolicy]:
    return [replace(p, claw_back_premi=mode) for p in DEMO_POLICIES]


def test_an_amount_only_refund_follows_the_policys_claw_back_from_the_savings_read_before_the_batch() -> None:
    completion, settlement = completed(KEY, ORDER, T), settled(KEY, 210_000, T)
    facts = _settled_facts(completion, settlement)
    refund = refunded(KEY, "R1", 70_000, T)  # an old event: an amount, no lines, nothing given back
    assert refund_accounts([refund], facts, RecentCompletions()) == [
        accounts.inmate_savings(INMATE),
        accounts.inmate_receivable(INMATE),
    ]
    receivable = accounts.inmate_receivable(INMATE)
    never = _plan([refund], facts, balances={SAVINGS: 10**9})  # the default: the inmate keeps the premi
    assert never.inmate_changes == {} and never.facts[KEY].refunded_gross == 70_000
    assert {e.posting_key for e, _ in never.entries} == {f"{KEY}:refund:R1", f"{KEY}:refund:R1:B-9001"}
    from_savings = _claw_back(ClawBack.FROM_SAVINGS)
    paid_out = _plan([refund], facts, balances={SAVINGS: 0}, policies=from_savings)
    kept = _plan([refund], facts, balances={SAVINGS: 10**9}, policies=from_savings)
    assert paid_out.inmate_changes == {}  # nothing left in savings: production capital absorbs it
    assert kept.inmate_changes.get(receivable, 0) == 0 and kept.inmate_changes[SAVINGS] < 0
    owed = _plan([refund], facts, balances={SAVINGS: 0}, policies=_claw_back(ClawBack.RECEIVABLE))
    assert owed.inmate_changes.get(receivable, 0) > 0  # only when the policy says so


def test_a_refund_twice_in_one_batch_posts_once_and_a_changed_one_is_a_conflict() -> None:
    completion, settlement = completed(KEY, ORDER, T), settled(KEY, 210_000, T)
    facts = _settled_facts(completion, settlement)
    refund = refunded(KEY, "R1", 60_000, T)
    changed = make_envelope(type=refund.type, source="t", subject=KEY, data={**refund.data, "amount": 61_000})
    plan = _plan([refund, reissued(refund), changed], facts)
    assert {e.posting_key for e, _ in plan.entries} >= {f"{KEY}:refund:R1"}
    assert plan.facts[KEY].refunded_gross == 60_000
    assert [(c.posting_key, c.source_event) for c in plan.conflicts] == [(f"{KEY}:refund:R1", str(changed.event_id))]


def test_a_refund_posted_by_an_earlier_batch_is_a_redelivery_or_a_conflict_by_its_hash() -> None:
    completion, settlement = completed(KEY, ORDER, T), settled(KEY, 210_000, T)
    facts = _settled_facts(completion, settlement, refunded_gross=60_000)
    refund = refunded(KEY, "R1", 60_000, T)
    (key,) = [k for k in lookup_keys([refund]) if "refund" in k]
    order = RecentCompletions().request(KEY, completion.data).order
    stored = request_hash(EntryKind.REFUND, refund_request(refund.data, order))
    redelivered = _plan([refund], facts, known={key: stored})
    assert redelivered.entries == [] and redelivered.conflicts == [] and not redelivered.facts[KEY].changed
    conflicting = _plan([refund], facts, known={key: "0" * 64})
    assert [c.posting_key for c in conflicting.conflicts] == [key]


def test_a_refund_before_the_settlement_is_parked() -> None:
    completion = completed(KEY, ORDER, T)
    plan = _plan([refunded(KEY, "R1", 10_000, T)], {KEY: OrderFacts(KEY, "sukamiskin", completion.data)})
    assert [w for _, w in plan.parked] == ["settlement"]


def test_bad_content_is_refused_with_a_value_free_reason() -> None:
    broken = make_envelope(type=SETTLEMENT_REPORTED, source="t", subject=KEY, data={"order_key": KEY})
    relevant, refused = check_arrivals([broken, completed(KEY, ORDER, T)])
    assert [e.type for e in relevant] == ["karya.orders.order_completed.v1"]
    assert refused[0].envelope == broken and refused[0].facts["rule"] == "contract"
    free = completed(KEY, ORDER, T)
    free.data["gross_amount"] = 0
    plan = _plan([free])
    assert [r.reason for r in plan.refused] == ["RequestError: gross must be > 0, got 0"]
    assert plan.entries == [] and plan.facts == {}


def test_the_plan_takes_the_payload_checked_on_arrival_and_parses_a_parked_event_of_the_same_id() -> None:
    completion, settlement = completed(KEY, ORDER, T), settled(KEY, 210_000, T)
    checked = Checked()
    relevant, refused = check_arrivals([completion, settlement], checked)
    assert relevant == [completion, settlement] and refused == []
    kept = checked.payload(settlement, SettlementReported)
    assert kept is checked.payload(settlement, SettlementReported)  # parsed once, on arrival
    parked = Envelope.from_bytes(settlement.to_bytes())  # the same event, as the parked table gives it back
    assert checked.payload(parked, SettlementReported) is not kept
    assert checked.payload(parked, SettlementReported) == kept
    inputs = PostingInputs([completion, settlement], {}, DEMO_POLICIES, checked=checked)
    assert plan_postings(inputs, RecentCompletions()).entries == _plan([completion, settlement]).entries


NOW = datetime(2026, 6, 1, tzinfo=UTC)


def test_a_payout_is_planned_from_the_balance_and_refused_above_it() -> None:
    request = PayoutRequest(INMATE, "REL-1", 5_000, NOW)
    entry = plan_payout(request, PayoutFacts(None, 8_000, 8_000))
    assert entry is not None and entry.kind is EntryKind.PAYOUT and entry.debit_total == 5_000
    with pytest.raises(InsufficientBalanceError, match="savings_never_negative"):
        plan_payout(request, PayoutFacts(None, 4_999, 4_999))
    with pytest.raises(LedgerDomainError, match="balance_matches_journal"):
        plan_payout(request, PayoutFacts(None, 8_000, 7_000))


def test_a_payout_retry_is_answered_by_the_stored_request_and_a_changed_one_refused() -> None:
    first = PayoutRequest(INMATE, "REL-1", 5_000, NOW)
    stored = (request_hash(EntryKind.PAYOUT, first), NOW)
    assert plan_payout(replace(first, paid_at=datetime(2026, 6, 2, tzinfo=UTC)), PayoutFacts(stored, 0, 0)) is None
    with pytest.raises(LedgerDomainError, match="already used"):
        plan_payout(replace(first, amount=5_001), PayoutFacts(stored, 10**6, 10**6))
