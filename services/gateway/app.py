"""The gateway service process: webhooks in, raw deliveries normalised, pollers as backstop, events out.

``build_runtime`` wires everything; building it reads no secret (``karya schemas gen`` builds it to document
the topics, with no settings). Serving needs them: the composition root (``karya.services``) reads them with
:func:`read_settings`, which stops the process with a message naming every missing variable, and passes them to
``build_runtime``; a runtime built without them refuses to serve (:meth:`ServiceRuntime.http_app` builds the
webhook router, which needs the settings and the marketplace clients).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

from fastapi import APIRouter
from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from infra.db.unit_of_work import UnitOfWork
from infra.messaging.consumer import InboundEvent, Rejection
from infra.messaging.dead_letters import DeadLetter, write_dead_letters
from infra.messaging.delivery import Delivery
from infra.runtime import ServiceRuntime
from infra.settings import KafkaSettings
from services.gateway.clients.base import MarketplaceClient
from services.gateway.deliveries import DeliveryStore
from services.gateway.deps import GatewayConfig, GatewayDeps, read_config
from services.gateway.emit import GatewayTopics
from services.gateway.normaliser import Apply, Normaliser, Refused
from services.gateway.parking import Arrival, Origin, ParkedDeliveryGauges, Reject, run_parked_retries
from services.gateway.pollers import run_backstop_poller, run_blibli_poller
from services.gateway.retention import RetentionMetrics, run_raw_retention
from services.gateway.settings import GatewayConfigError, GatewaySettings
from services.gateway.shops.wiring import wire_shop_tokens
from services.gateway.statement_poller import run_statement_poller
from services.gateway.webhooks import make_webhook_router

__all__ = [
    "SCHEMA",
    "NormaliserHandler",
    "build_runtime",
    "parked_rejecter",
    "read_settings",
    "webhook_router_factory",
]

SCHEMA = "gateway"
"""The gateway's PostgreSQL schema: named here, in its composition root, and handed down (in a ``Database`` or a
``UnitOfWork``) to everything that writes SQL."""


def arrival(event: InboundEvent) -> Arrival:
    """The use case's view of a consumed event: its envelope and where it came from, as plain values."""
    d = event.delivery
    return Arrival(event.envelope, Origin(d.topic, d.partition, d.offset, d.key, d.value, d.headers))


class NormaliserHandler:
    """Two-phase batch handler of the raw-deliveries topic: :class:`Normaliser` in a unit of work; its refusals
    become the consumer's rejections."""

    def __init__(self, normaliser: Normaliser) -> None:
        """``normaliser``: the use case (it names the gateway's schema)."""
        self._normaliser = normaliser

    async def __call__(self, conn: AsyncConnection, events: Sequence[InboundEvent]) -> Sequence[Rejection]:
        """Both phases at once (for a caller that does not prepare; the consumer core does)."""
        return await (await self.prepare(events))(conn, events)

    async def prepare(self, events: Sequence[InboundEvent]) -> _ApplyHandler:
        """The fetch phase, before any transaction (:meth:`Normaliser.prepare`)."""
        return _ApplyHandler(await self._normaliser.prepare([arrival(e) for e in events]), self._normaliser.schema)


class _ApplyHandler:
    """The apply phase of one prepared batch, in the consumer's transaction (the whole batch, or one event)."""

    def __init__(self, apply: Apply, schema: str) -> None:
        self._apply = apply
        self._schema = schema

    async def __call__(self, conn: AsyncConnection, events: Sequence[InboundEvent]) -> Sequence[Rejection]:
        outcome = await self._apply(UnitOfWork(conn, self._schema), [arrival(e) for e in events])
        by_id = {e.envelope.event_id: e for e in events}
        return [Rejection(by_id[r.envelope.event_id], r.reason, r.facts) for r in outcome.refusals]


def parked_rejecter(consumer: str) -> Reject:
    """Dead-letters refused parked deliveries under the normaliser's ``consumer`` name, with the record they
    arrived in rebuilt from their stored origin."""

    async def reject(uow: UnitOfWork, refused: Sequence[tuple[Refused, Origin]]) -> None:
        dead = [
            DeadLetter.rejected(Delivery(o.topic, o.partition, o.offset, o.key, o.value, o.headers), r.reason, r.facts)
            for r, o in refused
        ]
        await write_dead_letters(uow.conn, uow.schema, consumer, dead)

    return reject


def webhook_router_factory(deps: GatewayDeps, store: DeliveryStore, outcomes: Counter | None = None) -> APIRouter:
    """The webhook router; refuses (SystemExit naming the variables) when a secret is missing."""
    try:
        settings = deps.settings
        deps.clients  # noqa: B018 - resolved now so missing client credentials also stop the process
    except GatewayConfigError as exc:
        raise SystemExit(str(exc)) from None
    return make_webhook_router(settings, store, outcomes)


def read_settings() -> GatewayConfig:
    """The gateway's own settings from the environment, for its composition root; stops the process (SystemExit)
    with one message naming every missing or invalid variable."""
    try:
        return read_config()
    except GatewayConfigError as exc:
        raise SystemExit(str(exc)) from None


def build_runtime(
    engine: AsyncEngine,
    kafka: KafkaSettings,
    *,
    topics: GatewayTopics,
    settings: GatewayConfig | GatewaySettings | None = None,
    clients: Mapping[str, MarketplaceClient] | None = None,
    consumer_name: str = "gateway-normaliser",
    pollers: bool = True,
) -> ServiceRuntime:
    """Wire the webhook routes, the normaliser consumer, the outbox relay and the pollers on ``engine`` (the
    gateway role's, created and disposed by the caller) and ``topics`` (built by :mod:`karya.services` under the
    deployment's prefix).

    ``settings``: :func:`read_settings` (the root's), or only the ``GatewaySettings`` when ``clients`` are given
    (stand-ins); None builds the gateway to be described, and it refuses to serve. ``topics`` and
    ``consumer_name`` let tests isolate themselves on a shared cluster.
    """
    deps = GatewayDeps(settings, clients)
    runtime = ServiceRuntime(name="gateway", schema=SCHEMA, engine=engine, kafka=kafka)
    db = runtime.db
    normaliser = Normaliser(deps, topics, db.schema, db.engine)
    runtime.add_consumer(
        name=consumer_name,
        topics=[topics.raw_deliveries],
        handler=NormaliserHandler(normaliser),
        description="Verified raw webhook deliveries → canonical order status and settlement events.",
    )
    runtime.declare_output(
        topics.raw_deliveries,
        "delivery_received keyed by order key: a verified webhook delivery stored once by its dedupe key "
        "(schemas/events/karya.gateway.delivery_received.v1).",
    )
    runtime.declare_output(
        topics.order_events,
        "order_status_changed keyed by order key, from webhooks, pollers and the Bukalapak import "
        "(schemas/events/karya.marketplace.order_status_changed.v1).",
    )
    runtime.declare_output(
        topics.settlements,
        "settlement_reported keyed by order key: payouts with fees and PPh 22 "
        "(schemas/events/karya.marketplace.settlement_reported.v1).",
    )
    store = DeliveryStore(db, topics.raw_deliveries, after_commit=None if runtime.relay is None else runtime.relay.wake)
    outcomes = Counter(
        "karya_gateway_webhooks_total",
        "Webhook requests by channel and outcome",
        ["channel", "outcome"],
        registry=runtime.metrics.registry,
    )
    runtime.http_routers.append(lambda: webhook_router_factory(deps, store, outcomes))
    if pollers:
        runtime.add_background("blibli-poller", lambda stop: run_blibli_poller(db, deps, stop, topics))
        runtime.add_background("backstop-poller", lambda stop: run_backstop_poller(db, deps, stop, topics))
        runtime.add_background(
            "statement-poller", lambda stop: run_statement_poller(db, deps, stop, topics, metrics=runtime.metrics)
        )
    parked = ParkedDeliveryGauges(runtime.metrics.registry)
    reject = parked_rejecter(consumer_name)
    runtime.add_background(
        "parked-deliveries", lambda stop: run_parked_retries(db.engine, normaliser, reject, stop, parked)
    )
    retention = RetentionMetrics(runtime.metrics.registry)
    runtime.add_background("raw-retention", lambda stop: run_raw_retention(db, deps, stop, retention))
    runtime.add_background("close-clients", lambda stop: _close_on_stop(deps, stop))
    wire_shop_tokens(runtime, deps, refresher=clients is None)  # per-shop tokens; refreshed unless clients given
    return runtime


async def _close_on_stop(deps: GatewayDeps, stop: asyncio.Event) -> None:
    await stop.wait()
    await deps.aclose()
