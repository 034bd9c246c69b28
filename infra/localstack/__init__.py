"""Local development/test stack: a real Apache Kafka broker and a real PostgreSQL server on loopback.

Both run as detached processes that outlive the caller; state lives under ``<repo>/.local`` (or
``$KARYA_STATE_DIR``) and each is stopped by its recorded pid. All functions are synchronous and safe to call
from inside a running event loop (readiness checks run on a worker thread there).

Environment overrides: ``KARYA_STATE_DIR``, ``KARYA_KAFKA_VERSION`` (default 4.1.1), ``KARYA_KAFKA_PORT``
(19092), ``KARYA_KAFKA_CONTROLLER_PORT`` (19093), ``KARYA_PG_PORT`` (15432), ``XDG_CACHE_HOME`` (jar cache).
The default ports lie outside Linux's ephemeral range (32768-60999). Without an override, a service that already
runs is found on the ports it recorded when it started (a stack started under older defaults keeps them until
it is restarted; :func:`stack_port_notes` says so).
"""

from __future__ import annotations

from dataclasses import dataclass

from infra.localstack._common import LocalStackError, Progress
from infra.localstack.kafka import (
    KafkaInfo,
    ensure_kafka,
    kafka_port_note,
    kafka_server_version,
    kafka_status,
    stop_kafka,
)
from infra.localstack.postgres import (
    PostgresInfo,
    ensure_postgres,
    postgres_port_note,
    postgres_server_version,
    postgres_status,
    stop_postgres,
)

__all__ = [
    "KafkaInfo",
    "LocalStackError",
    "PostgresInfo",
    "Progress",
    "StackInfo",
    "ensure_kafka",
    "ensure_postgres",
    "ensure_stack",
    "kafka_server_version",
    "kafka_status",
    "postgres_server_version",
    "postgres_status",
    "stack_port_notes",
    "stack_status",
    "stop_kafka",
    "stop_postgres",
    "stop_stack",
]


@dataclass(frozen=True)
class StackInfo:
    """Both local services, running and reachable."""

    kafka: KafkaInfo
    postgres: PostgresInfo


def ensure_stack(progress: Progress | None = None) -> StackInfo:
    """Start (or find running) PostgreSQL and Kafka; idempotent."""
    postgres = ensure_postgres(progress)
    kafka = ensure_kafka(progress)
    return StackInfo(kafka=kafka, postgres=postgres)


def stop_stack(progress: Progress | None = None) -> tuple[bool, bool]:
    """Stop Kafka, then PostgreSQL; returns (kafka_was_running, postgres_was_running)."""
    return stop_kafka(progress), stop_postgres(progress)


def stack_port_notes() -> list[str]:
    """Warnings for running services found on ports inside the ephemeral range (started under old defaults)."""
    return [note for note in (kafka_port_note(), postgres_port_note()) if note is not None]


def stack_status() -> tuple[KafkaInfo | None, PostgresInfo | None]:
    """Current state of (Kafka, PostgreSQL); None for a service that is down."""
    return kafka_status(), postgres_status()
