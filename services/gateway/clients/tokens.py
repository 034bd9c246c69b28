"""What a shop-level API call needs from the token store: the shop's access token (and TikTok's shop cipher).

Shopee and TikTok Shop authorise per shop (``karya shops connect CHANNEL``); the clients ask a
:class:`TokenSource` for the current access token on every call, so a refresh shows up at the next call.
:class:`services.gateway.shops.store.ShopTokenStore` is the source (encrypted rows in ``gateway.shop_tokens``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from services.gateway.clients.base import MarketplaceApiError

__all__ = ["ShopAccess", "ShopNotConnected", "TokenSource", "not_connected"]


@dataclass(frozen=True, slots=True)
class ShopAccess:
    """The access token of one shop; ``shop_cipher`` is TikTok Shop's shop identifier in 202309 calls."""

    access_token: str
    shop_cipher: str | None = None

    def __repr__(self) -> str:  # never print a token
        return f"ShopAccess(access_token='***', shop_cipher={self.shop_cipher!r})"


class ShopNotConnected(MarketplaceApiError):
    """No usable token for a shop: it was never connected, or its refresh token expired (the message says which)."""


class TokenSource(Protocol):
    """Hands out the current access token of a shop."""

    async def access(self, channel: str, shop_id: str) -> ShopAccess:
        """The shop's access token now.

        Raises:
            ShopNotConnected: no usable token (the message says how to connect the shop).
        """
        ...


def not_connected(channel: str, shop_id: str) -> str:
    """The readable refusal for a shop without a token."""
    return f"{channel} shop {shop_id} is not connected: run `karya shops connect {channel}` for it"
