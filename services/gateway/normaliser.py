"""The normaliser: verified raw deliveries → canonical order and settlement events (a two-phase batch consumer).

**Fetch phase** (:meth:`Normaliser.prepare`, before any transaction, once per batch):

1. parse the body (:mod:`services.gateway.normalise`) and classify its status with the orders service's
   tables; an unparseable body, a non-integral amount or an unmappable status is :class:`Refused` (the Kafka
   handler in ``app.py`` dead-letters it with the reason);
2. plan and run every API call the batch needs (:func:`plan`, :mod:`services.gateway.fetching`), concurrently and
   bounded, keeping the answers in memory: order detail for trigger-only deliveries (Shopee, TikTok Shop; a
   Tokopedia status change for an order whose lines were never published) once per order, only while its lines
   are unknown and not for cancellations; the settlement and refunds at completion (refunds on return statuses).

**Apply phase** (:class:`Apply`, in the unit of work the Kafka handler opens, the whole batch or one event during
isolation — never calling out again): publish through the gateway outbox, each fact once
(:func:`services.gateway.emit.emit`); a completed order with a settlement yields ``settlement_reported`` (an
unsettled one is picked up later by the backstop poller).

An API that refused the request (400, 404 unknown order) or answered bad content rejects the order's deliveries
(:func:`services.gateway.values.rejection_context`); an API that could not answer (no connection, timeout, 5xx,
429, 401/403) parks them (:mod:`services.gateway.parking`): stored, not dead-lettered, and applied once it answers;
later deliveries of a parked order are parked behind it. Any other error is raised in the apply phase, so the
consumer core retries, isolates and dead-letters it as for any handler.

The use case takes arrivals (:class:`~services.gateway.parking.Arrival`: an envelope and its transport-free origin,
which parking stores) and a :class:`~infra.db.unit_of_work.UnitOfWork`, and returns a :class:`Normalised`; it never
sees the consumer's types. A refusal's reason is stored with its dead letter and sent in the DLQ header, so it
carries ids, field paths and error codes (:func:`infra.errors.error_text`), never a value from the body: buyer
names, phones and addresses stay in ``gateway.raw_deliveries`` (redacted for other roles, and in place after the
retention).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from uuid import UUID

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine

from infra.db.unit_of_work import UnitOfWork
from infra.errors import describe_error, error_text, quoted_code
from infra.messaging.envelope import Envelope
from services.contracts.channels import RETURN_COMPLETED, OrderState
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
from services.gateway.parking import Arrival, park, parked_order_keys
from services.gateway.settings import GatewaySettings
from services.gateway.values import rejection_context


@dataclass(frozen=True, slots=True)
class Refused:
    """An event the normaliser refuses: ``reason`` (value-free) is stored and sent, ``facts`` are logged."""

    envelope: Envelope
    reason: str
    facts: Mapping[str, object]


@dataclass(frozen=True, slots=True)
class Normalised:
    """What applying events did besides publishing: the refused ones, and the ids of those it parked."""

    refusals: list[Refused] = field(default_factory=list)
    parked: set[UUID] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class _Item:
    arrival: Arrival
    delivery: DeliveryReceived
    notice: Notice
    verdict: Verdict


_RETURN_STATES = frozenset({OrderState.RETURN_REQUESTED, OrderState.RETURNED, OrderState.REFUNDED})
#: Not completed, where a return ends the order (TikTok Shop keeps a returned order DELIVERED).
_OPEN_RETURN_STATES = frozenset({OrderState.DELIVERED, OrderState.RETURN_REQUESTED})


class Normaliser:
    """The normaliser use case of the raw-deliveries topic, in two phases (see the module docstring)."""

    def __init__(
        self, deps: GatewayDeps, topics: GatewayTopics, schema: str, engine: AsyncEngine | None = None
    ) -> None:
        """``schema`` names the gateway's tables (read before the transaction, and for the retries of parked
        deliveries); ``engine`` reads what is known of the batch's orders before the transaction (without it
        every order without lines has its detail fetched)."""
        self._deps = deps
        self._topics = topics
        self.schema = schema
        self._engine = engine

    async def prepare(self, arrivals: Sequence[Arrival]) -> Apply:
        """Fetch phase, before any transaction: parse, then every API call the batch needs (bounded)."""
        refusals: dict[UUID, Refused] = {}
        items: list[_Item] = []
        for arrival in arrivals:
            parsed = parse(arrival)
            if isinstance(parsed, Refused):
                refusals[arrival.envelope.event_id] = parsed
            else:
                items.append(parsed)
        seen: dict[str, SeenOrder] = {}
        if items and self._engine is not None:
            async with self._engine.connect() as conn:  # a read, committed at once: no transaction held open
                seen = await load_seen(UnitOfWork(conn, self.schema), {i.notice.order_key for i in items})
        fetched = await fetch(self._deps, plan(items, seen)) if items else Fetched()
        return Apply(self._topics, self._deps.settings, items, refusals, fetched)

    @property
    def settings(self) -> GatewaySettings:
        """The gateway's settings (the parking task reads the retry windows and backoff)."""
        return self._deps.settings


def plan(items: Sequence[_Item], seen: Mapping[str, SeenOrder]) -> FetchPlan:
    """The API calls ``items`` need: order detail while an order's lines are unknown (not for cancellations);
    settlement at completion (also when settled before: a later settlement under a reused id is new content);
    refunds at completion (marketplaces re-push the status with a newer time), on return statuses and on delivered
    (TikTok Shop keeps a returned order DELIVERED); on the last two a full return ends the order
    (:func:`services.gateway.fetching.return_end`), and their refunds are published only then (before the payout,
    whether it will deduct a refund is unknown: they are read again at completion)."""
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
    refunds = {
        i.notice.order_key: i.notice
        for i in items
        if i.verdict.completion or i.verdict.state in _RETURN_STATES | _OPEN_RETURN_STATES
    }
    completed = {i.notice.order_key for i in items if i.verdict.completion}
    open_returns = frozenset(
        i.notice.order_key
        for i in items
        if i.verdict.state in _OPEN_RETURN_STATES and i.notice.order_key not in completed
    )
    return FetchPlan(details, settlements, refunds, open_returns)


class Apply:
    """Apply phase of one prepared batch, in a unit of work: applies any subset of the batch's events (the whole
    batch, or one event during isolation) from the fetched answers, without calling out."""

    def __init__(
        self,
        topics: GatewayTopics,
        settings: GatewaySettings,
        items: list[_Item],
        refusals: dict[UUID, Refused],
        fetched: Fetched,
    ) -> None:
        self._topics = topics
        self._settings = settings
        #: Attempts and first parking time of deliveries retried from the parking table (they are parked again).
        self.history: dict[UUID, tuple[int, datetime]] = {}
        self._items = items
        self._refusals = refusals
        self.fetched = fetched

    async def __call__(self, uow: UnitOfWork, arrivals: Sequence[Arrival]) -> Normalised:
        """Apply ``arrivals``; returns the refused ones and the parked ones. Deliveries whose API was unreachable,
        or whose order already has a parked delivery, are parked (:mod:`services.gateway.parking`), not refused."""
        ids = {a.envelope.event_id for a in arrivals}
        refusals = [r for i, r in self._refusals.items() if i in ids]
        items = [i for i in self._items if i.arrival.envelope.event_id in ids]
        fetched = self.fetched
        behind = await parked_order_keys(uow, {i.notice.order_key for i in items}, ids)
        emissions: list[Emission] = []
        parked: list[tuple[Arrival, str, str, str]] = []
        settled: set[str] = set()
        refunds = {k: list(v) for k, v in fetched.refunds.items()}
        for item in items:
            key = item.notice.order_key
            if key in fetched.failed:
                raise fetched.failed[key]  # not the API's answer nor its absence: the consumer core retries it
            unreachable = fetched.unavailable.get(key)
            if unreachable is not None or key in behind:
                reason = unreachable[0] if unreachable else f"behind a parked delivery of {key}"
                parked.append((item.arrival, item.notice.channel, key, reason))
                continue
            refusal = fetched.refused.get(key)
            if refusal is not None:
                refusals.append(Refused(item.arrival.envelope, *refusal))
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
                    causation=item.arrival.envelope,
                )
            )
            if item.verdict.completion and key not in settled:
                settled.add(key)
                paid = fetched.settlements.get(key, [])
                emissions += [SettlementEmission(s, causation=item.arrival.envelope) for s in paid]
            emissions += [RefundEmission(r, causation=item.arrival.envelope) for r in refunds.pop(key, [])]
            ended = fetched.returns_ended.get(key)
            if ended is not None:
                # Never before the status that told of it: a Tokopedia status is stamped with its arrival (it has
                # no time), which may be later than the refund's own time, and an earlier end would be stale.
                at = max(ended, item.notice.update_time)
                ending = status_event(
                    replace(item.notice, raw_status=RETURN_COMPLETED, update_time=at, lines=(), gross_amount=None)
                )
                emissions.append(
                    StatusEmission(ending, OrderState.RETURNED.value, False, causation=item.arrival.envelope)
                )
        await park(uow, parked, settings=self._settings, history=self.history)
        await emit(uow, emissions, self._topics)
        return Normalised(refusals, {arrival.envelope.event_id for arrival, *_ in parked})


def parse(arrival: Arrival) -> _Item | Refused:
    """The delivery, what it says and its status verdict; or its refusal. The reason (stored and sent) and the
    facts (logged) name the delivery by ids and the error by class, field paths and codes, never by its values."""
    envelope = arrival.envelope
    if envelope.type != DELIVERY_RECEIVED:
        reason = f"unexpected event type {quoted_code(envelope.type)}"
        return Refused(envelope, reason, {"detail": reason})
    try:
        delivery = DeliveryReceived.model_validate(envelope.data)
    except ValidationError as exc:
        return Refused(envelope, error_text(exc, context=f"invalid {DELIVERY_RECEIVED}"), describe_error(exc))
    try:
        notice = parse_delivery(delivery.channel, delivery.webhook_type, delivery.body, delivery.received_at)
    except Exception as exc:
        problem = rejection_context(exc)
        if problem is None:
            raise
        return _delivery_refusal(envelope, delivery, error_text(exc, context=problem), exc)
    try:
        verdict = classify(notice.channel, notice.raw_status)
    except UnmappableStatus as exc:
        what = f"unmappable order status {quoted_code(notice.raw_status)} for channel {notice.channel!r}"
        return _delivery_refusal(envelope, delivery, what, exc)
    return _Item(arrival, delivery, notice, verdict)


def _delivery_refusal(envelope: Envelope, delivery: DeliveryReceived, what: str, exc: Exception) -> Refused:
    """A delivery refused for ``exc``: ``what`` (value-free) after the delivery's ids is the reason (stored and
    sent); the facts are the ids and the error's class and field paths, with the reason as ``detail`` (logged)."""
    reason = f"{delivery.channel} {delivery.webhook_type} delivery {delivery.delivery_id}: {what}"
    ids = {"channel": delivery.channel, "webhook_type": delivery.webhook_type, "delivery_id": delivery.delivery_id}
    return Refused(envelope, reason, {**ids, **describe_error(exc), "detail": what})
