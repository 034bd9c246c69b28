"""The ledger service process: consumes order and settlement events, posts the double-entry journal."""

from __future__ import annotations

from prometheus_client import Counter

from infra.runtime import ServiceRuntime
from infra.settings import KafkaSettings
from services.contracts.registry import EVENT_TYPES
from services.ledger.outbound import LedgerTopics
from services.ledger.parked import ParkedGauges, run_parked_gauges
from services.ledger.posting import POSTED_EVENT_TYPES, LedgerProcessor

SCHEMA = "ledger"


def build_runtime(database_url: str, kafka: KafkaSettings, *, topics: LedgerTopics | None = None) -> ServiceRuntime:
    """Wire the ledger consumer, its outbox relay and the parked-events gauges (``topics``: default the base names
    under ``kafka.topic_prefix``)."""
    topics = topics or LedgerTopics.with_prefix(kafka.topic_prefix)
    runtime = ServiceRuntime(name="ledger", schema=SCHEMA, database_url=database_url, kafka=kafka)
    conflicts = Counter(
        "karya_ledger_posting_conflicts_total",
        "Postings refused because their key was already used by a different request (alert on any)",
        registry=runtime.metrics.registry,
    )
    runtime.add_consumer(
        name="ledger",
        topics=[topics.orders_events, topics.settlements],
        handler=LedgerProcessor(conflicts, topics),
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
    runtime.declare_output(topics.entries, "entry_posted per journal entry, keyed by order key (or posting key).")
    return runtime
