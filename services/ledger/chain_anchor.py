"""Taking an anchor over every segment's head (the ledger process periodically, a period close, ``karya ledger
anchor``) and verifying every anchor (``karya ledger verify``, the chain watch, the finance workspace's job).

*load → plan → write* in the caller's unit of work: the last anchor and every segment's head (one statement, so one
moment of the journal); :func:`services.ledger.domain.anchors.plan_anchor`, pure; one row in
``ledger.chain_anchors``. Anchor-takers are serialised by the anchor's number, not by a lock that would stop
postings: two takers that read the same last anchor insert the same number, the primary key makes the second wait
for the first's commit and refuses it, and the second plans again from the new last anchor (inside a savepoint, so
the caller's transaction goes on). The service role may not take advisory locks, and cannot lock rows of the
append-only table (that needs UPDATE); the heads are re-read on a retry, so anchors' heads never go back. The
retry needs a READ COMMITTED transaction (each statement sees the commits before it), the service's default.

The ledger process's task (:func:`run_anchors`) exports, per schema (:class:`AnchorGauges`):
``karya_ledger_anchor_last_tick_timestamp_seconds``, when its last tick ended, whether it took an anchor or skipped
because no head moved (skipping is healthy; stale: the task is failing or not running);
``karya_ledger_last_anchor_timestamp_seconds``, when the newest anchor in ``chain_anchors`` was taken, read after the
tick, so an anchor of any process (a period close, ``karya ledger anchor``) counts; and
``karya_ledger_anchor_interval_seconds``, the configured interval, so the staleness rule needs no copy of the setting.
The two timestamps have no sample until a tick has ended.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Gauge
from sqlalchemy.exc import IntegrityError

from infra.db.refusals import constraint_of
from infra.db.unit_of_work import Database, UnitOfWork
from infra.metrics import labelled
from infra.supervision import every
from services.ledger.adapters.anchors_repo import anchors_after, entry_hashes, insert_anchor, latest_anchor
from services.ledger.domain.anchors import AnchorReason, ChainAnchor, check_anchor, plan_anchor
from services.ledger.reports import segment_heads

__all__ = ["AnchorGauges", "AnchorVerification", "run_anchors", "take_anchor", "verify_anchors"]

_ATTEMPTS = 5
_PRIMARY_KEY = "chain_anchors_pkey"


async def take_anchor(uow: UnitOfWork, reason: AnchorReason, now: datetime) -> ChainAnchor | None:
    """Append the anchor over every segment's head now, taken at ``now`` for ``reason``; None when ``reason`` is
    ``interval`` and no head moved since the last anchor. Another taker inserting the same number first makes this
    one plan again (up to 5 times; then the refusal is raised)."""
    for attempt in range(1, _ATTEMPTS + 1):
        # load
        last = await latest_anchor(uow)
        heads = await segment_heads(uow)
        # plan
        planned = plan_anchor(last, heads.values(), reason, now)
        if planned is None:
            return None
        # write
        try:
            async with uow.conn.begin_nested():
                await insert_anchor(uow, planned)
        except IntegrityError as exc:
            if attempt == _ATTEMPTS or constraint_of(exc) != _PRIMARY_KEY:
                raise
            continue
        return planned
    raise AssertionError("unreachable")  # pragma: no cover


class AnchorGauges:
    """The anchor task's gauges for one schema, on ``registry``; the interval is exported at once."""

    def __init__(self, registry: CollectorRegistry, schema: str, interval_s: float) -> None:
        """``interval_s``: seconds between the task's ticks (KARYA_LEDGER_ANCHOR_INTERVAL_S)."""
        self.schema = schema
        self.interval_s = interval_s
        labels = ("schema",)
        tick = "When the anchor task's last tick ended (an anchor taken, or none because no head moved)"
        self.last_tick = labelled(Gauge, "karya_ledger_anchor_last_tick_timestamp_seconds", tick, labels, registry)
        newest = "When the newest anchor in chain_anchors was taken (by any process), as read by the last tick"
        self.last_anchor = labelled(Gauge, "karya_ledger_last_anchor_timestamp_seconds", newest, labels, registry)
        every_s = "Seconds between the anchor task's ticks (KARYA_LEDGER_ANCHOR_INTERVAL_S)"
        interval = labelled(Gauge, "karya_ledger_anchor_interval_seconds", every_s, labels, registry)
        interval.labels(schema).set(interval_s)

    def ticked(self, newest: ChainAnchor | None, at: float) -> None:
        """A tick ended at ``at`` (seconds since the epoch) with ``newest`` the newest anchor in the table (None:
        none yet, the last-anchor gauge keeps no sample)."""
        self.last_tick.labels(self.schema).set(at)
        if newest is not None:
            self.last_anchor.labels(self.schema).set(newest.taken_at.timestamp())


async def run_anchors(db: Database, stop: asyncio.Event, gauges: AnchorGauges) -> None:
    """Take an ``interval`` anchor every ``gauges.interval_s`` seconds, each in a transaction of its own, until
    ``stop`` is set, and export each tick that ended on ``gauges`` (the ledger process's background task; a failed
    tick is logged, leaves the gauges as they were and is tried again at the next tick)."""

    async def once() -> None:
        async with db.begin() as uow:
            await take_anchor(uow, "interval", datetime.now(UTC))
            newest = await latest_anchor(uow)
        gauges.ticked(newest, time.time())

    await every(gauges.interval_s, stop, once, failed="chain_anchor_failed", schema=db.schema)


@dataclass(frozen=True)
class AnchorVerification:
    """Result of re-checking the anchors: how many were checked, the last one found intact (None: none), the number
    of the first broken one (None: intact) and what is wrong with it."""

    anchors: int
    latest: ChainAnchor | None
    first_broken: int | None
    problem: str | None


async def verify_anchors(uow: UnitOfWork, after: ChainAnchor | None = None, chunk: int = 2000) -> AnchorVerification:
    """Check every anchor after ``after`` (an anchor an earlier pass found intact; None: from the first) in number
    order — its link to the one before, its hash, its heads' root and each head against the journal today
    (:func:`services.ledger.domain.anchors.check_anchor`) — and name the first broken one. ``anchors`` counts those
    checked in this pass."""
    previous, count = after, 0
    while True:
        batch = await anchors_after(uow, 0 if previous is None else previous.anchor_no, chunk)
        if not batch:
            return AnchorVerification(count, previous, None, None)
        journal = await entry_hashes(uow, (h.sequence for a in batch for h in a.heads))
        for anchor in batch:
            count += 1
            problem = check_anchor(anchor, previous, journal)
            if problem is not None:
                return AnchorVerification(count, previous, anchor.anchor_no, problem)
            previous = anchor
        await asyncio.sleep(0)  # a long history: let the process's consumers run between chunks
