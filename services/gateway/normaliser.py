"""The normaliser: verified raw deliveries → canonical order and settlement events (a two-phase batch consumer).

**Fetch phase** (:meth:`Normaliser.prepare`, before any transaction, once per batch):

1. parse the body (:mod:`services.gateway.normalise`) and classify its status with the orders service's
   tables; an unparseable body, a non-integral amount or an unmappable status is a :class:`Rejection` (dead
   letter with the reason);
2. plan and run every API call the batch needs (:func:`plan`, :mod:`services.gateway.fetching`), concurrently and
   bounded, keeping the answers in memory: order detail for trigger-only deliveries (Shopee, TikTok Shop; a
   Tokopedia status change for an order whose lines were never published) once per order, only while its lines
   are unknown and not for cancellations; the settlement and refunds at completion (refunds on return statuses).

**Apply phase** (:class:`Apply`, inside the consumer's transaction, the whole batch or one event during
isolation — never calling out again): publish through the gateway outbox, each fact once
(:func:`services.gateway.emit.emit`); a completed order with a settlement yields ``settlement_reported`` (an
unsettled one is picked up later by the backstop poller).

An API that refused the request (400, 404 unknown order) or answered bad content rejects the order's deliveries
(:func:`services.gateway.values.rejection_context`); an API that could not answer (no connection, timeout, 5xx,
429, 401/403) parks them (:mod:`services.gateway.parking`): stored, not dead-lettered, and applied once it answers;
later deliveries of a parked order are parked behind it. Any other error is raised in the apply phase, so the
consumer core retries, isolates and dead-letters it as for any handler.

A rejection's reason is stored with its dead letter and sent in the DLQ header, so it carries ids, field paths
and error codes (:func:`infra.errors.error_text`), never a value from the body: buyer names, phones and
addresses stay in ``gateway.raw_deliveries`` (redacted for other roles, and in place after the retention).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from infra.errors import describe_error, error_text, quoted_code
from infra.messaging.consumer import InboundEvent, Rejection
from services.contracts.channels import OrderState
from services.contracts.gateway import DELIVERY_RECEIVED, DeliveryReceived
from services.gateway.canonical import UnmappableStatus, Verdict, api_lines, classify, status_event
from services.gateway.deps import GatewayDeps
from services.gateway.emit import (
    Emission,
    GatewayTopics,
    RefundEmission,
    SeenOrder,
    SettlementEmission,
    StatusEmission,
    emit,
    load_seen,
)
from services.gateway.fetching import Fetched, FetchPlan, fetch
from services.gateway.normalise import Notice, parse_delivery
from services.gateway.parking import park, parked_order_keys
from services.gateway.settings import GatewaySettings
from services.gateway.values import rejection_context


@dataclass(frozen=True, slots=True)
class _Item:
    event: InboundEvent
    delivery: DeliveryReceived
    notice: Notice
    verdict: Verdict


_RETURN_STATES = frozenset({OrderState.RETURN_REQUESTED, OrderState.RETURNED, OrderState.REFUNDED})


class Normaliser:
    """Batch handler of the raw-deliveries topic, in two phases (see the module docstring)."""

    def __init__(self, deps: GatewayDeps, topics: GatewayTopics, engine: AsyncEngine | None = None) -> None:
        """``engine`` reads what is known of the batch's orders before the transaction (without it every
        order without lines has its detail fetched)."""
        self._deps = deps
        self._topics = topics
        self._engine = engine

    async def __call__(self, conn: AsyncConnection, events: Sequence[InboundEvent]) -> Sequence[Rejection]:
        """Both phases at once (for a caller that does not prepare; the consumer core does)."""
        return await (await self.prepare(events))(conn, events)

    async def prepare(self, events: Sequence[InboundEvent]) -> Apply:
        """Fetch phase, before any transaction: parse, then every API call the batch needs (bounded)."""
        rejections: dict[UUID, Rejection] = {}
        items: list[_Item] = []
        for event in events:
            parsed = parse_event(event)
            if isinstance(parsed, Rejection):
                rejections[event.envelope.event_id] = parsed
            else:
                items.append(parsed)
        seen: dict[str, SeenOrder] = {}
        if items and self._engine is not None:
            async with self._engine.connect() as conn:  # a read, committed at once: no transaction held open
                seen = await load_seen(conn, {i.notice.order_key for i in items})
        fetched = await fetch(self._deps, plan(items, seen)) if items else Fetched()
        return Apply(self._topics, self._deps.settings, items, rejections, fetched)

    @property
    def settings(self) -> GatewaySettings:
        """The gateway's settings (the parking task reads the retry windows and backoff)."""
        return self._deps.settings


def plan(items: Sequence[_Item], seen: Mapping[str, SeenOrder]) -> FetchPlan:
    """The API calls ``items`` need: order detail while an order's lines are unknown (not for cancellations);
    settlement at completion (also when settled before: a later settlement under a reused id is new content);
    refunds at completion (marketplaces re-push the status with a newer time) and on return statuses."""
    with_lines = {i.notice.order_key for i in items if i.notice.lines}
    details = {
        i.notice.order_key: i.notice
        for i in items
        if not i.notice.lines
        and i.notice.order_key not in with_lines
        and i.verdict.state is not OrderState.CANCELLED
        and not (i.notice.order_key in seen and seen[i.notice.order_key].has_lines)
    }
    settlements = {i.notice.order_key: i.notice for i in items if i.verdict.completion}
    refunds = {i.notice.order_key: i.notice for i in items if i.verdict.completion or i.verdict.state in _RETURN_STATES}
    return FetchPlan(details, settlements, refunds)


class Apply:
    """Apply phase of one prepared batch, inside the consumer's transaction: applies any subset of the batch's
    events (the whole batch, or one event during isolation) from the fetched answers, without calling out."""

    def __init__(
        self,
        topics: GatewayTopics,
        settings: GatewaySettings,
        items: list[_Item],
        rejections: dict[UUID, Rejection],
        fetched: Fetched,
    ) -> None:
        self._topics = topics
        self._settings = settings
        #: Attempts and first parking time of deliveries retried from the parking table (they are parked again).
        self.history: dict[UUID, tuple[int, datetime]] = {}
        self._items = items
        self._rejections = rejections
        self.fetched = fetched
        #: Event ids this phase parked the last time it ran (the parking task reads it).
        self.parked: set[UUID] = set()

    async def __call__(self, conn: AsyncConnection, events: Sequence[InboundEvent]) -> Sequence[Rejection]:
        """Apply ``events``; returns the rejected ones. Deliveries whose API was unreachable, or whose order
        already has a parked delivery, are parked (:mod:`services.gateway.parking`), not rejected."""
        ids = {e.envelope.event_id for e in events}
        rejections = [r for i, r in self._rejections.items() if i in ids]
        items = [i for i in self._items if i.event.envelope.event_id in ids]
        fetched = self.fetched
        behind = await parked_order_keys(conn, {i.notice.order_key for i in items}, ids)
        emissions: list[Emission] = []
        parked: list[tuple[InboundEvent, str, str, str]] = []
        settled: set[str] = set()
        refunds = {k: list(v) for k, v in fetched.refunds.items()}
        for item in items:
            key = item.notice.order_key
            if key in fetched.failed:
                raise fetched.failed[key]  # not the API's answer nor its absence: the consumer core retries it
            unreachable = fetched.unavailable.get(key)
            if unreachable is not None or key in behind:
                reason = unreachable[0] if unreachable else f"behind a parked delivery of {key}"
                parked.append((item.event, item.notice.channel, key, reason))
                continue
            refusal = fetched.refused.get(key)
            if refusal is not None:
                rejections.append(Rejection(item.event, *refusal))
                continue
            detail = fetched.details.get(key)
            emissions.append(
                StatusEmission(
                    status_event(
                        item.notice,
                        lines=api_lines(detail) if detail else (),
                        gross_amount=detail.gross_amount if detail else None,
                    ),
                    item.verdict.state.value,
                    item.verdict.completion,
                    causation=item.event.envelope,
                )
            )
            settlement = fetched.settlements.get(key)
            if item.verdict.completion and settlement is not None and key not in settled:
                settled.add(key)
                emissions.append(SettlementEmission(settlement, causation=item.event.envelope))
            emissions += [RefundEmission(r, causation=item.event.envelope) for r in refunds.pop(key, [])]
        await park(conn, parked, settings=self._settings, history=self.history)
        self.parked = {event.envelope.event_id for event, *_ in parked}
        await emit(conn, emissions, self._topics)
        return rejections


def parse_event(event: InboundEvent) -> _Item | Rejection:
    """The delivery, what it says and its status verdict; or its rejection. The reason (stored and sent) and the
    facts (logged) name the delivery by ids and the error by class, field paths and codes, never by its values."""
    envelope = event.envelope
    if envelope.type != DELIVERY_RECEIVED:
        reason = f"unexpected event type {quoted_code(envelope.type)}"
        return Rejection(event, reason, {"detail": reason})
    try:
        delivery = DeliveryReceived.model_validate(envelope.data)
    except ValidationError as exc:
        return Rejection(event, error_text(exc, context=f"invalid {DELIVERY_RECEIVED}"), describe_error(exc))
    try:
        notice = parse_delivery(delivery.channel, delivery.webhook_type, delivery.body, delivery.received_at)
    except Exception as exc:
        problem = rejection_context(exc)
        if problem is None:
            raise
        return _delivery_rejection(event, delivery, error_text(exc, context=problem), exc)
    try:
        verdict = classify(notice.channel, notice.raw_status)
    except UnmappableStatus as exc:
        what = f"unmappable order status {quoted_code(notice.raw_status)} for channel {notice.channel!r}"
        return _delivery_rejection(event, delivery, what, exc)
    return _Item(event, delivery, notice, verdict)


def _delivery_rejection(event: InboundEvent, delivery: DeliveryReceived, what: str, exc: Exception) -> Rejection:
    """A delivery refused for ``exc``: ``what`` (value-free) after the delivery's ids is the reason (stored and
    sent); the facts are the ids and the error's class and field paths, with the reason as ``detail`` (logged)."""
    reason = f"{delivery.channel} {delivery.webhook_type} delivery {delivery.delivery_id}: {what}"
    ids = {"channel": delivery.channel, "webhook_type": delivery.webhook_type, "delivery_id": delivery.delivery_id}
    return Rejection(event, reason, {**ids, **describe_error(exc), "detail": what})
