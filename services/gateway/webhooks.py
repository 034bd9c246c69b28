"""Webhook routes: read the raw body, enforce size and content type, verify, store once, answer as expected.

No business logic here. Each route, in order:

1. ``Content-Length`` over the limit → 413 (without reading);
2. a content type other than ``application/json`` → 415;
3. the body is read as a stream and cut off at the limit → 413 (also when no length was announced); a body
   that has not arrived whole within ``KARYA_GATEWAY_BODY_TIMEOUT_S`` → 408 and the connection is closed;
4. a missing or wrong signature → 401, nothing stored;
5. admission (:mod:`services.gateway.normalise.admission`): a push whose own time is outside the replay window
   → 400, nothing stored; a body that cannot be used (not JSON, a field missing or malformed, a fractional
   amount, an unknown TikTok cancel status) → stored under a key of its own with no outbox row, answered 422 naming the
   problem — so it never takes the dedupe key of a later, valid delivery;
6. the delivery is stored with its outbox row (a duplicate dedupe key stores nothing) → 2xx.

Answers: Shopee expects 2xx with an empty body; TikTok Shop expects 200 within 3 s (one insert, no API call);
Tokopedia expects 200.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import Counter

from infra.errors import describe_error
from infra.logging import get_logger
from services.gateway.dedupe import DeliveryKeys, delivery_keys
from services.gateway.deliveries import DeliveryStore, StoredDelivery
from services.gateway.normalise.admission import admit, rejected_key
from services.gateway.settings import GatewaySettings
from services.gateway.signatures import SignatureScheme, shopee_scheme, tiktok_shop_scheme, tokopedia_scheme

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class WebhookRoute:
    """One webhook endpoint: its path, channel, webhook type and signature scheme."""

    path: str
    channel: str
    webhook_type: str
    scheme: SignatureScheme
    empty_answer: bool = False


class _BodyTooLarge(Exception):
    pass


def _secret(value: object) -> str | None:
    get = getattr(value, "get_secret_value", None)
    return str(get()) if get is not None else None


def webhook_routes(settings: GatewaySettings) -> list[WebhookRoute]:
    """The routes of the channel contract with their signature schemes built from ``settings``."""
    tokopedia = tokopedia_scheme(
        settings.tokopedia_webhook_secret.get_secret_value(),
        _secret(settings.tokopedia_webhook_secret_previous),
    )
    tiktok = tiktok_shop_scheme(
        settings.tiktok_app_key,
        settings.tiktok_app_secret.get_secret_value(),
        _secret(settings.tiktok_app_secret_previous),
    )
    shopee_path = "/webhooks/shopee/order-status"
    shopee = shopee_scheme(
        settings.gateway_public_url.rstrip("/") + shopee_path,
        settings.shopee_partner_key.get_secret_value(),
        _secret(settings.shopee_partner_key_previous),
    )
    return [
        WebhookRoute("/webhooks/tokopedia/order-notification", "tokopedia", "order_notification", tokopedia),
        WebhookRoute("/webhooks/tokopedia/order-status", "tokopedia", "order_status", tokopedia),
        WebhookRoute("/webhooks/tokopedia/order-cancellation", "tokopedia", "order_cancellation", tokopedia),
        WebhookRoute("/webhooks/tiktok-shop/order-status", "tiktok_shop", "order_status", tiktok),
        WebhookRoute("/webhooks/tiktok-shop/cancellation", "tiktok_shop", "order_cancellation", tiktok),
        WebhookRoute(shopee_path, "shopee", "order_status", shopee, empty_answer=True),
    ]


async def _read_limited(request: Request, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _is_json(content_type: str | None) -> bool:
    return (content_type or "").split(";", 1)[0].strip().lower() == "application/json"


def _error(status: int, message: str, *, close: bool = False) -> Response:
    headers = {"Connection": "close"} if close else None
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def make_webhook_router(settings: GatewaySettings, store: DeliveryStore, outcomes: Counter | None = None) -> APIRouter:
    """The FastAPI router with one POST route per channel and webhook type.

    ``outcomes`` (labels channel, outcome) counts every request: accepted, duplicate, bad_signature,
    too_large, body_timeout, unsupported_type, replay, rejected, store_failed.
    """
    router = APIRouter(tags=["webhooks"])
    for route in webhook_routes(settings):
        router.add_api_route(
            route.path,
            _endpoint(route, store, settings, outcomes),
            methods=["POST"],
            include_in_schema=True,
            summary=f"{route.channel} {route.webhook_type} webhook",
        )
    return router


def _endpoint(
    route: WebhookRoute, store: DeliveryStore, settings: GatewaySettings, outcomes: Counter | None
) -> Callable[[Request], Awaitable[Response]]:
    limit, body_timeout_s = settings.webhook_max_body_bytes, settings.gateway_body_timeout_s

    def count(outcome: str) -> None:
        if outcomes is not None:
            outcomes.labels(route.channel, outcome).inc()

    async def keep(keys: DeliveryKeys, body: bytes, request: Request, publish: bool) -> StoredDelivery | Response:
        try:
            return await store.store(
                route.channel, route.webhook_type, keys, body, dict(request.headers), publish=publish
            )
        except Exception as exc:
            # Answered here: the server would log the traceback, whose text can quote the delivery's body.
            log.error(
                "webhook_store_failed", channel=route.channel, webhook_type=route.webhook_type, **describe_error(exc)
            )
            count("store_failed")
            return _error(500, "the delivery could not be stored; retry later")

    async def receive(request: Request) -> Response:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            count("too_large")
            return _error(413, f"body larger than {limit} bytes")
        if not _is_json(request.headers.get("content-type")):
            count("unsupported_type")
            return _error(415, "content type must be application/json")
        try:
            async with asyncio.timeout(body_timeout_s):
                body = await _read_limited(request, limit)
        except _BodyTooLarge:
            count("too_large")
            return _error(413, f"body larger than {limit} bytes")
        except TimeoutError:
            # A slow sender must not hold a connection and a task; the rest of its body is never read.
            log.warning("webhook_body_timeout", channel=route.channel, webhook_type=route.webhook_type)
            count("body_timeout")
            return _error(408, f"body not received within {body_timeout_s:g} s", close=True)
        if not route.scheme.verify(body, request.headers.get(route.scheme.header)):
            log.warning("webhook_signature_rejected", channel=route.channel, webhook_type=route.webhook_type)
            count("bad_signature")
            return _error(401, "invalid signature")
        admission = admit(
            route.channel,
            route.webhook_type,
            body,
            datetime.now(UTC),
            window_s=settings.webhook_replay_window_s,
            skew_s=settings.webhook_clock_skew_s,
        )
        if admission.replay:
            log.warning("webhook_replay_refused", channel=route.channel, webhook_type=route.webhook_type)
            count("replay")
            return _error(400, admission.problem)
        if admission.notice is None:
            # Kept as evidence under a key of its own: the dedupe key stays free for a corrected resend.
            okeys = delivery_keys(route.channel, route.webhook_type, body)
            rejected = DeliveryKeys(rejected_key(route.channel, route.webhook_type, body), okeys.order_key)
            kept = await keep(rejected, body, request, publish=False)
            if isinstance(kept, Response):
                return kept
            log.warning(
                "webhook_content_rejected",
                channel=route.channel,
                webhook_type=route.webhook_type,
                delivery_id=kept.delivery_id,
                problem=admission.problem,
            )
            count("rejected")
            return _error(422, admission.problem)
        keys = delivery_keys(route.channel, route.webhook_type, body)
        stored = await keep(keys, body, request, publish=True)
        if isinstance(stored, Response):
            return stored
        count("accepted" if stored.created else "duplicate")
        if not stored.created:
            log.info("webhook_duplicate", channel=route.channel, dedupe_key=keys.dedupe_key)
        if route.empty_answer:
            return Response(status_code=200)
        return JSONResponse({"status": "ok", "duplicate": not stored.created})

    receive.__name__ = f"{route.channel}_{route.webhook_type}_webhook"
    return receive
