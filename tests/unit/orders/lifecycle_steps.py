"""The state machine step by step, for tests: the production :func:`fold` of one status update, with the stock
movements :func:`stage_movements` gives for the stage it reached — what the orders plan does with each event. It
composes the production functions (no second model), so the lifecycle tests read like the rules."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from services.orders.domain.lifecycle import (
    APPLYING,
    OrderState,
    OrderStatusSnapshot,
    Reason,
    StockStage,
    fold,
    stage_movements,
)
from services.orders.domain.stock import MovementKind

__all__ = ["StatusUpdate", "Step", "decide"]


class StatusUpdate(NamedTuple):
    """One marketplace status change, mapped to a canonical state, at the marketplace's time of the change."""

    state: OrderState
    update_time: datetime


@dataclass(frozen=True, slots=True)
class Step:
    """What one update did: applied or not and why, the states before and after, the stock movements in order,
    the snapshot to persist and whether it differs from the one before (else nothing is written)."""

    applied: bool
    reason: Reason
    from_state: OrderState | None
    to_state: OrderState
    incoming: OrderState
    stock_movements: tuple[MovementKind, ...]
    snapshot: OrderStatusSnapshot
    changed: bool


def decide(current: OrderStatusSnapshot | None, update: StatusUpdate) -> Step:
    """Fold ``update`` into ``current`` with the production rules."""
    reason, snapshot = fold(current, update.state, update.update_time)
    before = current.stock_stage if current is not None else StockStage.NONE
    return Step(
        applied=reason in APPLYING,
        reason=reason,
        from_state=current.state if current is not None else None,
        to_state=snapshot.state,
        incoming=update.state,
        stock_movements=stage_movements(before, snapshot.stock_stage),
        snapshot=snapshot,
        changed=snapshot is not current,
    )
