"""Event type name → payload model, for validation and schema generation."""

from __future__ import annotations

from services.contracts import gateway, ledger, marketplace, orders
from services.contracts.base import Payload

EVENT_TYPES: dict[str, type[Payload]] = {
    marketplace.ORDER_STATUS_CHANGED: marketplace.OrderStatusChanged,
    marketplace.SETTLEMENT_REPORTED: marketplace.SettlementReported,
    marketplace.REFUND_REPORTED: marketplace.RefundReported,
    orders.RESERVATION_CONFIRMED: orders.ReservationConfirmed,
    orders.RESERVATION_FAILED: orders.ReservationFailed,
    orders.RESERVATION_RELEASED: orders.ReservationEnded,
    orders.RESERVATION_EXPIRED: orders.ReservationEnded,
    orders.ORDER_SHIPPED: orders.OrderMoved,
    orders.ORDER_DELIVERED: orders.OrderMoved,
    orders.ORDER_CANCELLED: orders.OrderMoved,
    orders.ORDER_COMPLETED: orders.OrderCompleted,
    orders.ORDER_RETURNED: orders.OrderReturned,
    orders.ORDER_ALLOCATED: orders.OrderAllocated,
    orders.UNITS_RESTOCKED: orders.UnitsRestocked,
    orders.STOCK_AVAILABILITY_CHANGED: orders.StockAvailabilityChanged,
    gateway.DELIVERY_RECEIVED: gateway.DeliveryReceived,
    ledger.ENTRY_POSTED: ledger.EntryPosted,
    ledger.ORDER_SETTLED: ledger.OrderSettled,
    ledger.ORDER_ALLOCATED_BY_PERSON: ledger.OrderAllocatedByPerson,
}


def event_model(type_name: str) -> type[Payload]:
    """The payload model of an event type; KeyError names the unknown type."""
    try:
        return EVENT_TYPES[type_name]
    except KeyError:
        raise KeyError(f"unknown event type {type_name!r}") from None
