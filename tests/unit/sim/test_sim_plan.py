"""The traffic plan: deterministic, within the catalogue and its stock, and every lifecycle valid."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.orders.catalogue import Channel
from sim.plan import DEFAULT_MIX, FaultRates, Plan, StepKind, plan_day
from tests.unit.sim.sim_support import catalogue

channels = pytest.importorskip("services.orders.domain.channels")
lifecycle = pytest.importorskip("services.orders.domain.lifecycle")


def test_same_seed_same_plan_other_seed_other_plan() -> None:
    first = plan_day(catalogue(), 300, seed=11, faults=FaultRates(tampered=1))
    assert first == plan_day(catalogue(), 300, seed=11, faults=FaultRates(tampered=1))
    other = plan_day(catalogue(), 300, seed=12, faults=FaultRates(tampered=1))
    assert [o.order_id for o in other.orders] != [o.order_id for o in first.orders]


def test_channel_mix_is_exact() -> None:
    plan = plan_day(catalogue(), 1000, seed=3)
    per_channel = Counter(o.channel.value for o in plan.orders)
    assert per_channel == {c: round(1000 * share) for c, share in DEFAULT_MIX.items()}
    odd = Counter(o.channel.value for o in plan_day(catalogue(), 7, seed=3, mix={"shopee": 1, "blibli": 1}).orders)
    assert sum(odd.values()) == 7 and set(odd) == {"shopee", "blibli"}


def test_orders_use_catalogue_listings_and_stay_within_stock() -> None:
    cat = catalogue()
    plan = plan_day(cat, 2000, seed=5)
    demand: Counter[str] = Counter()
    produced: Counter[str] = Counter()
    for batch in cat.batches:
        produced[batch.sku] += batch.produced_qty
    for order in plan.orders:
        assert {line.listing.shop_id for line in order.lines} == {order.shop_id}
        for line in order.lines:
            assert line.listing in cat.listings and line.listing.channel is order.channel
            assert line.quantity > 0 and line.unit_price > 0
            if order.scenario == "oversold":  # one line, one unit more than was ever produced: never reservable
                assert len(order.lines) == 1 and line.quantity == produced[line.listing.sku] + 1
            else:
                demand[line.listing.sku] += line.quantity
    assert all(demand[sku] <= produced[sku] for sku in demand)
    assert len({(o.channel, o.order_id) for o in plan.orders}) == len(plan.orders)


def _fold(order_statuses: list[tuple[str, int]], channel: Channel) -> None:
    """Fold the statuses in marketplace order: each is applied, or repeats the current state."""
    snapshot = None
    for raw, offset in order_statuses:
        state = channels.map_status(channel, raw)
        when = datetime.fromtimestamp(1_700_000_000 + offset, tz=UTC)
        reason, snapshot = lifecycle.fold(snapshot, state, when)
        assert reason in lifecycle.APPLYING or reason is lifecycle.Reason.DUPLICATE, (channel, order_statuses)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(min_value=0, max_value=2**32))
def test_every_lifecycle_is_valid_for_its_channel(seed: int) -> None:
    plan = plan_day(catalogue(), 200, seed=seed)
    for order in plan.orders:
        offsets = [s.offset for s in order.statuses]
        assert offsets == sorted(offsets) and len(set(offsets)) == len(offsets)
        _fold([(s.raw_status, s.offset) for s in order.statuses], order.channel)
        settles = [s for s in order.statuses if s.settle]
        assert len(settles) <= 1
        refunded = sum(s.refund_amount for s in order.statuses)
        assert 0 <= refunded <= order.gross
        if order.channel is Channel.BLIBLI:
            assert all(not s.webhooks for s in order.statuses)


def _steps_of(plan: Plan, kind: StepKind) -> list[tuple[int, int, int]]:
    return [(s.order, s.index, s.webhook) for s in plan.steps if s.kind is kind]


def test_every_webhook_is_delivered_or_lost_after_its_status() -> None:
    plan = plan_day(catalogue(), 500, seed=9, faults=FaultRates(lost=0.05, duplicate=0.1, tampered=2, wrong_secret=1))
    applied: set[tuple[int, int]] = set()
    fired = {(o.index, i, k) for o in plan.orders for i, s in enumerate(o.statuses) for k in range(len(s.webhooks))}
    outcome: Counter[tuple[int, int, int]] = Counter()
    for step in plan.steps:
        if step.kind is StepKind.STATUS:
            applied.add((step.order, step.index))
            continue
        assert (step.order, step.index) in applied  # never sent before the change it reports
        if step.fault not in ("duplicate", "tampered", "wrong_secret"):
            outcome[(step.order, step.index, step.webhook)] += 1
    assert set(outcome) == fired and set(outcome.values()) == {1}
    faults = Counter(s.fault for s in plan.steps)
    assert (faults["tampered"], faults["wrong_secret"]) == (2, 1)
    assert faults["duplicate"] > 0 and len(_steps_of(plan, StepKind.LOST)) > 0


def test_scenarios_cover_the_realistic_lifecycles() -> None:
    plan = plan_day(catalogue(), 2000, seed=1)
    assert {o.scenario for o in plan.orders} == {
        "completed",
        "partial_refund",
        "in_flight",
        "unpaid_expired",
        "cancelled",
        "cancel_rejected",
        "returned",
        "oversold",
        "netted_refund",
    }
    oversold = [o for o in plan.orders if o.scenario == "oversold"]
    assert {o.channel for o in oversold} == set(Channel) - {Channel.BUKALAPAK}
    assert all(o.statuses[-1].settle for o in oversold), "the marketplace completes and pays them all the same"
    netted = [o for o in plan.orders if o.scenario == "netted_refund"]  # refunded before the payout: Shopee only
    assert netted and {o.channel for o in netted} == {Channel.SHOPEE}
    assert all([bool(s.refund_amount) for s in o.statuses[-2:]] == [True, False] for o in netted)
    unpaid = [o for o in plan.orders if o.scenario == "unpaid_expired"]
    assert unpaid and {o.channel for o in unpaid} == {Channel.SHOPEE, Channel.TIKTOK_SHOP}
    assert all([s.raw_status for s in o.statuses] == ["UNPAID", "CANCELLED"] for o in unpaid)


def test_every_return_reaches_an_end() -> None:
    """A return request never stays open: the marketplace refunds every unit (the status pushed again where the
    channel does) or rejects it, and then the order completes and is paid out."""
    plan = plan_day(catalogue(), 2000, seed=1)
    returned = [o for o in plan.orders if o.scenario == "returned"]
    refunded = [o for o in returned if o.statuses[-1].refund_amount]
    rejected = [o for o in returned if o.statuses[-1].settle]
    assert refunded and rejected and len(refunded) + len(rejected) == len(returned)
    for o in refunded:
        last = o.statuses[-1]
        assert (last.refund_amount, last.refund_reason, [h.kind for h in last.webhooks]) == (
            o.gross,
            "return",
            ["status"],
        )
        assert sorted((n, q) for n, q, _ in last.refund_lines) == [(n, x.quantity) for n, x in enumerate(o.lines)]
    assert {o.statuses[-1].raw_status for o in rejected} == {"COMPLETED", "700"}
    assert all(o.statuses[-2].raw_status in ("TO_RETURN", "DELIVERED", "601") for o in rejected)


def test_too_many_orders_for_the_stock_is_refused() -> None:
    with pytest.raises(ValueError, match="stock is too small"):
        plan_day(catalogue(), 20_000, seed=1)
