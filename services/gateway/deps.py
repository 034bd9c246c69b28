"""The gateway's settings and marketplace clients: the settings as the composition root read them
(:func:`read_config`, called by ``karya.services`` when the gateway is to serve), the clients built from them on
first use.

Building the runtime (which ``karya schemas gen`` does to document topics) needs neither secrets nor clients: it is
built with no settings, and a runtime built so refuses to serve.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from services.gateway.clients.base import MarketplaceClient
from services.gateway.settings import GatewayConfigError, GatewaySettings, load_settings

if TYPE_CHECKING:
    from services.gateway.clients.settings import ClientSettings
    from services.gateway.shops.store import ShopTokenStore


_NOT_SERVED = (
    "the gateway was built without its {what} (to be described, not served): the composition root reads them "
    "with services.gateway.app.read_settings() and passes them to build_runtime"
)


class MissingClient(RuntimeError):
    """No marketplace API client is configured for a channel."""


@dataclass(frozen=True)
class GatewayConfig:
    """The gateway's own settings as its composition root reads them: webhooks, pollers and retention
    (``settings``) and the marketplace API clients' (``clients``)."""

    settings: GatewaySettings
    clients: ClientSettings


def read_config() -> GatewayConfig:
    """The gateway's settings from the environment.

    Raises:
        GatewayConfigError: naming every missing or invalid variable (the webhook secrets and the clients'
            credentials in one message).
    """
    from services.gateway.clients.settings import ClientSettings, ClientSettingsError

    settings = load_settings()
    try:
        return GatewayConfig(settings, ClientSettings.from_env())
    except ClientSettingsError as exc:
        raise GatewayConfigError(f"the gateway refuses to start: {exc}") from None


class GatewayDeps:
    """The settings the root passed (``GatewayConfig``, or only the ``GatewaySettings`` when the clients are given,
    e.g. stand-ins in tests) and ``channel → client``, built from the clients' settings on first use."""

    def __init__(
        self,
        settings: GatewayConfig | GatewaySettings | None = None,
        clients: Mapping[str, MarketplaceClient] | None = None,
    ) -> None:
        config = settings if isinstance(settings, GatewayConfig) else None
        self._settings = config.settings if config else settings if isinstance(settings, GatewaySettings) else None
        self._clients = clients
        self._client_settings: ClientSettings | None = config.clients if config else None
        self._token_store: ShopTokenStore | None = None
        #: Builds the shop-token store the clients read (set by ``services.gateway.shops.wiring``).
        self.token_store_factory: Callable[[ClientSettings], ShopTokenStore] | None = None

    @property
    def client_settings(self) -> ClientSettings:
        """The API clients' settings, as the root passed them; GatewayConfigError when it passed none."""
        if self._client_settings is None:
            raise GatewayConfigError(_NOT_SERVED.format(what="API clients' settings"))
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
        """The settings, as the root passed them.

        Raises:
            GatewayConfigError: it passed none (a runtime built to be described).
        """
        if self._settings is None:
            raise GatewayConfigError(_NOT_SERVED.format(what="settings"))
        return self._settings

    @property
    def clients(self) -> Mapping[str, MarketplaceClient]:
        """The marketplace API clients by channel (built from the clients' settings on first use).

        Raises:
            GatewayConfigError: the root passed no clients' settings.
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
