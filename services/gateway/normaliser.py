"""The normaliser: verified raw deliveries → canonical order and settlement events (a batch consumer).

For each ``delivery_received`` event, inside the consumer's transaction:

1. parse the body (:mod:`services.gateway.normalise`) and classify its status with the orders service's
   tables; an unparseable body, a non-integral amount or an unmappable status is a :class:`Rejection` (dead
   letter with the reason);
2. complete trigger-only deliveries (Shopee, TikTok Shop; a Tokopedia status change for an order whose lines
   were never published) with the order-detail API — once per order, only while its lines are unknown and
   not for cancellations;
3. when the status reaches completion, fetch the settlement; a settled order yields ``settlement_reported``
   (an unsettled one is picked up later by the backstop poller);
4. publish through the gateway outbox, each fact once (:func:`services.gateway.emit.emit`).

Bad content — in a body or in an API answer — is a rejection, anything else is transient; the one mapping is
:func:`services.gateway.values.rejection_context` (a refused amount, quantity or time, an unparseable body, an
invalid event). Marketplace API errors are transient: they propagate, so the consumer core retries with backoff
and dead-letters after its maximum attempts.

A rejection's reason is stored with its dead letter and sent in the DLQ header, so it carries ids, field paths
and error codes (:func:`infra.errors.error_text`), never a value from the body: buyer names, phones and
addresses stay in ``gateway.raw_deliveries`` (redacted for other roles, and in place after the retention).
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncConnection

from infra.errors import describe_error, error_text, quoted_code
from infra.messaging.consumer import InboundEvent, Rejection
from services.contracts.channels import OrderState
from services.contracts.gateway import DELIVERY_RECEIVED, DeliveryReceived
from services.contracts.marketplace import RefundReported, SettlementReported
from services.gateway.canonical import (
    UnmappableStatus,
    Verdict,
    api_lines,
    classify,
    refund_event,
    settlement_event,
    status_event,
)
from services.gateway.clients.base import ApiOrder
from services.gateway.concurrency import run_bounded
from services.gateway.deps import GatewayDeps
from services.gateway.emit import (
    Emission,
    GatewayTopics,
    RefundEmission,
    SettlementEmission,
    StatusEmission,
    emit,
    load_seen,
)
from services.gateway.normalise import Notice, parse_delivery
from services.gateway.values import rejection_context


@dataclass(frozen=True, slots=True)
class _Item:
    event: InboundEvent
    delivery: DeliveryReceived
    notice: Notice
    verdict: Verdict


_RETURN_STATES = frozenset({OrderState.RETURN_REQUESTED, OrderState.RETURNED, OrderState.REFUNDED})

_Refusal = tuple[str, dict[str, object]]
"""Why an API answer about an order is refused: the reason (stored and sent) and the facts (logged), both
value-free."""


@dataclass(frozen=True, slots=True)
class _Fetched:
    details: dict[str, ApiOrder]
    settlements: dict[str, SettlementReported | None]
    refused: dict[str, _Refusal]  # by order key: each of the order's deliveries is rejected with it
    refunds: dict[str, list[RefundReported]]


class Normaliser:
    """Batch handler of the raw-deliveries topic (see the module docstring)."""

    def __init__(self, deps: GatewayDeps, topics: GatewayTopics) -> None:
        self._deps = deps
        self._topics = topics

    async def __call__(self, conn: AsyncConnection, events: Sequence[InboundEvent]) -> list[Rejection]:
        """Normalise ``events`` (new to this consumer); returns the rejected ones."""
        rejections: list[Rejection] = []
        items: list[_Item] = []
        for event in events:
            parsed = parse_event(event)
            if isinstance(parsed, Rejection):
                rejections.append(parsed)
            else:
                items.append(parsed)
        if not items:
            return rejections
        seen = await load_seen(conn, {i.notice.order_key for i in items})
        with_lines = {i.notice.order_key for i in items if i.notice.lines}
        details = {
            i.notice.order_key: i.notice
            for i in items
            if not i.notice.lines
            and i.notice.order_key not in with_lines
            and i.verdict.state is not OrderState.CANCELLED
            and not (i.notice.order_key in seen and seen[i.notice.order_key].has_lines)
        }
        settlements = {
            i.notice.order_key: i.notice
            for i in items
            if i.verdict.completion  # also when settled before: a later settlement under a reused id is new content
        }
        # A completed order pushed again may carry a refund (marketplaces re-push the status with a newer time);
        # a return status may too (the refund is read from the channel's returns API).
        refunds = {
            i.notice.order_key: i.notice for i in items if i.verdict.completion or i.verdict.state in _RETURN_STATES
        }
        fetched = await self._fetch(details, settlements, refunds)
        emissions: list[Emission] = []
        settled: set[str] = set()
        for item in items:
            key = item.notice.order_key
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
            emissions += [RefundEmission(r, causation=item.event.envelope) for r in fetched.refunds.pop(key, [])]
        await emit(conn, emissions, self._topics)
        return rejections

    async def _fetch(
        self, details: dict[str, Notice], settlements: dict[str, Notice], refunds: dict[str, Notice]
    ) -> _Fetched:
        """Order details, settlements and refunds, concurrently (bounded); API errors propagate."""
        out = _Fetched({}, {}, {}, {})

        def detail_of(key: str, n: Notice) -> Callable[[], Awaitable[None]]:
            async def call() -> None:
                with _refusals(out, key, f"{n.channel} order detail of {key}"):
                    out.details[key] = await self._deps.client(n.channel).order_detail(n.shop_id, n.order_id)

            return call

        def settlement_of(key: str, n: Notice) -> Callable[[], Awaitable[None]]:
            async def call() -> None:
                with _refusals(out, key, f"{n.channel} settlement of {key}"):
                    found = await self._deps.client(n.channel).settlement(n.shop_id, n.order_id)
                    event = settlement_event(found, n.channel, key) if found is not None else None
                    out.settlements[key] = event

            return call

        def refunds_of(key: str, n: Notice) -> Callable[[], Awaitable[None]]:
            async def call() -> None:
                client = self._deps.client(n.channel)
                fetch = getattr(client, "refunds", None)  # not every channel's API lists refunds
                if fetch is None:
                    return
                with _refusals(out, key, f"{n.channel} refunds of {key}"):
                    out.refunds[key] = [refund_event(r, key) for r in await fetch(n.shop_id, n.order_id)]

            return call

        calls = [detail_of(k, n) for k, n in details.items()]
        calls += [settlement_of(k, n) for k, n in settlements.items()]
        calls += [refunds_of(k, n) for k, n in refunds.items()]
        if calls:
            await run_bounded(calls, self._deps.settings.api_concurrency)
        return out


@contextlib.contextmanager
def _refusals(out: _Fetched, key: str, what: str) -> Iterator[None]:
    """Bad data in an API answer rejects the order's deliveries; any other error propagates (retried)."""
    try:
        yield
    except Exception as exc:
        problem = rejection_context(exc)
        if problem is None:
            raise
        out.refused[key] = (error_text(exc, context=f"{what}: {problem}"), {"order_key": key, **describe_error(exc)})


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
