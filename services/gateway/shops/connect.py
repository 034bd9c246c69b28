"""Connecting a shop: exchange the authorisation code for tokens and store them (``karya shops connect``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx

from infra.db.unit_of_work import Database
from services.gateway.clients.factory import aclose_clients, make_token_apis
from services.gateway.clients.settings import ClientSettings
from services.gateway.settings import GatewayConfigError
from services.gateway.shops.auth import TokenApi, TokenGrant
from services.gateway.shops.store import ShopTokenStore
from services.gateway.shops.wiring import cipher_of

__all__ = ["ShopTools", "connect_shop", "connect_simulated_shops", "shop_tools"]


@dataclass
class ShopTools:
    """The token APIs and the token store, as the CLI and the demo use them."""

    apis: dict[str, TokenApi]
    store: ShopTokenStore

    def api(self, channel: str) -> TokenApi:
        """The token API of ``channel``; GatewayConfigError for a channel that does not authorise per shop."""
        if channel not in self.apis:
            raise GatewayConfigError(f"{channel} does not authorise per shop (choose {', '.join(sorted(self.apis))})")
        return self.apis[channel]


@asynccontextmanager
async def shop_tools(
    db: Database,
    settings: ClientSettings,
    transport: httpx.AsyncBaseTransport | None = None,
) -> AsyncIterator[ShopTools]:
    """Token APIs and the token store on ``db`` (the gateway role's engine, the caller's to dispose, and the
    gateway's schema), with the clients' ``settings`` as the caller's root read them."""
    apis = make_token_apis(settings, transport)
    try:
        yield ShopTools(apis, ShopTokenStore(db, cipher_of(settings)))
    finally:
        await aclose_clients(apis)


async def connect_shop(tools: ShopTools, channel: str, code: str, shop_id: str | None) -> TokenGrant:
    """Exchange ``code`` (from the redirect after the seller's consent) and store the shop's tokens."""
    grant = await tools.api(channel).exchange(code.strip(), shop_id)
    await tools.store.save(grant, connected=True)
    return grant


async def connect_simulated_shops(
    tools: ShopTools, simulator: httpx.AsyncClient, shops: Iterable[tuple[str, str]]
) -> int:
    """Connect ``(channel, shop_id)`` shops of the simulator, which hands out codes at ``POST /_sim/authorize``."""
    count = 0
    for channel, shop_id in sorted(set(shops)):
        answer = await simulator.post("/_sim/authorize", json={"channel": channel, "shop_id": shop_id})
        answer.raise_for_status()
        await connect_shop(tools, channel, str(answer.json()["code"]), shop_id)
        count += 1
    return count
