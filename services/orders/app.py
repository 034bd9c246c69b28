"""The orders service process: consumes marketplace order events, holds stock, emits order events."""

from __future__ import annotations

from infra.runtime import ServiceRuntime
from infra.settings import KafkaSettings
from services.orders.fulfilment import OrderEventProcessor
from services.orders.outbound import OrdersTopics
from services.orders.sweeper import run_sweeper

SCHEMA = "orders"


def build_runtime(database_url: str, kafka: KafkaSettings, *, topics: OrdersTopics | None = None) -> ServiceRuntime:
    """Wire the orders consumer, its outbox relay and the expiry sweeper (``topics``: default the base names under
    ``kafka.topic_prefix``)."""
    topics = topics or OrdersTopics.with_prefix(kafka.topic_prefix)
    runtime = ServiceRuntime(name="orders", schema=SCHEMA, database_url=database_url, kafka=kafka)
    runtime.add_consumer(
        name="orders",
        topics=[topics.order_events],
        handler=OrderEventProcessor(topics=topics),
        description="Canonical marketplace order events → order state, stock reservations, order events.",
    )
    runtime.declare_output(
        topics.events,
        "Order lifecycle and reservation events keyed by order key: reservation_confirmed / _failed / _released / "
        "_expired, order_shipped / _delivered / _completed / _cancelled / _returned (schemas/events/karya.orders.*).",
    )
    runtime.declare_output(
        topics.stock_availability,
        "stock_availability_changed keyed by SKU: available-to-sell per workshop, for channel stock sync.",
    )
    runtime.add_background("sweeper", lambda stop: run_sweeper(runtime.engine, stop, topics))
    return runtime
