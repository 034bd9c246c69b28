"""Simulator settings: the same credentials the gateway and its API clients use (see the channel contract).

Read from the environment (``KARYA_*``) or built directly in tests. Webhooks go only to loopback
addresses: :func:`require_loopback` refuses anything else.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["SimSettings", "SimSettingsError", "require_loopback"]

_REQUIRED = {
    "tokopedia_webhook_secret": "KARYA_TOKOPEDIA_WEBHOOK_SECRET",
    "tokopedia_api_token": "KARYA_TOKOPEDIA_API_TOKEN",
    "tiktok_app_key": "KARYA_TIKTOK_APP_KEY",
    "tiktok_app_secret": "KARYA_TIKTOK_APP_SECRET",
    "shopee_partner_id": "KARYA_SHOPEE_PARTNER_ID",
    "shopee_partner_key": "KARYA_SHOPEE_PARTNER_KEY",
    "blibli_api_client_id": "KARYA_BLIBLI_API_CLIENT_ID",
    "blibli_api_client_key": "KARYA_BLIBLI_API_CLIENT_KEY",
    "blibli_api_key": "KARYA_BLIBLI_API_KEY",
    "blibli_api_secret": "KARYA_BLIBLI_API_SECRET",
}


class SimSettingsError(ValueError):
    """Settings are missing or invalid; the message names the variables."""


class SimSettings(BaseSettings):
    """Credentials, the gateway's address and the request-time tolerance of the simulated APIs.

    ``gateway_url`` is where webhooks are POSTed (``KARYA_SIM_GATEWAY_URL``); ``gateway_public_url`` is
    the URL the gateway believes it is reached at (``KARYA_GATEWAY_PUBLIC_URL``): Shopee signs the callback
    URL built from it. Both default to ``http://127.0.0.1:8083``.
    """

    model_config = SettingsConfigDict(env_prefix="KARYA_", extra="ignore")

    tokopedia_webhook_secret: str = ""
    tokopedia_api_token: str = ""
    tokopedia_fs_id: int = Field(default=13004, ge=1)
    tiktok_app_key: str = ""
    tiktok_app_secret: str = ""
    shopee_partner_id: int = Field(default=0, ge=0)
    shopee_partner_key: str = ""
    blibli_api_client_id: str = ""
    blibli_api_client_key: str = ""
    blibli_api_key: str = ""
    blibli_api_secret: str = ""
    sim_gateway_url: str = "http://127.0.0.1:8083"
    gateway_public_url: str = "http://127.0.0.1:8083"
    sim_max_clock_skew_s: int = Field(default=300, ge=1, description="Accepted |now − request timestamp|.")
    sim_shopee_access_ttl_s: int = Field(default=4 * 3600, ge=1, description="Shopee access tokens live 4 hours.")
    sim_tiktok_access_ttl_s: int = Field(default=7 * 86_400, ge=1, description="TikTok Shop access tokens: 7 days.")
    sim_refresh_ttl_s: int = Field(default=30 * 86_400, ge=1, description="Refresh tokens live 30 days.")

    @model_validator(mode="after")
    def _complete(self) -> SimSettings:
        missing = [env for name, env in _REQUIRED.items() if not getattr(self, name)]
        if missing:
            raise ValueError(f"missing simulator credentials: set {', '.join(missing)}")
        require_loopback(self.sim_gateway_url)
        return self

    @classmethod
    def from_env(cls) -> SimSettings:
        """Read the environment; raise :class:`SimSettingsError` naming what is missing or invalid."""
        try:
            return cls()
        except ValidationError as exc:
            messages = [str(e["msg"]).removeprefix("Value error, ") for e in exc.errors()]
            raise SimSettingsError("; ".join(messages)) from None

    def shopee_callback_url(self, route: str) -> str:
        """The callback URL Shopee signs for ``route`` (the gateway's public URL + the route path)."""
        return self.gateway_public_url.rstrip("/") + route


def require_loopback(url: str) -> str:
    """Return ``url`` if its host is a loopback address (or ``localhost``), else raise ValueError."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return url
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ValueError(f"the simulator only delivers to loopback addresses, not {url!r}")
    return url
