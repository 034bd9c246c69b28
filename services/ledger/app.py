"""The ledger service process: consumes order and settlement events, posts the double-entry journal."""

from __future__ import annotations

from prometheus_client import Counter

from infra.messaging.topics import LEDGER_ENTRIES, MARKETPLACE_SETTLEMENTS, ORDERS_EVENTS
from infra.runtime import ServiceRuntime
from infra.settings import KafkaSettings
from services.contracts.registry import EVENT_TYPES
from services.ledger.parked import ParkedGauges, run_parked_gauges
from services.ledger.posting import POSTED_EVENT_TYPES, LedgerProcessor

SCHEMA = "ledger"


def build_runtime(database_url: str, kafka: KafkaSettings) -> ServiceRuntime:
    """Wire the ledger consumer, its outbox relay and the parked-events gauges."""
    runtime = ServiceRuntime(name="ledger", schema=SCHEMA, database_url=database_url, kafka=kafka)
    conflicts = Counter(
        "karya_ledger_posting_conflicts_total",
        "Postings refused because their key was already used by a different request (alert on any)",
        registry=runtime.metrics.registry,
    )
    runtime.add_consumer(
        name="ledger",
        topics=[ORDERS_EVENTS, MARKETPLACE_SETTLEMENTS],
        handler=LedgerProcessor(conflicts),
        description="Order completions, settlements and refunds → balanced, hash-chained journal entries.",
        event_types=POSTED_EVENT_TYPES,
        # Types no contract defines are dead-lettered at arrival rather than skipped with the others.
        known_types=frozenset(EVENT_TYPES),
    )
    gauges = ParkedGauges(runtime.metrics.registry)
    # Not required for readiness: postings go on while the gauges are stale.
    runtime.add_background(
        "parked-gauges", lambda stop: run_parked_gauges(runtime.engine, gauges, stop), required=False
    )
    runtime.declare_output(LEDGER_ENTRIES, "entry_posted per journal entry, keyed by order key (or posting key).")
    return runtime
