"""Events the orders service publishes (through its outbox, keyed by order key; stock events by SKU)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from services.contracts.base import Channel, OrderKey, Payload, Rupiah

RESERVATION_CONFIRMED = "karya.orders.reservation_confirmed.v1"
RESERVATION_FAILED = "karya.orders.reservation_failed.v1"
RESERVATION_RELEASED = "karya.orders.reservation_released.v1"
RESERVATION_EXPIRED = "karya.orders.reservation_expired.v1"
ORDER_SHIPPED = "karya.orders.order_shipped.v1"
ORDER_DELIVERED = "karya.orders.order_delivered.v1"
ORDER_COMPLETED = "karya.orders.order_completed.v1"
ORDER_CANCELLED = "karya.orders.order_cancelled.v1"
ORDER_RETURNED = "karya.orders.order_returned.v1"
ORDER_ALLOCATED = "karya.orders.order_allocated.v1"
UNITS_RESTOCKED = "karya.orders.units_restocked.v1"
STOCK_AVAILABILITY_CHANGED = "karya.orders.stock_availability_changed.v1"


class WorkShareOut(Payload):
    """One inmate (pseudonym only) and their work share in a batch."""

    inmate_id: str = Field(pattern=r"^WBP-[0-9A-Z]{6}$")
    work_share: int = Field(gt=0)


class AllocationOut(Payload):
    """Units of one order taken from one production batch, with what the ledger needs to split the sale."""

    batch_id: str
    sku: str
    workshop_id: str
    lapas_id: str
    quantity: int = Field(gt=0)
    unit_price: Rupiah
    unit_material_cost: Rupiah
    supplier_id: str
    work_group: list[WorkShareOut]
    channel_product_id: str | None = Field(
        default=None, description="The listing the units were sold under, when known (refund lines name it)."
    )
    channel_sku_id: str | None = Field(default=None, description="The listing's variant id, when known.")


@dataclass(frozen=True, slots=True)
class BatchFacts:
    """What never changes about a production batch, as an allocation carries it: where it was made, how many units
    it produced, the material cost owed per unit to its supplier and its work group (pseudonym, work share).

    The one home of these facts for the orders service (which reads them with the catalogue) and the ledger (which
    checks a person's allocation against them); neither imports the other.
    """

    batch_id: str
    sku: str
    workshop_id: str
    lapas_id: str
    produced_qty: int
    unit_material_cost: int
    supplier_id: str
    work_group: tuple[tuple[str, int], ...]

    def allocation(self, quantity: int, unit_price: int) -> dict[str, Any]:
        """``quantity`` units of this batch sold at ``unit_price``, as an :class:`AllocationOut` (JSON fields)."""
        return {
            "batch_id": self.batch_id,
            "sku": self.sku,
            "workshop_id": self.workshop_id,
            "lapas_id": self.lapas_id,
            "quantity": quantity,
            "unit_price": unit_price,
            "unit_material_cost": self.unit_material_cost,
            "supplier_id": self.supplier_id,
            "work_group": [{"inmate_id": i, "work_share": s} for i, s in self.work_group],
        }


class OrderRef(Payload):
    """Fields every order event carries."""

    order_key: OrderKey
    channel: Channel
    lapas_id: str | None = None
    raw_status: str
    update_time: datetime


class ReservationConfirmed(OrderRef):
    """Stock is held for the whole order (``soft`` while unpaid, ``hard`` once paid)."""

    reservation_id: int
    hold: Literal["soft", "hard"]
    expires_at: datetime | None = None
    allocations: list[AllocationOut]


class ReservationFailed(OrderRef):
    """The order could not be covered; nothing is held."""

    reason: str


class ReservationEnded(OrderRef):
    """A hold ended without a sale: released (cancelled) or expired (unpaid past the window)."""

    reservation_id: int
    allocations: list[AllocationOut]


class OrderMoved(OrderRef):
    """The order reached a lifecycle state (shipped, delivered, cancelled)."""

    state: str


class OrderCompleted(OrderRef):
    """The buyer has the goods and the sale is final: the ledger recognises the receivable."""

    gross_amount: Rupiah
    allocations: list[AllocationOut]
    historical: bool = False


class OrderAllocated(OrderRef):
    """An order that was waiting for stock (its reservation had failed) got it later: a backorder filled when
    units were produced or restocked. ``allocations`` have the shape of :class:`OrderCompleted`'s; ``state`` is the
    order's state then (a completed order held in the ledger's unallocated proceeds is distributed on it)."""

    reservation_id: int
    state: str
    allocations: list[AllocationOut] = Field(min_length=1)


class OrderReturned(OrderRef):
    """Returned units arrived and wait in quarantine for inspection."""

    allocations: list[AllocationOut]


class UnitsRestocked(Payload):
    """Returned units of an order passed inspection and are back in stock, sellable again (``karya stock inspect
    --verdict restock``): the ledger takes their material cost back from the supplier. ``restock_id`` (the
    inspected lot) names the fact once."""

    order_key: OrderKey
    restock_id: int = Field(gt=0)
    batch_id: str
    quantity: int = Field(gt=0)
    restocked_at: datetime


class WorkshopAvailability(Payload):
    """Available-to-sell units of one SKU in one workshop."""

    workshop_id: str
    available: int = Field(ge=0)


class StockAvailabilityChanged(Payload):
    """Available-to-sell of one SKU after a batch changed it (for channel stock sync)."""

    sku: str
    available: int = Field(ge=0)
    workshops: list[WorkshopAvailability]
