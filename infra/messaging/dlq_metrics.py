"""DLQ depth and age as gauges, computed by a periodic task of each service process (exported on its ``/metrics``).

``karya_dead_letters_open{schema,topic}``: dead letters of the process's schema neither replayed nor discarded
(``karya dlq``); ``karya_dead_letters_oldest_age_seconds{schema,topic}``: the age of the oldest of them. Counted
from ``<schema>.dead_letters`` every ``every_s`` (15 s) with one grouped query, by every replica alike (they all
read the same rows: aggregate with ``max``). A topic whose last open dead letter was closed reads 0. While the
database is away the gauges keep their last values.
"""

from __future__ import annotations

import asyncio
import time

from prometheus_client import CollectorRegistry, Gauge
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from infra.logging import get_logger
from infra.messaging.dlq_admin import dead_letters_source
from infra.metrics import labelled
from infra.supervision import every

log = get_logger(__name__)


class DeadLetterGauges:
    """Measures the open dead letters of one schema into two gauges of ``registry``."""

    def __init__(self, engine: AsyncEngine, schema: str, registry: CollectorRegistry, every_s: float = 15.0) -> None:
        """``every_s``: how often the table is counted."""
        self._engine = engine
        self._schema = schema
        self._every_s = every_s
        self._seen: set[str] = set()
        labels = ("schema", "topic")
        self.open = labelled(
            Gauge, "karya_dead_letters_open", "Dead letters neither replayed nor discarded", labels, registry
        )
        self.oldest_age = labelled(
            Gauge, "karya_dead_letters_oldest_age_seconds", "Age of the oldest open dead letter", labels, registry
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Measure every ``every_s`` until ``stop`` is set (a supervised background task)."""
        await every(self._every_s, stop, self.measure, failed="dead_letters_unmeasured", schema=self._schema)

    async def measure(self) -> None:
        """Count the open dead letters per topic once and set the gauges."""
        async with self._engine.connect() as conn:
            source = await dead_letters_source(conn, self._schema)
            rows = (
                await conn.execute(
                    text(
                        f"SELECT d.topic, count(*) AS n, min(d.created_at) AS oldest FROM {source} "
                        "WHERE a.action IS NULL GROUP BY d.topic"
                    )
                )
            ).all()
            await conn.rollback()
        now = time.time()
        current = {r.topic for r in rows}
        for topic in self._seen - current:
            self.open.labels(self._schema, topic).set(0)
            self.oldest_age.labels(self._schema, topic).set(0)
        for r in rows:
            self.open.labels(self._schema, r.topic).set(r.n)
            self.oldest_age.labels(self._schema, r.topic).set(max(0.0, now - r.oldest.timestamp()))
        self._seen |= current
