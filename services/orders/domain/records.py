"""Working copies of orders, their lines and reservations while one batch or command is planned.

Plain data: adapters load them, the plan functions change them in memory, adapters write what changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple
from uuid import UUID

from services.contracts.orders import BatchFacts
from services.orders.domain.lifecycle import OrderStatusSnapshot
from services.orders.domain.stock import MovementKind

__all__ = ["BatchFacts", "Held", "History", "Line", "Movement", "OrderRow", "Reservation"]


@dataclass(frozen=True, slots=True)
class Line:
    """An order line resolved to our SKU and the listing's workshop."""

    line_no: int
    sku: str
    workshop_id: str
    quantity: int
    unit_price: int


@dataclass(frozen=True, slots=True)
class Held:
    """Units of one order held in one batch."""

    batch_id: str
    sku: str
    workshop_id: str
    quantity: int


@dataclass
class Reservation:
    """The live reservation of an order (at most one is soft or hard at a time)."""

    reservation_id: int
    state: str
    expires_at: datetime | None
    allocations: list[Held]
    is_new: bool = False
    changed: bool = False


@dataclass
class OrderRow:
    """Working copy of one order during a batch."""

    order_key: str
    channel: str
    shop_id: str
    order_id: str
    snapshot: OrderStatusSnapshot | None
    lapas_id: str | None = None
    historical: bool = False
    gross_amount: int | None = None
    parked_reason: str | None = None
    reservation_failed: str | None = None  # why no stock could be held, while none is
    lines: list[Line] = field(default_factory=list)
    is_new: bool = False
    lines_new: bool = False
    reservation: Reservation | None = None


class History:
    """Decisions of the state machine about the events of one batch, kept as the columns of one insert."""

    __slots__ = (
        "decision",
        "event_id",
        "from_state",
        "order_key",
        "raw_status",
        "requested_state",
        "to_state",
        "update_time",
    )

    def __init__(self) -> None:
        """No decisions yet."""
        self.order_key: list[str] = []
        self.from_state: list[str | None] = []
        self.to_state: list[str] = []
        self.requested_state: list[str] = []
        self.raw_status: list[str] = []
        self.update_time: list[datetime] = []
        self.decision: list[str] = []
        self.event_id: list[UUID] = []

    def add(
        self,
        order_key: str,
        from_state: str | None,
        to_state: str,
        requested_state: str,
        raw_status: str,
        update_time: datetime,
        decision: str,
        event_id: UUID,
    ) -> None:
        """One decision about one event."""
        self.order_key.append(order_key)
        self.from_state.append(from_state)
        self.to_state.append(to_state)
        self.requested_state.append(requested_state)
        self.raw_status.append(raw_status)
        self.update_time.append(update_time)
        self.decision.append(decision)
        self.event_id.append(event_id)

    def __len__(self) -> int:
        return len(self.order_key)


class Movement(NamedTuple):
    """One stock movement on one production batch."""

    batch_id: str
    kind: MovementKind
    quantity: int
    reason: str
    order_key: str | None = None
    event_id: UUID | None = None
