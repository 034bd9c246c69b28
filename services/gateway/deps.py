"""The gateway's settings and marketplace clients, resolved once and only when first needed.

Building the runtime (which ``karya schemas gen`` does to document topics) needs neither secrets nor clients;
serving does, and then a missing secret stops the process with a message naming it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from services.gateway.clients.base import MarketplaceClient
from services.gateway.settings import GatewayConfigError, GatewaySettings, load_settings

if TYPE_CHECKING:
    from services.gateway.clients.settings import ClientSettings
    from services.gateway.shops.store import ShopTokenStore


class MissingClient(RuntimeError):
    """No marketplace API client is configured for a channel."""


class GatewayDeps:
    """Lazily resolved settings and ``channel → client`` (both may be given up front, e.g. in tests)."""

    def __init__(
        self, settings: GatewaySettings | None = None, clients: Mapping[str, MarketplaceClient] | None = None
    ) -> None:
        self._settings = settings
        self._clients = clients
        self._client_settings: ClientSettings | None = None
        self._token_store: ShopTokenStore | None = None
        #: Builds the shop-token store the clients read (set by ``services.gateway.shops.wiring``).
        self.token_store_factory: Callable[[ClientSettings], ShopTokenStore] | None = None

    @property
    def client_settings(self) -> ClientSettings:
        """The API clients' settings (from the environment on first use); GatewayConfigError naming what is missing."""
        if self._client_settings is None:
            from services.gateway.clients.settings import ClientSettings, ClientSettingsError

            try:
                self._client_settings = ClientSettings.from_env()
            except ClientSettingsError as exc:
                raise GatewayConfigError(f"the gateway refuses to start: {exc}") from None
        return self._client_settings

    @property
    def token_store(self) -> ShopTokenStore:
        """The shops' tokens (built once from the client settings' ``KARYA_TOKEN_KEY``)."""
        if self._token_store is None:
            if self.token_store_factory is None:
                raise GatewayConfigError("no shop-token store is wired into this gateway")
            self._token_store = self.token_store_factory(self.client_settings)
        return self._token_store

    @property
    def settings(self) -> GatewaySettings:
        """The settings (from the environment on first use).

        Raises:
            GatewayConfigError: a required variable is missing (the message names it).
        """
        if self._settings is None:
            self._settings = load_settings()
        return self._settings

    @property
    def clients(self) -> Mapping[str, MarketplaceClient]:
        """The marketplace API clients by channel (built from their environment settings on first use).

        Raises:
            GatewayConfigError: a client credential is missing (the message names it).
        """
        if self._clients is None:
            from services.gateway.clients.factory import make_clients

            self._clients = make_clients(self.client_settings, self.token_store)
        return self._clients

    async def aclose(self) -> None:
        """Close the clients' connection pools (if they were built)."""
        if self._clients is not None:
            from services.gateway.clients.factory import aclose_clients

            await aclose_clients(self._clients)

    def client(self, channel: str) -> MarketplaceClient:
        """The client of ``channel``.

        Raises:
            MissingClient: none configured.
        """
        client = self.clients.get(channel)
        if client is None:
            raise MissingClient(f"no marketplace API client configured for {channel!r}")
        return client
