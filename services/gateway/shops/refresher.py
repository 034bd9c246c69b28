"""The gateway's ``token-refresher`` task: every shop's access token is replaced before it expires.

Every ``KARYA_TOKEN_REFRESH_INTERVAL_S`` it refreshes the shops whose access token expires within
``KARYA_TOKEN_REFRESH_MARGIN_S`` (Shopee's live 4 hours; TikTok Shop's days). A refresh that fails is retried at
the next round; it is recorded in the shop's row (``karya shops list`` shows the error), logged as
``token_refresh_failed`` (channel, shop, error; never a token) and sets ``karya_gateway_token_refresh_failing
{channel,shop_id}`` to 1, which alert ``KaryaShopTokenRefreshFailing`` watches; a later success sets it back to 0.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from datetime import timedelta

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge

from infra.metrics import labelled
from services.gateway.clients.base import MarketplaceApiError
from services.gateway.shops.auth import TokenApi
from services.gateway.shops.store import ShopTokenStore

__all__ = ["TokenMetrics", "refresh_due", "run_token_refresher"]

log = structlog.get_logger("karya.gateway.tokens")


class TokenMetrics:
    """``karya_gateway_token_refreshes_total{channel,outcome}`` and ``karya_gateway_token_refresh_failing``."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        refreshes = "Seller-API token refreshes by channel and outcome (refreshed, failed)"
        failing = "1 while the last refresh of a shop's token failed, 0 once one succeeded"
        self.refreshes = labelled(
            Counter, "karya_gateway_token_refreshes_total", refreshes, ("channel", "outcome"), registry
        )
        self.failing = labelled(Gauge, "karya_gateway_token_refresh_failing", failing, ("channel", "shop_id"), registry)


async def refresh_due(
    store: ShopTokenStore, apis: Mapping[str, TokenApi], margin: timedelta, metrics: TokenMetrics
) -> tuple[int, int]:
    """Refresh every shop due within ``margin``; returns (refreshed, failed)."""
    refreshed = failed = 0
    for channel, shop_id in await store.due(margin):
        api = apis.get(channel)
        if api is None:
            continue
        async with store.claim(channel, shop_id, margin) as claim:
            if claim is None:  # refreshed meanwhile, or another replica is refreshing it
                continue
            due = claim.token
            try:
                grant = await api.refresh(due.refresh_token, shop_id, due.shop_cipher)
            except MarketplaceApiError as exc:
                error = f"refresh of {channel} shop {shop_id} failed: {exc}"
                await claim.fail(error)
                metrics.refreshes.labels(channel, "failed").inc()
                metrics.failing.labels(channel, shop_id).set(1)
                log.warning(
                    "token_refresh_failed",
                    channel=channel,
                    shop_id=shop_id,
                    expires_at=due.access_expires_at.isoformat(),
                    failures=due.refresh_failures + 1,
                    error=error,
                )
                failed += 1
                continue
            await claim.save(grant)
        metrics.refreshes.labels(channel, "refreshed").inc()
        metrics.failing.labels(channel, shop_id).set(0)
        log.info("token_refreshed", channel=channel, shop_id=shop_id, expires_at=grant.access_expires_at.isoformat())
        refreshed += 1
    return refreshed, failed


async def run_token_refresher(
    store: ShopTokenStore,
    apis: Mapping[str, TokenApi],
    stop: asyncio.Event,
    metrics: TokenMetrics,
    *,
    interval_s: float,
    margin: timedelta,
) -> None:
    """Refresh due tokens every ``interval_s`` until ``stop`` is set (a supervised background task)."""
    while not stop.is_set():
        await refresh_due(store, apis, margin, metrics)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval_s)
