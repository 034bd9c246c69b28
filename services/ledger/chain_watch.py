"""The hash chains and their anchors verified periodically by the ledger process, as ``karya ledger verify`` does,
into gauges.

``karya_ledger_chain_verified{schema}``: 1 when the last pass found every segment's chain and every anchor intact, 0
when it found a broken link or anchor (page); ``karya_ledger_chain_last_verified_timestamp_seconds{schema}``: when
the last pass ended, whatever it found (stale: the task is not completing);
``karya_ledger_chain_verify_interval_seconds{schema}``: the configured interval, so the staleness rule needs no copy
of the setting. The first two have no sample until a pass has ended.

Cost: :func:`services.ledger.reports.verify_chain` hashes every entry in Python, ~3-4 s of one core per 10,000
entries on the development box. So a pass starts after the last entry of each segment a pass found intact (sequence
and hash), and checks only the anchors taken after the last one found intact (a few hashes and one lookup of their
heads each: cheap); everything is verified at start, every ``full_every``-th pass and after a broken one. A pass
reads one REPEATABLE READ snapshot, so a posting committed meanwhile cannot look like a head mismatch.
"""

from __future__ import annotations

import asyncio
import time

from prometheus_client import CollectorRegistry, Gauge
from sqlalchemy.ext.asyncio import AsyncEngine

from infra.db.unit_of_work import UnitOfWork
from infra.logging import get_logger
from infra.supervision import every
from services.ledger.chain_anchor import AnchorVerification, verify_anchors
from services.ledger.domain.anchors import ChainAnchor
from services.ledger.domain.hashchain import SegmentHead
from services.ledger.reports import Verification, verify_chain

log = get_logger(__name__)


class ChainWatch:
    """Verifies the chains and anchors of one schema every ``every_s`` and exports the outcome on ``registry``."""

    def __init__(
        self, engine: AsyncEngine, schema: str, registry: CollectorRegistry, every_s: float, full_every: int = 24
    ) -> None:
        """``every_s``: seconds between passes; ``full_every``: every how many passes the whole chain is read."""
        self._engine = engine
        self._schema = schema
        self._every_s = every_s
        self._full_every = full_every
        self._passes = 0
        self._anchor: dict[str, SegmentHead] | None = None  # the heads found intact by the last pass
        self._last_anchor: ChainAnchor | None = None  # the last anchor found intact
        self.anchors: AnchorVerification | None = None  # what the last pass found of the anchors
        labels = ["schema"]
        self.verified = Gauge(
            "karya_ledger_chain_verified",
            "1: the last verification found the hash chain intact; 0: broken",
            labels,
            registry=registry,
        )
        self.last_verified = Gauge(
            "karya_ledger_chain_last_verified_timestamp_seconds",
            "When the last chain verification ended",
            labels,
            registry=registry,
        )
        interval = Gauge(
            "karya_ledger_chain_verify_interval_seconds",
            "Seconds between chain verifications (KARYA_LEDGER_VERIFY_INTERVAL_S)",
            labels,
            registry=registry,
        )
        interval.labels(schema).set(every_s)

    async def run(self, stop: asyncio.Event) -> None:
        """Verify every ``every_s`` until ``stop`` is set (a supervised background task)."""
        await every(self._every_s, stop, self.verify_once, failed="chain_unverified", schema=self._schema)

    async def verify_once(self, *, full: bool = False) -> Verification:
        """One pass: from the last entry of each segment and the last anchor found intact, or everything
        (``full``, the first pass, every ``full_every``-th, after a broken one); set the gauges and log a broken link
        or anchor (what it found of the anchors: :attr:`anchors`)."""
        incremental = not full and self._passes % self._full_every != 0
        start = self._anchor if incremental else None
        last_anchor = self._last_anchor if incremental and self._anchor is not None else None
        async with self._engine.connect() as conn:
            await conn.execution_options(isolation_level="REPEATABLE READ")
            async with conn.begin():
                await conn.exec_driver_sql("SET TRANSACTION READ ONLY")
                uow = UnitOfWork(conn, self._schema)
                result = await verify_chain(uow, after=start)
                anchors = await verify_anchors(uow, after=last_anchor)
        self._passes += 1
        self.anchors = anchors
        intact = result.first_broken is None and anchors.first_broken is None
        if intact:
            self._anchor, self._last_anchor = result.heads, anchors.latest
        else:
            self._anchor, self._last_anchor = None, None
        if result.first_broken is not None:
            log.error("chain_broken", schema=self._schema, first_broken=result.first_broken, problem=result.problem)
        if anchors.first_broken is not None:
            log.error("anchor_broken", schema=self._schema, first_broken=anchors.first_broken, problem=anchors.problem)
        self.verified.labels(self._schema).set(1 if intact else 0)
        self.last_verified.labels(self._schema).set(time.time())
        return result
