"""The gateway's settings and marketplace clients, resolved once and only when first needed.

Building the runtime (which ``karya schemas gen`` does to document topics) needs neither secrets nor clients;
serving does, and then a missing secret stops the process with a message naming it.
"""

from __future__ import annotations

from collections.abc import Mapping

from services.gateway.clients.base import MarketplaceClient
from services.gateway.settings import GatewayConfigError, GatewaySettings, load_settings


class MissingClient(RuntimeError):
    """No marketplace API client is configured for a channel."""


class GatewayDeps:
    """Lazily resolved settings and ``channel → client`` (both may be given up front, e.g. in tests)."""

    def __init__(
        self, settings: GatewaySettings | None = None, clients: Mapping[str, MarketplaceClient] | None = None
    ) -> None:
        self._settings = settings
        self._clients = clients

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
            from services.gateway.clients.settings import ClientSettings, ClientSettingsError

            try:
                self._clients = make_clients(ClientSettings.from_env())
            except ClientSettingsError as exc:
                raise GatewayConfigError(f"the gateway refuses to start: {exc}") from None
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
