"""The plan's decision for orders that ended (returned or cancelled) before completion, with in-memory inputs:
their refunds are closed without posting — parked ones and later ones alike — while their settlements stay
parked, and a completed order's end changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime

from infra.messaging.envelope import Envelope, make_envelope
from services.contracts.orders import ORDER_CANCELLED, ORDER_RETURNED
from services.ledger.domain.facts import OrderFacts
from services.ledger.posting_plan import (
    ENDING_TYPES,
    POSTED_EVENT_TYPES,
    PostingInputs,
    PostingPlan,
    check_arrivals,
    plan_postings,
)
from services.ledger.requests import RecentCompletions
from tests.integration.ledger_support import Batch, completed, refunded, settled
from tests.unit.ledger.ledger_support import DEMO_POLICIES

T = datetime(2026, 5, 20, 8, tzinfo=UTC)
KEY = "shopee:shop-1:9002"
ORDER = [Batch("B-9002", "SMK-BTK-001", "sukamiskin", 2, 70_000, 15_000, "sup-kain", (("WBP-SMK002", 1),))]


def _ended(event_type: str = ORDER_RETURNED) -> Envelope:
    data = {"order_key": KEY, "channel": "shopee", "raw_status": "X", "update_time": T.isoformat()}
    return make_envelope(type=event_type, source="karya/orders", subject=KEY, data=data)


def _plan(
    work: list[Envelope], facts: dict[str, OrderFacts] | None = None, ended: dict[str, str] | None = None
) -> PostingPlan:
    inputs = PostingInputs(work, facts or {}, DEMO_POLICIES, ended=ended or {})
    return plan_postings(inputs, RecentCompletions())


def test_the_ledger_acts_on_order_ends() -> None:
    assert ENDING_TYPES <= POSTED_EVENT_TYPES
    relevant, refused = check_arrivals([_ended(), _ended(ORDER_CANCELLED)])
    assert len(relevant) == 2 and refused == []


def test_a_parked_refund_is_closed_by_the_end_of_its_order_and_the_end_is_remembered() -> None:
    refund, returned = refunded(KEY, "R1", 70_000, T), _ended()
    plan = _plan([refund, returned])  # the parked refund comes first in work, the end sorts before it
    assert plan.entries == [] and plan.parked == [] and plan.refused == []
    assert [(e.event_id, e.type) for e, _ in plan.closed] == [
        (returned.event_id, ORDER_RETURNED),
        (refund.event_id, refund.type),
    ]
    assert "returned before completion" in plan.closed[1][1] and "escrow" in plan.closed[1][1]
    assert plan.ended == {KEY: ORDER_RETURNED}


def test_a_refund_after_a_known_end_is_closed_on_arrival_but_a_settlement_stays_parked() -> None:
    refund, settlement = refunded(KEY, "R2", 10_000, T), settled(KEY, 140_000, T)
    plan = _plan([refund, settlement], ended={KEY: ORDER_CANCELLED})
    assert [e.event_id for e, _ in plan.closed] == [refund.event_id]
    assert "cancelled before completion" in plan.closed[0][1]
    assert [(e.event_id, w) for e, w in plan.parked] == [(settlement.event_id, "completion")]
    assert plan.entries == []


def test_without_an_end_a_refund_still_waits_for_its_completion() -> None:
    plan = _plan([refunded(KEY, "R1", 10_000, T)])
    assert plan.closed == [] and [w for _, w in plan.parked] == ["completion"]


def test_a_completed_orders_end_changes_nothing() -> None:
    completion = completed(KEY, ORDER, T)
    facts = {KEY: OrderFacts(KEY, "sukamiskin", completion.data)}
    plan = _plan([_ended()], facts)
    assert plan.closed == [] and plan.entries == [] and plan.parked == [] and plan.ended == {}
    assert not plan.facts[KEY].changed


def test_a_completion_and_its_return_in_one_batch_post_the_completion_only() -> None:
    plan = _plan([_ended(), completed(KEY, ORDER, T)])
    assert len(plan.entries) == 1 and plan.closed == [] and plan.ended == {}
