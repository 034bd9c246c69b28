"""Every Kafka topic name in one place, with what flows on it."""

from __future__ import annotations

MARKETPLACE_ORDER_EVENTS = "marketplace.order-events"
"""Canonical marketplace order events from the gateway (keyed by order key); consumed by orders."""

MARKETPLACE_SETTLEMENTS = "marketplace.settlements"
"""Settlements, fees and refunds from the gateway (keyed by order key); consumed by the ledger."""

GATEWAY_RAW_DELIVERIES = "gateway.raw-deliveries"
"""Verified raw webhook deliveries (keyed by order key when known); consumed by the normaliser."""

ORDERS_EVENTS = "orders.events"
"""Order lifecycle and reservation events (keyed by order key); consumed by the ledger."""

ORDERS_STOCK_AVAILABILITY = "orders.stock-availability"
"""Available-to-sell changes (keyed by SKU) for channel stock sync."""

LEDGER_ENTRIES = "ledger.entries"
"""Journal entries posted (keyed by posting key)."""

ALL_TOPICS = (
    MARKETPLACE_ORDER_EVENTS,
    MARKETPLACE_SETTLEMENTS,
    GATEWAY_RAW_DELIVERIES,
    ORDERS_EVENTS,
    ORDERS_STOCK_AVAILABILITY,
    LEDGER_ENTRIES,
)


def dead_letter_topic(topic: str) -> str:
    """The dead-letter topic of ``topic``: ``<topic>.dlq``."""
    return f"{topic}.dlq"
