"""The ledger service process: consumes order and settlement events, posts the double-entry journal.

:func:`build_runtime` wires the service for the process's composition root (:mod:`karya.services`, which builds
the engine and the topics): it builds the use cases and hands them the schema (named in :mod:`services.ledger.names`,
which the ``karya ledger`` commands import without this module). :class:`LedgerProcessor` is the Kafka entry point:
it turns a batch into envelopes and a unit of work, and the use case's refusals into the consumer's rejections.
"""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from infra.db.unit_of_work import UnitOfWork
from infra.messaging.consumer import InboundEvent, Rejection
from infra.messaging.dead_letters import delivery_of
from infra.runtime import ServiceRuntime
from infra.settings import KafkaSettings
from services.contracts.orders import ORDER_ALLOCATED
from services.contracts.registry import EVENT_TYPES
from services.ledger.allocation import allocate_announced
from services.ledger.chain_anchor import AnchorGauges, run_anchors
from services.ledger.chain_watch import ChainWatch
from services.ledger.names import CONSUMER
from services.ledger.names import SCHEMA as SCHEMA  # the topology reads it here (karya.services.Service.schema)
from services.ledger.outbound import LedgerTopics
from services.ledger.parked import ParkedGauges, run_parked_gauges
from services.ledger.posting import PostEvents
from services.ledger.posting_plan import POSTED_EVENT_TYPES, Refused
from services.ledger.redrive import RedriveMetrics, run_redrive
from services.ledger.settings import LedgerSettings

CONSUMED_TYPES = POSTED_EVENT_TYPES | {ORDER_ALLOCATED}
"""What the consumer acts on: what the posting use case posts from (returned units restocked among them), and the
orders service's backorders filled."""


class LedgerProcessor:
    """Batch handler of ``orders.events`` and ``marketplace.settlements``: :class:`PostEvents` in a unit of work."""

    def __init__(self, topics: LedgerTopics, schema: str, conflicts_metric: Counter | None = None) -> None:
        """``topics``: where entries are announced and where parked settlements and refunds came from;
        ``schema``: the ledger's tables; ``conflicts_metric``: counts posting conflicts (alert on any)."""
        self._post = PostEvents(topics)
        self._topics = topics
        self._schema = schema
        self._settlements = topics.settlements
        self._conflicts = conflicts_metric

    async def __call__(self, conn: AsyncConnection, events: Sequence[InboundEvent]) -> list[Rejection]:
        """Post what ``events`` call for in ``conn``'s transaction; return the rejected ones."""
        uow = UnitOfWork(conn, self._schema)
        allocated = [e.envelope for e in events if e.envelope.type == ORDER_ALLOCATED]
        posted = [e.envelope for e in events if e.envelope.type != ORDER_ALLOCATED]
        outcome = await self._post(uow, posted)
        if self._conflicts is not None and outcome.conflicts:
            self._conflicts.inc(outcome.conflicts)
        # Backorders filled: after the batch's completions and settlements, whose facts they need (a restock parked
        # for the distribution posts when the allocation does).
        refused = await allocate_announced(uow, self._post, self._topics, allocated) if allocated else []
        return rejections(events, [*outcome.refusals, *refused], self._settlements)


def rejections(events: Sequence[InboundEvent], refusals: Sequence[Refused], settlements: str) -> list[Rejection]:
    """The consumer's rejections for ``refusals``: an event of this batch with its own delivery; one an earlier
    batch parked with a delivery rebuilt to carry it to the dead-letter topic of the topic it came from, at the
    partition and offset it arrived at (without an inbox row, none expected: ``settlements``, -1, -1)."""
    by_id = {e.envelope.event_id: e for e in events}
    rejected = []
    for r in refusals:
        event = by_id.get(r.envelope.event_id)
        if event is None:  # parked by an earlier batch: dead-lettered from where it first arrived
            event = InboundEvent(r.envelope, delivery_of(r.envelope, r.origin, settlements))
        rejected.append(Rejection(event, r.reason, r.facts))
    return rejected


def read_settings() -> LedgerSettings:
    """The ledger process's own settings, from the environment (the composition root calls this once)."""
    return LedgerSettings()


def build_runtime(
    engine: AsyncEngine, kafka: KafkaSettings, *, topics: LedgerTopics, settings: LedgerSettings | None = None
) -> ServiceRuntime:
    """Wire the ledger consumer, its outbox relay, the parked-events gauges and re-drive, the periodic chain
    verification and anchor on ``engine`` (the service role's, created and disposed by the caller), ``topics``
    (built by :mod:`karya.services` under the deployment's prefix) and ``settings`` (:func:`read_settings`, by the
    same root; None: the defaults, nothing read from the environment)."""
    settings = settings or LedgerSettings.model_construct()
    runtime = ServiceRuntime(name="ledger", schema=SCHEMA, engine=engine, kafka=kafka)
    conflicts = Counter(
        "karya_ledger_posting_conflicts_total",
        "Postings refused because their key was already used by a different request (alert on any)",
        registry=runtime.metrics.registry,
    )
    runtime.add_consumer(
        name=CONSUMER,
        topics=[topics.orders_events, topics.settlements],
        handler=LedgerProcessor(topics, SCHEMA, conflicts),
        description="Order completions, settlements, refunds, backorders filled and returns restocked → balanced, "
        "hash-chained journal entries.",
        event_types=CONSUMED_TYPES,
        # Types no contract defines are dead-lettered at arrival rather than skipped with the others.
        known_types=frozenset(EVENT_TYPES),
    )
    gauges = ParkedGauges(runtime.metrics.registry)
    # Not required for readiness: postings go on while the gauges are stale.
    runtime.add_background(
        "parked-gauges", lambda stop: run_parked_gauges(runtime.engine, SCHEMA, gauges, stop), required=False
    )
    # Not required for readiness: what it releases waited already, and the parked gauges show it meanwhile.
    redrive = RedriveMetrics(runtime.metrics, conflicts)
    runtime.add_background(
        "parked-redrive",
        lambda stop: run_redrive(
            runtime.db,
            topics,
            stop,
            interval_s=settings.redrive_interval_s,
            after_s=settings.redrive_after_s,
            limit=settings.redrive_limit,
            metrics=redrive,
        ),
        required=False,
    )
    watch = ChainWatch(runtime.engine, SCHEMA, runtime.metrics.registry, settings.verify_interval_s)
    # Not required for readiness: a broken chain pages (karya_ledger_chain_verified) but postings go on.
    runtime.add_background("chain-watch", watch.run, required=False)
    # Not required for readiness either: postings go on without anchors; the next anchor pins them too (a task that
    # stops ticking warns: KaryaLedgerAnchorStale).
    anchors = AnchorGauges(runtime.metrics.registry, SCHEMA, settings.anchor_interval_s)
    runtime.add_background("chain-anchor", lambda stop: run_anchors(runtime.db, stop, anchors), required=False)
    runtime.declare_output(topics.entries, "entry_posted per journal entry, keyed by order key (or posting key).")
    runtime.declare_output(
        topics.ledger_order_events,
        "For the orders service, keyed by order key: order_settled per settlement of an order, "
        "order_allocated_by_person per allocation a person made.",
    )
    return runtime
