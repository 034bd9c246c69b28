"""Signed webhook bodies for Tokopedia, TikTok Shop and Shopee, and their delivery with bounded retries.

Bodies are compact JSON, signed over the exact bytes sent (see :mod:`sim.signing`). A redelivery sends the
same bytes and headers again. Deliveries retry on connection errors, timeouts, 408, 429 and 5xx along the
channel's retry schedule, scaled down and capped for the demo; any other answer is final.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Final

import httpx

from services.contracts.channels import Channel
from sim import render
from sim.settings import SimSettings
from sim.signing import shopee_webhook_signature, tiktok_webhook_signature, tokopedia_webhook_signature
from sim.state import SimOrder

__all__ = ["ROUTES", "Delivery", "Outgoing", "RetryPolicy", "build_webhook", "corrupt", "deliver"]

#: Gateway route per (channel, webhook kind).
ROUTES: Final[Mapping[tuple[Channel, str], str]] = MappingProxyType(
    {
        (Channel.TOKOPEDIA, "notification"): "/webhooks/tokopedia/order-notification",
        (Channel.TOKOPEDIA, "status"): "/webhooks/tokopedia/order-status",
        (Channel.TOKOPEDIA, "cancellation"): "/webhooks/tokopedia/order-cancellation",
        (Channel.TIKTOK_SHOP, "status"): "/webhooks/tiktok-shop/order-status",
        (Channel.TIKTOK_SHOP, "cancellation"): "/webhooks/tiktok-shop/cancellation",
        (Channel.SHOPEE, "status"): "/webhooks/shopee/order-status",
    }
)

#: Real retry delays in seconds after each failed attempt (TikTok Shop per its docs; the others uncertain).
RETRY_SCHEDULES: Final[Mapping[Channel, tuple[float, ...]]] = MappingProxyType(
    {
        Channel.TIKTOK_SHOP: (120.0, 1800.0, 10_800.0, 43_200.0),
        Channel.SHOPEE: (60.0, 300.0, 900.0),
        Channel.TOKOPEDIA: (60.0, 300.0, 900.0),
    }
)

_RETRY_STATUSES = frozenset({408, 429})


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One webhook ready to POST: route, exact body bytes and headers (signature included)."""

    channel: Channel
    route: str
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)


def _compact(payload: Mapping[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def build_webhook(
    order: SimOrder,
    kind: str,
    settings: SimSettings,
    timestamp: int,
    notification_id: str = "",
    reason: str = "",
) -> Outgoing:
    """The signed webhook of ``kind`` for the order's current status (``timestamp``: push time, unix s)."""
    channel = order.channel
    route = ROUTES.get((channel, kind))
    if route is None:
        raise ValueError(f"{channel.value} has no {kind!r} webhook")
    headers = {"Content-Type": "application/json"}
    if channel is Channel.TOKOPEDIA:
        body = _compact(render.tokopedia_webhook(order, settings.tokopedia_fs_id, kind, reason))
        headers["Authorization-Hmac"] = tokopedia_webhook_signature(settings.tokopedia_webhook_secret, body)
    elif channel is Channel.TIKTOK_SHOP:
        body = _compact(render.tiktok_webhook(order, kind, notification_id, timestamp, reason))
        headers["Authorization"] = tiktok_webhook_signature(settings.tiktok_app_key, settings.tiktok_app_secret, body)
    else:
        body = _compact(render.shopee_webhook(order, timestamp))
        callback = settings.shopee_callback_url(route)
        headers["Authorization"] = shopee_webhook_signature(settings.shopee_partner_key, callback, body)
    return Outgoing(channel, route, body, MappingProxyType(headers))


def corrupt(outgoing: Outgoing, fault: str) -> Outgoing:
    """A deliberately bad copy: ``tampered`` changes the body after signing; ``wrong_secret`` re-signs it
    with a key the gateway does not know. Either must be answered 401."""
    if fault == "tampered":
        payload = json.loads(outgoing.body)
        payload["tampered_by_simulator"] = True
        return replace(outgoing, body=_compact(payload))
    if fault == "wrong_secret":
        headers = dict(outgoing.headers)
        name = "Authorization-Hmac" if outgoing.channel is Channel.TOKOPEDIA else "Authorization"
        headers[name] = tokopedia_webhook_signature("not-the-secret", outgoing.body)
        return replace(outgoing, headers=MappingProxyType(headers))
    raise ValueError(f"unknown fault {fault!r}")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Channel retry schedules scaled by ``scale``, capped at ``max_delay_s`` (demo: fractions of 1 s)."""

    scale: float = 1 / 600
    max_delay_s: float = 2.0
    timeout_s: float = 5.0

    def delays(self, channel: Channel) -> tuple[float, ...]:
        """Delays before each retry of ``channel`` (one per retry)."""
        return tuple(min(d * self.scale, self.max_delay_s) for d in RETRY_SCHEDULES.get(channel, ()))


@dataclass(frozen=True, slots=True)
class Delivery:
    """Outcome of one delivery: the final HTTP status (None when no answer ever came) and attempts made."""

    status: int | None
    attempts: int
    error: str = ""

    @property
    def accepted(self) -> bool:
        """The gateway answered 2xx."""
        return self.status is not None and 200 <= self.status < 300


async def deliver(
    http: httpx.AsyncClient,
    base_url: str,
    outgoing: Outgoing,
    policy: RetryPolicy,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> Delivery:
    """POST ``outgoing`` to ``base_url`` + its route, retrying transient failures per ``policy``."""
    url = base_url.rstrip("/") + outgoing.route
    delays = policy.delays(outgoing.channel)
    attempts = 0
    status: int | None = None
    error = ""
    for delay in (None, *delays):
        if delay is not None:
            await sleep(delay)
        attempts += 1
        try:
            response = await http.post(
                url, content=outgoing.body, headers=dict(outgoing.headers), timeout=policy.timeout_s
            )
        except httpx.HTTPError as exc:
            status, error = None, f"{type(exc).__name__}: {exc}"
            continue
        status, error = response.status_code, ""
        if status < 500 and status not in _RETRY_STATUSES:
            break
    return Delivery(status, attempts, error)
