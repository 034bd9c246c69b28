"""Retention of raw webhook deliveries (UU PDP): bodies are redacted in place after the retention period.

A raw delivery keeps the exact bytes a marketplace sent, buyer name, phone and address included, for
``KARYA_GATEWAY_RAW_RETENTION_DAYS`` (default 30). After that, a background task of the gateway replaces the
body and headers by their redacted form (personal keys blanked, decided in SQL by ``gateway.is_personal_key``;
see migration ``gateway_0004``), in bounded batches, each its own transaction. Rows are never deleted: they are
the audit trail (with the SHA-256 and size of the original bytes) and their dedupe keys keep a late retry of an
old delivery a duplicate. The service role cannot UPDATE the table; ``gateway.redact_raw_deliveries`` (SECURITY
DEFINER) is the only way it changes a row, and it refuses a retention under one day. The normaliser's dead
letters keep the delivery event (the body again): their payloads are redacted the same way
(``gateway.redact_dead_letters``, migration ``gateway_0005``).

Logs carry counts and value-free error facts only; the count of redacted rows is the metric
``karya_gateway_raw_redacted_total{table}``.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

from prometheus_client import CollectorRegistry, Counter
from sqlalchemy import text

from infra.db.unit_of_work import Database
from infra.errors import describe_error
from infra.logging import get_logger
from services.gateway.deps import GatewayDeps
from services.gateway.settings import GatewayConfigError

__all__ = ["RetentionMetrics", "redact_due", "run_raw_retention"]

log = get_logger(__name__)

_TABLES = ("raw_deliveries", "dead_letters")
_REDACT = "SELECT {schema}.redact_{table}(CAST(:older_than AS interval), CAST(:max_rows AS integer))"


class RetentionMetrics:
    """``karya_gateway_raw_redacted_total{table}``: rows whose copy of a webhook body the retention task redacted
    (``raw_deliveries``, ``dead_letters``)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.redacted = Counter(
            "karya_gateway_raw_redacted_total",
            "Rows holding a webhook body (raw deliveries, dead letters) redacted after the retention period",
            ["table"],
            registry=registry,
        )


async def redact_due(
    db: Database,
    retention: timedelta,
    batch: int,
    table: str = "raw_deliveries",
    max_batches: int | None = None,
) -> int:
    """Redact the rows of ``table`` (``raw_deliveries`` or ``dead_letters`` of ``db``, the gateway's) older than
    ``retention``, ``batch`` rows per transaction, until none is left (or ``max_batches`` ran); returns how many
    were redacted."""
    if table not in _TABLES:
        raise ValueError(f"no redaction for {table!r}")
    statement = text(_REDACT.format(schema=db.schema, table=table))
    total = 0
    batches = 0
    while max_batches is None or batches < max_batches:
        async with db.begin() as uow:
            done = int((await uow.conn.execute(statement, {"older_than": retention, "max_rows": batch})).scalar_one())
        total += done
        batches += 1
        if done < batch:
            break
    return total


async def run_raw_retention(
    db: Database, deps: GatewayDeps, stop: asyncio.Event, metrics: RetentionMetrics | None = None
) -> None:
    """Redact raw deliveries past the retention every ``KARYA_GATEWAY_RAW_RETENTION_INTERVAL_S`` until ``stop``.

    A failed round is logged (value-free) and retried at the next one; the task itself only ends with ``stop``.
    """
    try:
        settings = deps.settings
    except GatewayConfigError:
        # The gateway does not serve without its settings (the webhook router stops the process).
        log.error("raw_retention_not_configured")
        await stop.wait()
        return
    retention = timedelta(days=settings.gateway_raw_retention_days)
    while not stop.is_set():
        for table in _TABLES:
            try:
                redacted = await redact_due(db, retention, settings.gateway_raw_retention_batch, table)
            except Exception as exc:
                log.warning("raw_retention_round_failed", table=table, **describe_error(exc))
                continue
            if metrics is not None:
                metrics.redacted.labels(table=table).inc(redacted)
            if redacted:
                days = settings.gateway_raw_retention_days
                log.info("raw_deliveries_redacted", table=table, rows=redacted, retention_days=days)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=settings.gateway_raw_retention_interval_s)
