"""A fixed :class:`~services.gateway.clients.tokens.TokenSource` for tests that call the marketplace clients."""

from __future__ import annotations

from collections.abc import Mapping

from services.gateway.clients.tokens import ShopAccess, ShopNotConnected, not_connected


class StaticTokens:
    """Fixed tokens by ``(channel, shop_id)``; any other shop is refused as the real store refuses it."""

    def __init__(self, tokens: Mapping[tuple[str, str], ShopAccess]) -> None:
        self._tokens = dict(tokens)

    async def access(self, channel: str, shop_id: str) -> ShopAccess:
        """The configured token, else :class:`ShopNotConnected`."""
        found = self._tokens.get((channel, shop_id))
        if found is None:
            raise ShopNotConnected(not_connected(channel, shop_id))
        return found
