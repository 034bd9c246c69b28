"""Every Kafka topic's base name in one place, with what flows on it.

A deployment's real names are ``<prefix><base>``: the prefix is ``KafkaSettings.topic_prefix``
(``KARYA_TOPIC_PREFIX``), read when the settings are built, so several isolated deployments — or test runs —
can share one cluster. Each service's composition root (its ``build_runtime``) turns the prefix into the topic
names it passes down (``GatewayTopics``, ``OrdersTopics``, ``LedgerTopics``); no module holds a prefixed name.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

_Topics = TypeVar("_Topics")

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
"""Journal entries posted (``entry_posted``, keyed by order key or posting key)."""

LEDGER_ORDER_EVENTS = "ledger.order-events"
"""The ledger's events about an order for the orders service (``order_settled``, ``order_allocated_by_person``;
keyed by order key): on a topic of their own so orders does not read every ``entry_posted``."""

BASE_NAMES = (
    MARKETPLACE_ORDER_EVENTS,
    MARKETPLACE_SETTLEMENTS,
    GATEWAY_RAW_DELIVERIES,
    ORDERS_EVENTS,
    ORDERS_STOCK_AVAILABILITY,
    LEDGER_ENTRIES,
    LEDGER_ORDER_EVENTS,
)


def topic_name(base: str, prefix: str) -> str:
    """The full name of topic ``base`` under ``prefix``."""
    return f"{prefix}{base}"


def consumer_group(name: str, prefix: str) -> str:
    """The consumer group of consumer ``name`` under ``prefix``: ``<prefix>karya-<name>``."""
    return f"{prefix}karya-{name}"


def dead_letter_topic(topic: str) -> str:
    """The dead-letter topic of ``topic``: ``<topic>.dlq``."""
    return f"{topic}.dlq"


def prefixed(topics: _Topics, prefix: str) -> _Topics:
    """A service's topics dataclass (every field a base name) with every name put under ``prefix``."""
    names: dict[str, Any] = {
        f.name: topic_name(getattr(topics, f.name), prefix)
        for f in dataclasses.fields(topics)  # type: ignore[arg-type]
    }
    return dataclasses.replace(topics, **names)  # type: ignore[type-var]
