"""The anchor task's gauges (services/ledger/chain_anchor.py): the interval is exported at once and the timestamps only
after a tick; a tick sets when it ended and when the newest anchor was taken, a tick that skipped keeps the anchor's
time; a failed tick leaves them as they were; the ledger's wiring exports them for its schema."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import CollectorRegistry

from infra.settings import KafkaSettings
from karya.services import SERVICES, wiring_of
from services.ledger.chain_anchor import AnchorGauges, run_anchors
from services.ledger.domain.anchors import plan_anchor
from services.ledger.domain.hashchain import GENESIS_HASH, SegmentHead

T = datetime(2026, 12, 3, 8, 0, 0, 500000, tzinfo=UTC)
TICK = "karya_ledger_anchor_last_tick_timestamp_seconds"
NEWEST = "karya_ledger_last_anchor_timestamp_seconds"
INTERVAL = "karya_ledger_anchor_interval_seconds"


def _sample(registry: CollectorRegistry, name: str, schema: str = "ledger") -> float | None:
    return registry.get_sample_value(name, {"schema": schema})


def test_the_interval_is_exported_at_once_and_the_timestamps_after_a_tick() -> None:
    registry = CollectorRegistry()
    AnchorGauges(registry, "ledger", 60.0)
    assert _sample(registry, INTERVAL) == 60.0
    assert _sample(registry, TICK) is None and _sample(registry, NEWEST) is None, "no sample: no false staleness"


def test_a_tick_exports_when_it_ended_and_when_the_newest_anchor_was_taken() -> None:
    registry = CollectorRegistry()
    gauges = AnchorGauges(registry, "books", 30.0)
    gauges.ticked(None, 1000.0)  # no anchor in the table yet
    assert (_sample(registry, TICK, "books"), _sample(registry, NEWEST, "books")) == (1000.0, None)

    first = plan_anchor(None, [SegmentHead("s1", 0, GENESIS_HASH)], "interval", T)
    assert first is not None
    gauges.ticked(first, 1030.0)
    assert (_sample(registry, TICK, "books"), _sample(registry, NEWEST, "books")) == (1030.0, T.timestamp())

    gauges.ticked(first, 1060.0)  # skipped: no head moved, the newest anchor is the same
    assert (_sample(registry, TICK, "books"), _sample(registry, NEWEST, "books")) == (1060.0, T.timestamp())

    later = T + timedelta(minutes=5)
    second = plan_anchor(first, [SegmentHead("s1", 4, "b" * 64)], "manual", later)
    assert second is not None
    gauges.ticked(second, 1090.0)  # another taker's anchor, read from the table
    assert _sample(registry, NEWEST, "books") == later.timestamp()
    assert _sample(registry, NEWEST) is None, "only the gauges' own schema"


class _Unreachable:
    """A database whose every transaction fails, the stop event set by the first attempt."""

    schema = "ledger"

    def __init__(self, stop: asyncio.Event) -> None:
        self.stop = stop
        self.attempts = 0

    @contextlib.asynccontextmanager
    async def begin(self) -> AsyncIterator[Any]:
        self.attempts += 1
        self.stop.set()
        raise ConnectionRefusedError("database down")
        yield  # pragma: no cover


async def test_a_failed_tick_leaves_the_gauges_as_they_were() -> None:
    registry, stop = CollectorRegistry(), asyncio.Event()
    gauges = AnchorGauges(registry, "ledger", 0.01)
    gauges.ticked(None, 1000.0)
    db = _Unreachable(stop)
    await asyncio.wait_for(run_anchors(db, stop, gauges), timeout=5)  # type: ignore[arg-type]
    assert db.attempts == 1
    assert _sample(registry, TICK) == 1000.0, "the tick stays stale: KaryaLedgerAnchorStale can see it"


def test_the_ledger_wiring_exports_the_anchor_interval_for_its_schema() -> None:
    runtime = wiring_of("ledger", KafkaSettings(bootstrap_servers="127.0.0.1:1"))
    assert "chain-anchor" in runtime.supervisor.names
    assert runtime.metrics.registry.get_sample_value(INTERVAL, {"schema": SERVICES["ledger"].schema}) == 60.0
