"""Build the four marketplace API clients and the two token APIs from :class:`ClientSettings`."""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from services.gateway.clients.base import MarketplaceClient
from services.gateway.clients.blibli import BlibliClient, BlibliCredentials
from services.gateway.clients.settings import ClientSettings
from services.gateway.clients.shopee import ShopeeClient
from services.gateway.clients.tiktok_shop import TikTokShopClient
from services.gateway.clients.tokens import TokenSource
from services.gateway.clients.tokopedia import TokopediaClient
from services.gateway.shops.auth import ShopeeAuth, TikTokAuth, TokenApi

__all__ = ["aclose_clients", "make_clients", "make_token_apis"]


def _partner_id(settings: ClientSettings) -> int:
    partner_id = settings.shopee_partner_id
    assert partner_id is not None  # validated by ClientSettings
    return partner_id


def make_clients(
    settings: ClientSettings, tokens: TokenSource, transport: httpx.AsyncBaseTransport | None = None
) -> dict[str, MarketplaceClient]:
    """One client per channel, keyed by channel name (``tokopedia``, ``tiktok_shop``, ``shopee``, ``blibli``).

    ``tokens`` hands Shopee and TikTok Shop calls their shop's access token. ``transport`` replaces the network
    for every client (tests: ``httpx.ASGITransport(simulator_app)``). Close them with :func:`aclose_clients`.
    """
    timeout = settings.marketplace_api_timeout_s
    blibli = BlibliCredentials(
        client_id=settings.secret("blibli_api_client_id"),
        client_key=settings.secret("blibli_api_client_key"),
        seller_key=settings.secret("blibli_api_key"),
        signature_key=settings.secret("blibli_api_secret"),
        channel_id=settings.blibli_channel_id,
        username=settings.blibli_username or None,
    )
    return {
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
            tokens,
            timeout_s=timeout,
            transport=transport,
        ),
        "shopee": ShopeeClient(
            settings.shopee_api_url,
            _partner_id(settings),
            settings.secret("shopee_partner_key"),
            tokens,
            timeout_s=timeout,
            transport=transport,
        ),
        "blibli": BlibliClient(settings.blibli_api_url, blibli, timeout_s=timeout, transport=transport),
    }


def make_token_apis(settings: ClientSettings, transport: httpx.AsyncBaseTransport | None = None) -> dict[str, TokenApi]:
    """The token endpoints of the channels that authorise per shop (``shopee``, ``tiktok_shop``)."""
    timeout = settings.marketplace_api_timeout_s
    return {
        "shopee": ShopeeAuth(
            settings.shopee_api_url,
            (_partner_id(settings), settings.secret("shopee_partner_key")),
            settings.shopee_redirect_url,
            timeout_s=timeout,
            transport=transport,
        ),
        "tiktok_shop": TikTokAuth(
            settings.tiktok_auth_url,
            settings.tiktok_api_url,
            settings.tiktok_authorize_url,
            settings.secret("tiktok_app_key"),
            settings.secret("tiktok_app_secret"),
            settings.tiktok_service_id,
            timeout_s=timeout,
            transport=transport,
        ),
    }


async def aclose_clients(clients: Mapping[str, object]) -> None:
    """Close every client's connection pool (clients without ``aclose`` are skipped)."""
    for client in clients.values():
        close = getattr(client, "aclose", None)
        if close is not None:
            await close()
