"""Wire the shop tokens into a gateway runtime: the store the API clients read and the ``token-refresher`` task."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from infra.runtime import ServiceRuntime
from services.gateway.clients.factory import aclose_clients, make_token_apis
from services.gateway.clients.settings import ClientSettings
from services.gateway.deps import GatewayDeps
from services.gateway.settings import GatewayConfigError
from services.gateway.shops.crypto import TokenCipher, TokenKeyError
from services.gateway.shops.refresher import TokenMetrics, run_token_refresher
from services.gateway.shops.store import ShopTokenStore

__all__ = ["cipher_of", "wire_shop_tokens"]


def cipher_of(settings: ClientSettings) -> TokenCipher:
    """The token cipher of ``KARYA_TOKEN_KEY``; GatewayConfigError (naming the variable, not the value) if unusable."""
    try:
        return TokenCipher.from_text(settings.token_key.get_secret_value() if settings.token_key else None)
    except TokenKeyError as exc:
        raise GatewayConfigError(f"the gateway refuses to start: {exc}") from None


def wire_shop_tokens(runtime: ServiceRuntime, deps: GatewayDeps, *, refresher: bool = True) -> None:
    """The clients read tokens from ``gateway.shop_tokens``; a supervised task refreshes them before expiry.

    ``refresher=False`` (a runtime given its clients, e.g. tests with stand-ins) registers the metrics only.
    """
    deps.token_store_factory = lambda settings: ShopTokenStore(runtime.db, cipher_of(settings))
    metrics = TokenMetrics(runtime.metrics.registry)
    if not refresher:
        return

    async def refresh_tokens(stop: asyncio.Event) -> None:
        settings = deps.client_settings
        apis = make_token_apis(settings)
        try:
            await run_token_refresher(
                deps.token_store,
                apis,
                stop,
                metrics,
                interval_s=settings.token_refresh_interval_s,
                margin=timedelta(seconds=settings.token_refresh_margin_s),
            )
        finally:
            await aclose_clients(apis)

    runtime.add_background("token-refresher", refresh_tokens)
