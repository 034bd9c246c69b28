"""The re-drive of parked events: plan again the events parked for a while, so none waits for what has happened.

An event parks when what it depends on has not been posted (a settlement before its order's completion). It is
taken and planned again whenever a batch posts for its order. One case escapes that: the settlement parks in one
ledger transaction while the completion posts in another that overlaps it (two processes in a rebalance, before the
order has a facts row for either to lock). Neither sees the other's rows, both commit, and the settlement waits for
a completion that is already in the journal — until the order's next event, which may never come.

:func:`redrive_parked` closes that: the orders with an event not planned for ``after`` (:func:`due_orders`) are
handed to the posting use case (:class:`services.ledger.posting.PostEvents`, ``also=``) in the caller's
transaction, as a person's allocation does. What now can post posts, what still waits parks again (keeping when it
first arrived, with a new ``planned_at``: an event that legitimately waits is planned once per ``after``), and what
a rule refuses becomes a dead letter from where it first arrived, with its rule — never parked again.
:func:`run_redrive` runs it every ``interval`` in the ledger process.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from prometheus_client import Counter
from sqlalchemy import text

from infra.db.unit_of_work import Database, UnitOfWork
from infra.logging import get_logger
from infra.messaging.dead_letters import DeadLetter, delivery_of, report_dead_letters, write_dead_letters
from infra.messaging.metrics import MessagingMetrics
from infra.supervision import every
from services.ledger.names import CONSUMER
from services.ledger.outbound import LedgerTopics
from services.ledger.posting import PostEvents, Refused

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class RedriveOutcome:
    """One re-drive: how many ``orders`` it planned again, how many of their parked events it ``released`` (posted,
    closed or refused: no longer parked), the ``refused`` ones and their ``dead_letters`` (written), and the posting
    ``conflicts``."""

    orders: int
    released: int
    refused: list[Refused]
    dead_letters: list[DeadLetter]
    conflicts: int


def refusal_dead_letters(refused: Sequence[Refused], settlements: str) -> list[DeadLetter]:
    """The dead letters of parked events a re-run refused: each from where it first arrived (the inbox), else from
    ``settlements`` at partition and offset -1, with its rule."""
    return [DeadLetter.rejected(delivery_of(r.envelope, r.origin, settlements), r.reason, r.facts) for r in refused]


async def due_orders(uow: UnitOfWork, after: timedelta, limit: int) -> list[str]:
    """The orders of the (at most ``limit``) parked events longest not planned, if for more than ``after``; oldest
    first.

    The events are read oldest first along ``pending_events_planned_idx`` and no further than ``limit``: every
    parked event is due when the orders stage lags by more than ``after`` (a backfill, a million-order bench), and
    grouping all of them by order read the whole table each tick — 250k buffers and 0.85 s, growing, at a million
    orders. What a tick leaves, a later one takes: a re-planned event is planned now. The cutoff is from ``now()``
    (the transaction's start), not ``clock_timestamp()``: a volatile bound is no index condition, and the scan
    would read past the due events to the end of the index."""
    due = await uow.conn.execute(
        text(
            f"SELECT order_key FROM (SELECT order_key, planned_at FROM {uow.table('pending_events')} "
            "WHERE planned_at < now() - CAST(:after AS interval) ORDER BY planned_at LIMIT :limit) e "
            "GROUP BY order_key ORDER BY min(planned_at), order_key"
        ),
        {"after": after, "limit": limit},
    )
    return list(due.scalars())


async def redrive_parked(
    uow: UnitOfWork, post: PostEvents, settlements: str, after: timedelta, limit: int
) -> RedriveOutcome:
    """Plan again, in ``uow``, the parked events of the :func:`due_orders`; dead-letter what is refused
    (``settlements``: the topic of a refused event that came through no inbox)."""
    keys = await due_orders(uow, after, limit)
    if not keys:
        return RedriveOutcome(0, 0, [], [], 0)
    outcome = await post(uow, [], also=keys)
    dead = refusal_dead_letters(outcome.refusals, settlements)
    await write_dead_letters(uow.conn, uow.schema, CONSUMER, dead)
    return RedriveOutcome(len(keys), outcome.released, outcome.refusals, dead, outcome.conflicts)


class RedriveMetrics:
    """``karya_ledger_parked_redriven_total`` (parked events a re-drive released: each one had been stranded), on
    the process's ``messaging`` metrics, where its dead letters are counted too; ``conflicts``: the
    posting-conflicts counter the consumer increments."""

    def __init__(self, messaging: MessagingMetrics, conflicts: Counter | None = None) -> None:
        self.messaging = messaging
        self.conflicts = conflicts
        self.released = Counter(
            "karya_ledger_parked_redriven_total",
            "Parked events the periodic re-drive released (posted, closed or dead-lettered): each had waited for "
            "something already posted",
            registry=messaging.registry,
        )


async def run_redrive(
    db: Database,
    topics: LedgerTopics,
    stop: asyncio.Event,
    *,
    interval_s: float,
    after_s: float,
    limit: int,
    metrics: RedriveMetrics,
) -> None:
    """Re-drive every ``interval_s`` seconds, each time in a transaction of its own, until ``stop`` is set (the
    ledger process's background task; a failed tick is logged and tried again at the next). ``topics``: where
    posted entries are announced and the topic of a refused event that came through no inbox. Its dead letters are
    logged and counted once committed, as the consumer's are."""
    post = PostEvents(topics)  # its own caches: it runs beside the consumer's

    async def once() -> None:
        async with db.begin() as uow:
            outcome = await redrive_parked(uow, post, topics.settlements, timedelta(seconds=after_s), limit)
        report_dead_letters(db.schema, CONSUMER, outcome.dead_letters, metrics.messaging)
        metrics.released.inc(outcome.released)
        if metrics.conflicts is not None and outcome.conflicts:
            metrics.conflicts.inc(outcome.conflicts)
        if outcome.released or outcome.refused:
            log.info(
                "parked_redriven",
                orders=outcome.orders,
                released=outcome.released,
                dead_lettered=len(outcome.refused),
            )

    await every(interval_s, stop, once, failed="parked_redrive_failed", schema=db.schema)
