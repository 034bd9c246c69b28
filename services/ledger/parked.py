"""Parked events made visible: settlements, refunds and restocks waiting for their order (``ledger.pending_events``).

An event parks when it arrives before what it depends on — a settlement before its order's completion, a refund
before the settlement, a restock before the distribution. One that never finds it (a settlement for an order the
ledger never saw completed) would otherwise wait unseen; the gauges count what waits and how old the oldest is, per
``waiting_for`` (every value of :data:`WAITING_FOR` exported, 0 when nothing waits), and ``karya ledger pending``
lists it.
"""

from __future__ import annotations

import asyncio

from prometheus_client import CollectorRegistry, Gauge
from sqlalchemy.ext.asyncio import AsyncEngine

from infra.db.unit_of_work import UnitOfWork
from infra.logging import get_logger
from infra.supervision import every
from services.ledger.adapters.facts_repo import parked_summary
from services.ledger.restock import WAITING_FOR as RESTOCK_WAITS_FOR

log = get_logger(__name__)

WAITING_FOR = ("completion", "settlement", "allocation", RESTOCK_WAITS_FOR)
"""What a parked event can wait for (always exported, 0 when nothing waits)."""


class ParkedGauges:
    """``karya_ledger_parked_events{waiting_for}`` and ``karya_ledger_parked_oldest_age_seconds{waiting_for}``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.count = Gauge(
            "karya_ledger_parked_events",
            "Events parked in the ledger's pending_events, by what they wait for",
            ["waiting_for"],
            registry=registry,
        )
        self.oldest_age = Gauge(
            "karya_ledger_parked_oldest_age_seconds",
            "Age of the oldest parked event, by what it waits for (0 when none waits)",
            ["waiting_for"],
            registry=registry,
        )
        self.set({})

    def set(self, summary: dict[str, tuple[int, float]]) -> None:
        """Export ``summary`` (waiting_for → (count, oldest age s)); labels absent from it read 0."""
        for waiting_for in sorted({*WAITING_FOR, *summary}):
            count, oldest = summary.get(waiting_for, (0, 0.0))
            self.count.labels(waiting_for).set(count)
            self.oldest_age.labels(waiting_for).set(oldest)

    async def refresh(self, engine: AsyncEngine, schema: str) -> None:
        """Read the parked events' summary from the ledger's ``schema`` and export it."""
        async with engine.connect() as conn:
            summary = await parked_summary(UnitOfWork(conn, schema))
        self.set(summary)


async def run_parked_gauges(
    engine: AsyncEngine, schema: str, gauges: ParkedGauges, stop: asyncio.Event, interval_s: float = 15.0
) -> None:
    """Refresh ``gauges`` every ``interval_s`` seconds until ``stop`` is set (a failed refresh is logged and
    retried at the next tick; the gauges keep their last values meanwhile)."""
    await every(interval_s, stop, lambda: gauges.refresh(engine, schema), failed="parked_gauges_failed")
