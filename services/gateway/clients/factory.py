"""Build the four marketplace API clients from :class:`ClientSettings`."""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from services.gateway.clients.base import MarketplaceClient
from services.gateway.clients.blibli import BlibliClient
from services.gateway.clients.settings import ClientSettings
from services.gateway.clients.shopee import ShopeeClient
from services.gateway.clients.tiktok_shop import TikTokShopClient
from services.gateway.clients.tokopedia import TokopediaClient

__all__ = ["aclose_clients", "make_clients"]


def make_clients(
    settings: ClientSettings, transport: httpx.AsyncBaseTransport | None = None
) -> dict[str, MarketplaceClient]:
    """One client per channel, keyed by channel name (``tokopedia``, ``tiktok_shop``, ``shopee``, ``blibli``).

    ``transport`` replaces the network for every client (tests: ``httpx.ASGITransport(simulator_app)``).
    Close them with :func:`aclose_clients`.
    """
    timeout = settings.marketplace_api_timeout_s
    access_token = settings.tiktok_access_token.get_secret_value() if settings.tiktok_access_token else None
    partner_id = settings.shopee_partner_id
    assert partner_id is not None  # validated by ClientSettings
    clients: dict[str, MarketplaceClient] = {
        "tokopedia": TokopediaClient(
            settings.tokopedia_api_url,
            settings.tokopedia_fs_id,
            settings.secret("tokopedia_api_token"),
            timeout_s=timeout,
            transport=transport,
        ),
        "tiktok_shop": TikTokShopClient(
            settings.tiktok_api_url,
            settings.secret("tiktok_app_key"),
            settings.secret("tiktok_app_secret"),
            access_token,
            timeout_s=timeout,
            transport=transport,
        ),
        "shopee": ShopeeClient(
            settings.shopee_api_url,
            partner_id,
            settings.secret("shopee_partner_key"),
            timeout_s=timeout,
            transport=transport,
        ),
        "blibli": BlibliClient(
            settings.blibli_api_url,
            settings.secret("blibli_api_key"),
            settings.secret("blibli_api_secret"),
            timeout_s=timeout,
            transport=transport,
        ),
    }
    return clients


async def aclose_clients(clients: Mapping[str, MarketplaceClient]) -> None:
    """Close every client's connection pool (clients without ``aclose`` are skipped)."""
    for client in clients.values():
        close = getattr(client, "aclose", None)
        if close is not None:
            await close()
