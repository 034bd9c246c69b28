"""The normaliser's fetch phase: every marketplace API call a batch needs, before its database transaction.

Calls run concurrently (at most ``api_concurrency`` at once) and every answer or failure is kept in memory, by
order key, in a :class:`Fetched`; the apply phase (inside the transaction) reads only that. Each failure is
classified once (:func:`outcome_of`):

- **refused** — the answer's content is bad (a non-integral amount, :func:`services.gateway.values.rejection_context`)
  or the API refused the request itself (:class:`MarketplaceRefused`: 400, 404 unknown order): the order's
  deliveries are rejections (dead letters with a value-free reason);
- **unavailable** — the API could not answer now (:class:`MarketplaceUnavailable`: no connection, timeout, 5xx,
  429, 401/403; or any other :class:`MarketplaceApiError`, e.g. an error inside a 2xx body): the order's
  deliveries are parked (:mod:`services.gateway.parking`) and retried until the API answers;
- anything else is a bug or an unexpected condition: kept as ``failed`` and raised by the apply phase, so the
  consumer core retries and isolates it as before — without calling the API again.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from infra.errors import describe_error, error_text
from services.contracts.marketplace import RefundReported, SettlementReported
from services.gateway.canonical import refund_event, settlement_event
from services.gateway.clients.base import ApiOrder, MarketplaceApiError, settlements_of
from services.gateway.clients.http import MarketplaceRefused
from services.gateway.concurrency import run_bounded
from services.gateway.deps import GatewayDeps
from services.gateway.normalise import Notice
from services.gateway.values import rejection_context

Refusal = tuple[str, dict[str, object]]
"""Why an order's deliveries are refused or parked: the reason (stored) and the facts (logged), value-free."""


class Outcome(enum.Enum):
    """What an API failure means for the deliveries that needed the call."""

    REFUSED = "refused"
    UNAVAILABLE = "unavailable"
    FAILED = "failed"


def outcome_of(exc: BaseException) -> Outcome:
    """Classify a failed API call (see the module docstring)."""
    if isinstance(exc, Exception) and rejection_context(exc) is not None:
        return Outcome.REFUSED
    if isinstance(exc, MarketplaceRefused):
        return Outcome.REFUSED
    if isinstance(exc, MarketplaceApiError):
        return Outcome.UNAVAILABLE
    return Outcome.FAILED


@dataclass(slots=True)
class Fetched:
    """What the fetch phase learnt, by order key."""

    details: dict[str, ApiOrder] = field(default_factory=dict)
    settlements: dict[str, list[SettlementReported]] = field(default_factory=dict)
    refunds: dict[str, list[RefundReported]] = field(default_factory=dict)
    #: Orders whose return ended, every unit refunded (:func:`return_end`), with the time of the last refund.
    returns_ended: dict[str, datetime] = field(default_factory=dict)
    refused: dict[str, Refusal] = field(default_factory=dict)
    unavailable: dict[str, Refusal] = field(default_factory=dict)
    failed: dict[str, Exception] = field(default_factory=dict)

    def record(self, key: str, what: str, exc: Exception) -> None:
        """Keep ``exc`` (a failed call about order ``key``) by its :func:`outcome_of`."""
        outcome = outcome_of(exc)
        if outcome is Outcome.FAILED:
            self.failed.setdefault(key, exc)
            return
        problem = rejection_context(exc) or ("unreachable" if outcome is Outcome.UNAVAILABLE else "refused")
        why = (error_text(exc, context=f"{what}: {problem}"), {"order_key": key, **describe_error(exc)})
        (self.refused if outcome is Outcome.REFUSED else self.unavailable).setdefault(key, why)


@dataclass(frozen=True, slots=True)
class FetchPlan:
    """The calls a batch needs, by order key (the notice names channel, shop and order)."""

    details: dict[str, Notice]
    settlements: dict[str, Notice]
    refunds: dict[str, Notice]
    #: Of ``refunds``, the orders not completed (delivered or return requested): a full return ends them, and
    #: only then are their refunds published.
    open_returns: frozenset[str] = frozenset()


def return_end(refunds: Sequence[RefundReported], order: ApiOrder) -> datetime | None:
    """When a return ended an order that never completed: the time of the last refund, if the refunded returns
    (goods sent back) cover every unit the order has, or its whole product total; else None.

    No channel's order status says "returned" or "refunded" (Shopee stays ``TO_RETURN``, TikTok Shop
    ``DELIVERED``, Tokopedia ``601``): the returns API's refunded state is the marketplace's end of the return.
    """
    returns = [r for r in refunds if r.reason == "return"]
    if not returns:
        return None
    units = sum(line.quantity for r in returns for line in r.lines)
    amount = sum(r.amount for r in returns)
    if units < sum(line.quantity for line in order.lines) and amount < order.gross_amount:
        return None
    return max(r.refunded_at for r in refunds)


async def fetch(deps: GatewayDeps, plan: FetchPlan) -> Fetched:
    """Run ``plan``'s calls concurrently (bounded by ``api_concurrency``); no failure escapes, each is kept."""
    out = Fetched()

    def guarded(key: str, what: str, call: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            try:
                await call()
            except Exception as exc:
                out.record(key, what, exc)

        return run

    def detail_of(n: Notice) -> Callable[[], Awaitable[None]]:
        async def call() -> None:
            out.details[n.order_key] = await deps.client(n.channel).order_detail(n.shop_id, n.order_id)

        return call

    def settlement_of(n: Notice) -> Callable[[], Awaitable[None]]:
        async def call() -> None:
            found = await settlements_of(deps.client(n.channel), n.shop_id, n.order_id)
            events = (settlement_event(s, n.channel, n.order_key) for s in found)
            out.settlements[n.order_key] = [e for e in events if e is not None]

        return call

    def refunds_of(n: Notice) -> Callable[[], Awaitable[None]]:
        async def call() -> None:
            client = deps.client(n.channel)
            listing = getattr(client, "refunds", None)  # not every channel's API lists refunds
            if listing is None:
                return
            found = [refund_event(r, n.order_key) for r in await listing(n.shop_id, n.order_id)]
            if n.order_key not in plan.open_returns:
                out.refunds[n.order_key] = found
                return
            # Before the payout no one can tell whether it will deduct a refund (netting): the refunds of an order
            # not completed are published only when they end it (no payout follows), else read at completion.
            if any(r.reason == "return" for r in found):
                ended = return_end(found, await client.order_detail(n.shop_id, n.order_id))
                if ended is not None:
                    out.refunds[n.order_key] = found
                    out.returns_ended[n.order_key] = ended

        return call

    calls = [guarded(k, f"{n.channel} order detail of {k}", detail_of(n)) for k, n in plan.details.items()]
    calls += [guarded(k, f"{n.channel} settlement of {k}", settlement_of(n)) for k, n in plan.settlements.items()]
    calls += [guarded(k, f"{n.channel} refunds of {k}", refunds_of(n)) for k, n in plan.refunds.items()]
    if calls:
        await run_bounded(calls, deps.settings.api_concurrency)
    return out
