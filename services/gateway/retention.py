"""Retention of raw webhook deliveries (UU PDP): bodies are redacted in place after the retention period.

A raw delivery keeps the exact bytes a marketplace sent, buyer name, phone and address included, for
``KARYA_GATEWAY_RAW_RETENTION_DAYS`` (default 30). After that, a background task of the gateway replaces the
body and headers by their redacted form (personal keys blanked, decided in SQL by ``gateway.is_personal_key``;
see migration ``gateway_0004``), in bounded batches, each its own transaction. Rows are never deleted: they are
the audit trail (with the SHA-256 and size of the original bytes) and their dedupe keys keep a late retry of an
old delivery a duplicate. The service role cannot UPDATE the table; ``gateway.redact_raw_deliveries`` (SECURITY
DEFINER) is the only way it changes a row, and it refuses a retention under one day.

Logs carry counts and value-free error facts only; the count of redacted rows is the metric
``karya_gateway_raw_redacted_total``.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

from prometheus_client import CollectorRegistry, Counter
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from infra.errors import describe_error
from infra.logging import get_logger
from services.gateway.deps import GatewayDeps
from services.gateway.settings import GatewayConfigError

__all__ = ["RetentionMetrics", "redact_due", "run_raw_retention"]

log = get_logger(__name__)

_REDACT = text("SELECT gateway.redact_raw_deliveries(CAST(:older_than AS interval), CAST(:max_rows AS integer))")


class RetentionMetrics:
    """``karya_gateway_raw_redacted_total``: raw deliveries whose body was redacted by the retention task."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.redacted = Counter(
            "karya_gateway_raw_redacted_total",
            "Raw webhook deliveries whose body and headers were redacted after the retention period",
            registry=registry,
        )


async def redact_due(engine: AsyncEngine, retention: timedelta, batch: int, max_batches: int | None = None) -> int:
    """Redact the raw deliveries older than ``retention``, ``batch`` rows per transaction, until none is left
    (or ``max_batches`` ran); returns how many were redacted."""
    total = 0
    batches = 0
    while max_batches is None or batches < max_batches:
        async with engine.begin() as conn:
            done = int((await conn.execute(_REDACT, {"older_than": retention, "max_rows": batch})).scalar_one())
        total += done
        batches += 1
        if done < batch:
            break
    return total


async def run_raw_retention(
    engine: AsyncEngine, deps: GatewayDeps, stop: asyncio.Event, metrics: RetentionMetrics | None = None
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
        try:
            redacted = await redact_due(engine, retention, settings.gateway_raw_retention_batch)
        except Exception as exc:
            log.warning("raw_retention_round_failed", **describe_error(exc))
        else:
            if metrics is not None:
                metrics.redacted.inc(redacted)
            if redacted:
                log.info("raw_deliveries_redacted", rows=redacted, retention_days=settings.gateway_raw_retention_days)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=settings.gateway_raw_retention_interval_s)
