"""Order lifecycle rules (services/orders/domain/lifecycle.py), one update at a time through the production fold."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.orders.domain.lifecycle import (
    ALLOWED_EDGES,
    PRE_SHIPMENT_STATES,
    RANKS,
    TERMINAL_STATES,
    OrderState,
    OrderStatusSnapshot,
    Reason,
    StockStage,
    stage_movements,
)
from services.orders.domain.stock import MovementKind, StockCounters, apply_movement
from tests.unit.orders.lifecycle_steps import StatusUpdate, Step, decide

S = OrderState
M = MovementKind
T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def at(seconds: int) -> datetime:
    return T0 + timedelta(seconds=seconds)


def upd(state: OrderState, seconds: int) -> StatusUpdate:
    return StatusUpdate(state, at(seconds))


def snap(state: OrderState, seconds: int, stage: StockStage) -> OrderStatusSnapshot:
    return OrderStatusSnapshot(state, at(seconds), stage)


def fold(updates: Iterable[StatusUpdate]) -> tuple[OrderStatusSnapshot | None, list[Step]]:
    current: OrderStatusSnapshot | None = None
    transitions = []
    for update in updates:
        transition = decide(current, update)
        transitions.append(transition)
        current = transition.snapshot
    return current, transitions


# --- tables -------------------------------------------------------------------------------------------


def test_ranks_are_unique_and_follow_the_main_path() -> None:
    assert set(RANKS) == set(OrderState)
    assert len(set(RANKS.values())) == len(RANKS)
    main = [S.PENDING_PAYMENT, S.AWAITING_FULFILMENT, S.READY_TO_SHIP, S.SHIPPED, S.DELIVERED, S.COMPLETED]
    assert [RANKS[s] for s in main] == sorted(RANKS[s] for s in main)
    assert RANKS[S.SETTLED] > RANKS[S.COMPLETED]
    assert RANKS[S.RETURN_REQUESTED] < RANKS[S.RETURNED] < RANKS[S.REFUNDED]
    assert RANKS[S.CANCEL_REQUESTED] < RANKS[S.CANCELLED] < RANKS[S.SHIPPED]


def test_terminal_and_pre_shipment_states() -> None:
    assert {S.CANCELLED, S.REFUNDED} == TERMINAL_STATES
    assert {
        S.PENDING_PAYMENT,
        S.AWAITING_FULFILMENT,
        S.READY_TO_SHIP,
        S.CANCEL_REQUESTED,
    } == PRE_SHIPMENT_STATES
    # Every explicit edge goes down in rank (upward edges need no entry).
    assert all(RANKS[frm] > RANKS[to] for frm, to in ALLOWED_EDGES)


@pytest.mark.parametrize(
    ("frm", "to", "movements"),
    [
        (StockStage.NONE, StockStage.SOFT, (M.SOFT_RESERVE,)),
        (StockStage.NONE, StockStage.HARD, (M.HARD_RESERVE,)),
        (StockStage.NONE, StockStage.CONSUMED, (M.HARD_RESERVE, M.CONSUME)),
        (StockStage.SOFT, StockStage.CONSUMED, (M.HARDEN, M.CONSUME)),
        (StockStage.SOFT, StockStage.QUARANTINED, (M.HARDEN, M.CONSUME, M.RETURN_TO_QUARANTINE)),
        (StockStage.CONSUMED, StockStage.QUARANTINED, (M.RETURN_TO_QUARANTINE,)),
        (StockStage.SOFT, StockStage.RELEASED, (M.RELEASE_SOFT,)),
        (StockStage.HARD, StockStage.RELEASED, (M.RELEASE_HARD,)),
        (StockStage.NONE, StockStage.RELEASED, ()),
        (StockStage.HARD, StockStage.SOFT, ()),
        (StockStage.RELEASED, StockStage.HARD, ()),
    ],
)
def test_stage_movements(frm: StockStage, to: StockStage, movements: tuple[MovementKind, ...]) -> None:
    assert stage_movements(frm, to) == movements


# --- example rules -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "stage", "movements"),
    [
        (S.PENDING_PAYMENT, StockStage.SOFT, (M.SOFT_RESERVE,)),
        (S.AWAITING_FULFILMENT, StockStage.HARD, (M.HARD_RESERVE,)),  # Tokopedia: first seen when paid
        (S.SHIPPED, StockStage.CONSUMED, (M.HARD_RESERVE, M.CONSUME)),
        (S.CANCELLED, StockStage.RELEASED, ()),
    ],
)
def test_new_order(state: OrderState, stage: StockStage, movements: tuple[MovementKind, ...]) -> None:
    t = decide(None, upd(state, 0))
    assert (t.applied, t.reason, t.from_state, t.to_state, t.changed) == (
        True,
        Reason.NEW_ORDER,
        None,
        state,
        True,
    )
    assert t.snapshot == snap(state, 0, stage)
    assert t.stock_movements == movements


def test_payment_hardens_the_soft_reservation() -> None:
    t = decide(snap(S.PENDING_PAYMENT, 0, StockStage.SOFT), upd(S.AWAITING_FULFILMENT, 5))
    assert (t.applied, t.reason, t.from_state, t.to_state) == (
        True,
        Reason.FORWARD,
        S.PENDING_PAYMENT,
        S.AWAITING_FULFILMENT,
    )
    assert t.stock_movements == (M.HARDEN,)


def test_stale_event_changes_nothing() -> None:
    current = snap(S.AWAITING_FULFILMENT, 10, StockStage.HARD)
    t = decide(current, upd(S.PENDING_PAYMENT, 5))
    assert (t.applied, t.reason, t.to_state, t.changed) == (False, Reason.STALE, S.AWAITING_FULFILMENT, False)
    assert t.snapshot is current
    assert t.stock_movements == ()


def test_stale_higher_rank_event_is_ignored_too() -> None:
    t = decide(snap(S.CANCEL_REQUESTED, 10, StockStage.HARD), upd(S.CANCELLED, 9))
    assert (t.applied, t.reason, t.stock_movements) == (False, Reason.STALE, ())


def test_duplicate_with_newer_time_refreshes_the_time_so_older_events_become_stale() -> None:
    current = snap(S.AWAITING_FULFILMENT, 2, StockStage.HARD)
    t = decide(current, upd(S.AWAITING_FULFILMENT, 4))
    assert (t.applied, t.reason, t.changed, t.stock_movements) == (False, Reason.DUPLICATE, True, ())
    assert t.snapshot == snap(S.AWAITING_FULFILMENT, 4, StockStage.HARD)
    # A cancel request from t=3 (rejected at t=4) must not win.
    assert decide(t.snapshot, upd(S.CANCEL_REQUESTED, 3)).reason is Reason.STALE


def test_exact_redelivery_is_a_no_op() -> None:
    first = decide(None, upd(S.PENDING_PAYMENT, 0))
    again = decide(first.snapshot, upd(S.PENDING_PAYMENT, 0))
    assert (again.applied, again.reason, again.changed, again.stock_movements) == (
        False,
        Reason.DUPLICATE,
        False,
        (),
    )


@pytest.mark.parametrize(
    ("state", "stage", "movements"),
    [
        (S.PENDING_PAYMENT, StockStage.SOFT, (M.RELEASE_SOFT,)),
        (S.AWAITING_FULFILMENT, StockStage.HARD, (M.RELEASE_HARD,)),  # e.g. TikTok ON_HOLD
        (S.READY_TO_SHIP, StockStage.HARD, (M.RELEASE_HARD,)),
        (S.CANCEL_REQUESTED, StockStage.HARD, (M.RELEASE_HARD,)),
    ],
)
def test_cancellation_before_shipment_releases(
    state: OrderState, stage: StockStage, movements: tuple[MovementKind, ...]
) -> None:
    t = decide(snap(state, 0, stage), upd(S.CANCELLED, 1))
    assert (t.applied, t.reason, t.to_state) == (True, Reason.FORWARD, S.CANCELLED)
    assert t.stock_movements == movements
    assert t.snapshot.stock_stage is StockStage.RELEASED


@pytest.mark.parametrize("state", [S.SHIPPED, S.DELIVERED, S.COMPLETED, S.SETTLED, S.RETURN_REQUESTED])
@pytest.mark.parametrize("cancel", [S.CANCELLED, S.CANCEL_REQUESTED])
def test_cancellation_after_shipment_is_ignored(state: OrderState, cancel: OrderState) -> None:
    current = snap(state, 0, StockStage.CONSUMED)
    t = decide(current, upd(cancel, 1))
    assert (t.applied, t.reason, t.snapshot, t.stock_movements) == (
        False,
        Reason.CANCEL_AFTER_SHIPMENT,
        current,
        (),
    )


def test_nothing_leaves_a_terminal_state() -> None:
    t = decide(snap(S.CANCELLED, 0, StockStage.RELEASED), upd(S.AWAITING_FULFILMENT, 1))
    assert (t.applied, t.reason, t.stock_movements) == (False, Reason.TERMINAL, ())


def test_rejected_cancel_request_returns_to_the_previous_state() -> None:
    current = snap(S.CANCEL_REQUESTED, 5, StockStage.HARD)
    t = decide(current, upd(S.READY_TO_SHIP, 6))
    assert (t.applied, t.reason, t.to_state, t.stock_movements) == (
        True,
        Reason.ALLOWED_EDGE,
        S.READY_TO_SHIP,
        (),
    )
    # Same second: the back edge is not taken (rank decides ties).
    assert decide(current, upd(S.READY_TO_SHIP, 5)).reason is Reason.REGRESSION


def test_return_branch() -> None:
    delivered = snap(S.DELIVERED, 0, StockStage.CONSUMED)
    requested = decide(delivered, upd(S.RETURN_REQUESTED, 1))
    assert (requested.applied, requested.reason, requested.stock_movements) == (True, Reason.FORWARD, ())
    returned = decide(requested.snapshot, upd(S.RETURNED, 2))
    assert returned.stock_movements == (M.RETURN_TO_QUARANTINE,)
    refunded = decide(returned.snapshot, upd(S.REFUNDED, 3))
    assert (refunded.to_state, refunded.stock_movements) == (S.REFUNDED, ())
    assert refunded.snapshot.stock_stage is StockStage.QUARANTINED
    # A rejected return goes back to delivered/completed.
    rejected = decide(requested.snapshot, upd(S.COMPLETED, 4))
    assert (rejected.applied, rejected.reason) == (True, Reason.ALLOWED_EDGE)
    # Late return after completion or settlement is accepted.
    assert decide(snap(S.SETTLED, 0, StockStage.CONSUMED), upd(S.RETURN_REQUESTED, 1)).applied


def test_stale_return_after_refund_still_quarantines_the_units() -> None:
    refunded = snap(S.REFUNDED, 9, StockStage.CONSUMED)
    t = decide(refunded, upd(S.RETURNED, 8))
    assert (t.applied, t.reason, t.to_state) == (False, Reason.STALE, S.REFUNDED)
    assert t.stock_movements == (M.RETURN_TO_QUARANTINE,)
    assert t.snapshot == snap(S.REFUNDED, 9, StockStage.QUARANTINED)


def test_stale_payment_after_a_first_seen_cancel_request_hardens() -> None:
    # Cancel request seen first (evidence: something is held), the older payment event arrives later.
    first = decide(None, upd(S.CANCEL_REQUESTED, 5))
    assert first.stock_movements == (M.SOFT_RESERVE,)
    late = decide(first.snapshot, upd(S.AWAITING_FULFILMENT, 3))
    assert (late.reason, late.to_state, late.stock_movements) == (
        Reason.STALE,
        S.CANCEL_REQUESTED,
        (M.HARDEN,),
    )


def test_regression_is_ignored() -> None:
    current = snap(S.SHIPPED, 0, StockStage.CONSUMED)
    t = decide(current, upd(S.READY_TO_SHIP, 1))
    assert (t.applied, t.reason, t.snapshot) == (False, Reason.REGRESSION, current)


def test_equal_time_higher_rank_applies() -> None:
    t = decide(snap(S.PENDING_PAYMENT, 0, StockStage.SOFT), upd(S.AWAITING_FULFILMENT, 0))
    assert (t.applied, t.reason) == (True, Reason.FORWARD)


def test_naive_times_are_rejected() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        decide(None, StatusUpdate(S.SHIPPED, datetime(2026, 1, 1)))


# --- properties over realistic lifecycles ---------------------------------------------------------------

_FORWARD: dict[OrderState, tuple[OrderState, ...]] = {
    S.PENDING_PAYMENT: (S.AWAITING_FULFILMENT, S.CANCEL_REQUESTED, S.CANCELLED),
    S.AWAITING_FULFILMENT: (S.READY_TO_SHIP, S.SHIPPED, S.CANCEL_REQUESTED, S.CANCELLED),
    S.READY_TO_SHIP: (S.SHIPPED, S.CANCEL_REQUESTED, S.CANCELLED),
    S.CANCEL_REQUESTED: (S.CANCELLED,),
    S.SHIPPED: (S.DELIVERED, S.RETURN_REQUESTED),
    S.DELIVERED: (S.COMPLETED, S.RETURN_REQUESTED),
    S.COMPLETED: (S.SETTLED, S.RETURN_REQUESTED),
    S.SETTLED: (S.RETURN_REQUESTED,),
    S.RETURN_REQUESTED: (S.RETURNED, S.REFUNDED),
    S.RETURNED: (S.REFUNDED,),
}


@st.composite
def lifecycles(draw: st.DrawFn) -> list[StatusUpdate]:
    """A lifecycle a marketplace could report: forward steps, rejected requests, re-sent states."""
    state = draw(st.sampled_from([S.PENDING_PAYMENT, S.AWAITING_FULFILMENT]))
    seconds = 0
    path = [upd(state, seconds)]
    resume: OrderState | None = None
    for _ in range(draw(st.integers(0, 12))):
        if state in TERMINAL_STATES:
            break
        options: list[OrderState] = [*_FORWARD[state], state]  # `state` again: re-sent with a newer time
        if resume is not None and state in (S.CANCEL_REQUESTED, S.RETURN_REQUESTED):
            options.append(resume)  # the request was rejected
        nxt = draw(st.sampled_from(options))
        forward = RANKS[nxt] > RANKS[state]
        seconds += draw(st.integers(0 if forward else 1, 3))
        if nxt in (S.CANCEL_REQUESTED, S.RETURN_REQUESTED) and nxt is not state:
            resume = state
        elif nxt is not state:
            resume = None
        state = nxt
        path.append(upd(state, seconds))
    return path


@st.composite
def deliveries(draw: st.DrawFn) -> tuple[list[StatusUpdate], list[StatusUpdate]]:
    """(path, what arrives): some events lost, some repeated, in any order."""
    path = draw(lifecycles())
    kept = draw(st.lists(st.sampled_from(path), min_size=1, max_size=3 * len(path)))
    return path, draw(st.permutations(kept))


def _expected_stage(received: list[StatusUpdate]) -> StockStage:
    if any(u.state is S.CANCELLED for u in received):
        return StockStage.RELEASED
    evidence = {
        S.PENDING_PAYMENT: StockStage.SOFT,
        S.CANCEL_REQUESTED: StockStage.SOFT,
        S.AWAITING_FULFILMENT: StockStage.HARD,
        S.READY_TO_SHIP: StockStage.HARD,
        S.RETURNED: StockStage.QUARANTINED,
    }
    return max(evidence.get(u.state, StockStage.CONSUMED) for u in received)


_COUNTERS_BY_STAGE = {
    StockStage.NONE: StockCounters(on_hand=5),
    StockStage.SOFT: StockCounters(on_hand=5, soft_reserved=1),
    StockStage.HARD: StockCounters(on_hand=5, allocated=1),
    StockStage.CONSUMED: StockCounters(on_hand=4),
    StockStage.QUARANTINED: StockCounters(on_hand=4, quarantined=1),
    StockStage.RELEASED: StockCounters(on_hand=5),
}


@settings(max_examples=500)
@given(deliveries())
def test_any_arrival_order_ends_in_the_latest_reported_state(
    case: tuple[list[StatusUpdate], list[StatusUpdate]],
) -> None:
    _, arrivals = case
    final, transitions = fold(arrivals)
    assert final is not None
    latest = max(arrivals, key=lambda u: (u.update_time, RANKS[u.state]))
    assert final.state is latest.state
    assert final.update_time == latest.update_time
    assert final.stock_stage is _expected_stage(arrivals)

    # The emitted movements are always valid in sequence and net out to what the final stage implies.
    counters = StockCounters(on_hand=5)
    for transition in transitions:
        for kind in transition.stock_movements:
            counters = apply_movement(counters, kind, 1).counters
    assert counters == _COUNTERS_BY_STAGE[final.stock_stage]


@given(deliveries())
def test_in_order_delivery_applies_every_state_change(
    case: tuple[list[StatusUpdate], list[StatusUpdate]],
) -> None:
    path, _ = case
    _, transitions = fold(path)
    for previous, update, transition in zip([None, *path], path, transitions, strict=False):
        if previous is None or previous.state is not update.state:
            assert transition.applied, (previous, update, transition.reason)


@given(
    st.lists(
        st.tuples(st.sampled_from(OrderState), st.integers(0, 20)).map(lambda p: upd(*p)),
        min_size=1,
        max_size=25,
    )
)
def test_arbitrary_sequences_keep_the_safety_rules(updates: list[StatusUpdate]) -> None:
    """Even for nonsense input: no stage goes back, terminal states hold, no cancel after shipment."""
    current: OrderStatusSnapshot | None = None
    counters = StockCounters(on_hand=5)
    for update in updates:
        t = decide(current, update)
        if current is not None:
            if current.state in TERMINAL_STATES:
                assert t.to_state is current.state
            if update.state is S.CANCELLED and current.state not in PRE_SHIPMENT_STATES:
                assert not t.applied
            if update.update_time < current.update_time:
                assert not t.applied and t.snapshot.update_time == current.update_time
            if current.stock_stage is StockStage.RELEASED:
                assert t.snapshot.stock_stage is StockStage.RELEASED
            elif t.snapshot.stock_stage is not StockStage.RELEASED:
                assert t.snapshot.stock_stage >= current.stock_stage
            again = decide(t.snapshot, update)
            assert not again.changed and again.stock_movements == ()
        for kind in t.stock_movements:
            counters = apply_movement(counters, kind, 1).counters
        current = t.snapshot
