"""The orders service process: consumes marketplace order events and the ledger's settlements, holds stock, emits
order events. This is its composition root: the schema, the topics and the handlers are decided here."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from infra.db.unit_of_work import UnitOfWork
from infra.messaging.consumer import InboundEvent, Rejection
from infra.runtime import ServiceRuntime
from infra.settings import KafkaSettings
from services.contracts.ledger import ORDER_ALLOCATED_BY_PERSON, ORDER_SETTLED
from services.contracts.marketplace import ORDER_STATUS_CHANGED
from services.contracts.registry import EVENT_TYPES
from services.orders.adapters.locks import lock_orders
from services.orders.fulfilment import FulfilmentRules, apply_order_changes
from services.orders.outbound import OrdersTopics
from services.orders.person_allocation import apply_person_allocations
from services.orders.sweeper import run_sweeper

SCHEMA = "orders"
# What the consumer acts on: any other known type on its topics is skipped by its type header, before decoding and
# without an inbox row (the ledger's entry_posted is on ledger.entries, which orders does not read).
CONSUMED_TYPES = frozenset({ORDER_STATUS_CHANGED, ORDER_SETTLED, ORDER_ALLOCATED_BY_PERSON})


class OrderChangesHandler:
    """The Kafka batch handler: the batch's envelopes to :func:`apply_order_changes`, refusals to rejections."""

    def __init__(self, schema: str, rules: FulfilmentRules) -> None:
        """``schema``: the service's tables; ``rules``: topics, unpaid windows and status mapping."""
        self._schema = schema
        self._rules = rules

    async def __call__(self, conn: AsyncConnection, events: Sequence[InboundEvent]) -> list[Rejection]:
        """Apply ``events`` (new to this consumer) in ``conn``'s transaction; returns the ones rejected."""
        uow = UnitOfWork(conn, self._schema)
        by_person = [(i, e.envelope) for i, e in enumerate(events) if e.envelope.type == ORDER_ALLOCATED_BY_PERSON]
        if not by_person:
            changes = await apply_order_changes(uow, [e.envelope for e in events], self._rules, datetime.now(UTC))
            return [Rejection(events[r.index], r.reason, r.facts) for r in changes]
        # A person's allocations (the ledger's) first; every order of the batch is locked before any stock row.
        await lock_orders(uow, {e.envelope.subject for e in events})
        refusals = await apply_person_allocations(uow, by_person, self._rules.topics, self._rules.batches)
        rest = [(i, e) for i, e in enumerate(events) if e.envelope.type != ORDER_ALLOCATED_BY_PERSON]
        changes = await apply_order_changes(uow, [e.envelope for _, e in rest], self._rules, datetime.now(UTC))
        rejected = [Rejection(events[r.index], r.reason, r.facts) for r in refusals]
        return rejected + [Rejection(rest[r.index][1], r.reason, r.facts) for r in changes]


def build_runtime(
    engine: AsyncEngine, kafka: KafkaSettings, *, topics: OrdersTopics, settings: None = None
) -> ServiceRuntime:
    """Wire the orders consumer, its outbox relay and the expiry sweeper on ``engine`` (the service role's, created
    and disposed by the caller) and ``topics`` (built by :mod:`karya.services` under the deployment's prefix);
    orders has no settings of its own (``settings`` is always None)."""
    runtime = ServiceRuntime(name="orders", schema=SCHEMA, engine=engine, kafka=kafka)
    runtime.add_consumer(
        name="orders",
        topics=[topics.order_events, topics.ledger_order_events],
        handler=OrderChangesHandler(SCHEMA, FulfilmentRules(topics)),
        description="Canonical marketplace order events, the ledger's order_settled and a person's allocations "
        "(order_allocated_by_person) → order state, stock reservations, order events.",
        event_types=CONSUMED_TYPES,
        # Types no contract defines are dead-lettered at arrival rather than skipped with the others.
        known_types=frozenset(EVENT_TYPES),
    )
    runtime.declare_output(
        topics.events,
        "Order lifecycle and reservation events keyed by order key: reservation_confirmed / _failed / _released / "
        "_expired, order_shipped / _delivered / _completed / _cancelled / _returned (schemas/events/karya.orders.*).",
    )
    runtime.declare_output(
        topics.stock_availability,
        "stock_availability_changed keyed by SKU: available-to-sell per workshop, for channel stock sync.",
    )
    runtime.add_background("sweeper", lambda stop: run_sweeper(runtime.engine, SCHEMA, stop, topics))
    return runtime
