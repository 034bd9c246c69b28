"""Every Kafka topic name in one place, with what flows on it.

``KARYA_TOPIC_PREFIX`` (read once at start) prefixes every topic and consumer group, so several isolated
deployments — or test runs — can share one cluster.
"""

from __future__ import annotations

import os

TOPIC_PREFIX = os.environ.get("KARYA_TOPIC_PREFIX", "")


def topic_name(base: str, prefix: str | None = None) -> str:
    """The full name of topic ``base`` under ``prefix`` (default: this process's prefix)."""
    return f"{TOPIC_PREFIX if prefix is None else prefix}{base}"


MARKETPLACE_ORDER_EVENTS = topic_name("marketplace.order-events")
"""Canonical marketplace order events from the gateway (keyed by order key); consumed by orders."""

MARKETPLACE_SETTLEMENTS = topic_name("marketplace.settlements")
"""Settlements, fees and refunds from the gateway (keyed by order key); consumed by the ledger."""

GATEWAY_RAW_DELIVERIES = topic_name("gateway.raw-deliveries")
"""Verified raw webhook deliveries (keyed by order key when known); consumed by the normaliser."""

ORDERS_EVENTS = topic_name("orders.events")
"""Order lifecycle and reservation events (keyed by order key); consumed by the ledger."""

ORDERS_STOCK_AVAILABILITY = topic_name("orders.stock-availability")
"""Available-to-sell changes (keyed by SKU) for channel stock sync."""

LEDGER_ENTRIES = topic_name("ledger.entries")
"""Journal entries posted (keyed by posting key)."""

BASE_NAMES = (
    "marketplace.order-events",
    "marketplace.settlements",
    "gateway.raw-deliveries",
    "orders.events",
    "orders.stock-availability",
    "ledger.entries",
)
ALL_TOPICS = tuple(topic_name(b) for b in BASE_NAMES)


def dead_letter_topic(topic: str) -> str:
    """The dead-letter topic of ``topic``: ``<topic>.dlq``."""
    return f"{topic}.dlq"
