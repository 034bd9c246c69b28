"""Prometheus metrics of the messaging core (one registry per process)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


@dataclass
class MessagingMetrics:
    """Consumer lag, outbox backlog and age, dead letters, duplicates and batch sizes."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.consumer_lag = Gauge(
            "karya_consumer_lag", "Records behind the partition end", ["group", "topic", "partition"], registry=r
        )
        self.events_applied = Counter("karya_events_applied_total", "Events applied", ["consumer"], registry=r)
        self.events_duplicate = Counter(
            "karya_events_duplicate_total", "Redelivered events skipped by the inbox", ["consumer"], registry=r
        )
        self.dead_letters = Counter(
            "karya_dead_letters_total", "Events sent to a dead-letter topic", ["consumer", "topic"], registry=r
        )
        self.batch_retries = Counter(
            "karya_batch_retries_total", "Batches retried after an error", ["consumer", "kind"], registry=r
        )
        self.batches_not_applied = Counter(
            "karya_batches_not_applied_total",
            "Batches whose error escaped the consumer core: rewound to their first offsets and fetched again",
            ["consumer"],
            registry=r,
        )
        self.waiting_for_database = Gauge(
            "karya_consumer_waiting_for_database",
            "1 while a consumer's batch waits for the database to accept it again",
            ["consumer"],
            registry=r,
        )
        self.batch_size = Histogram(
            "karya_batch_size",
            "Records per consumed batch",
            ["consumer"],
            buckets=(1, 10, 50, 100, 250, 500, 1000, 2000, 5000),
            registry=r,
        )
        self.batch_seconds = Histogram(
            "karya_batch_seconds",
            "Time to apply one batch",
            ["consumer"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=r,
        )
        self.outbox_backlog = Gauge(
            "karya_outbox_backlog",
            "Unsent outbox rows (exact up to 10,000; above, the span of their ids, an upper bound)",
            ["schema"],
            registry=r,
        )
        self.outbox_oldest_age = Gauge(
            "karya_outbox_oldest_age_seconds", "Age of the oldest unsent outbox row", ["schema"], registry=r
        )
        self.outbox_published = Counter("karya_outbox_published_total", "Outbox rows published", ["schema"], registry=r)
        self.outbox_relay_leader = Gauge(
            "karya_outbox_relay_leader", "1 while this process's relay holds its outbox's lock", ["schema"], registry=r
        )
