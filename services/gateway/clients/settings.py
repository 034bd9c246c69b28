"""Settings of the marketplace API clients: base URLs and credentials, from the environment only.

Base URLs default to the local simulator (``http://127.0.0.1:8090/<channel>``); credentials have no default.
:meth:`ClientSettings.from_env` refuses with one message naming every missing variable.

================================  ========================================================
variable                          use
================================  ========================================================
KARYA_TOKOPEDIA_API_URL           Tokopedia fs API base URL
KARYA_TOKOPEDIA_API_TOKEN         bearer token (required)
KARYA_TOKOPEDIA_FS_ID             the app's fs_id in API paths (default 13004)
KARYA_TIKTOK_API_URL              TikTok Shop API base URL
KARYA_TIKTOK_APP_KEY              app key (required)
KARYA_TIKTOK_APP_SECRET           app secret, signs requests (required)
KARYA_TIKTOK_AUTH_URL             TikTok Shop token host (``https://auth.tiktok-shops.com``)
KARYA_TIKTOK_AUTHORIZE_URL        where sellers authorise (``https://services.tiktokshop.com``)
KARYA_TIKTOK_SERVICE_ID           the app's service id in the authorisation link
KARYA_SHOPEE_API_URL              Shopee API base URL
KARYA_SHOPEE_PARTNER_ID           partner id, a number (required)
KARYA_SHOPEE_PARTNER_KEY          partner key, signs requests (required)
KARYA_SHOPEE_REDIRECT_URL         where Shopee sends the seller after authorising (carries code, shop_id)
KARYA_BLIBLI_API_URL              Blibli API base URL
KARYA_BLIBLI_API_CLIENT_ID        API client id, Basic auth user (required)
KARYA_BLIBLI_API_CLIENT_KEY       API client key, Basic auth password (required)
KARYA_BLIBLI_API_KEY              the seller's ``Api-Seller-Key`` (required)
KARYA_BLIBLI_API_SECRET           the seller's signature key, signs requests (required)
KARYA_BLIBLI_CHANNEL_ID           ``channelId`` in the query (default ``karya``)
KARYA_BLIBLI_USERNAME             Seller Center user for ``username`` (optional: sent when set)
KARYA_TOKEN_KEY                   32-byte key sealing shop tokens at rest (required; hex or Base64)
KARYA_TOKEN_REFRESH_INTERVAL_S    seconds between refresh rounds (default 60)
KARYA_TOKEN_REFRESH_MARGIN_S      refresh tokens expiring within this many seconds (default 1800)
KARYA_MARKETPLACE_API_TIMEOUT_S   timeout per request in seconds (default 10)
================================  ========================================================
"""

from __future__ import annotations

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["ClientSettings", "ClientSettingsError"]

_SIMULATOR = "http://127.0.0.1:8090"

#: Field → environment variable, for the credentials that must be set.
REQUIRED = {
    "tokopedia_api_token": "KARYA_TOKOPEDIA_API_TOKEN",
    "tiktok_app_key": "KARYA_TIKTOK_APP_KEY",
    "tiktok_app_secret": "KARYA_TIKTOK_APP_SECRET",
    "shopee_partner_id": "KARYA_SHOPEE_PARTNER_ID",
    "shopee_partner_key": "KARYA_SHOPEE_PARTNER_KEY",
    "blibli_api_client_id": "KARYA_BLIBLI_API_CLIENT_ID",
    "blibli_api_client_key": "KARYA_BLIBLI_API_CLIENT_KEY",
    "blibli_api_key": "KARYA_BLIBLI_API_KEY",
    "blibli_api_secret": "KARYA_BLIBLI_API_SECRET",
    "token_key": "KARYA_TOKEN_KEY",
}


class ClientSettingsError(ValueError):
    """The client settings are incomplete or invalid; the message names the variables to fix."""


class ClientSettings(BaseSettings):
    """Base URLs and credentials of the four marketplace APIs (environment variables ``KARYA_*``)."""

    model_config = SettingsConfigDict(env_prefix="KARYA_", extra="ignore")

    tokopedia_api_url: str = f"{_SIMULATOR}/tokopedia"
    tokopedia_api_token: SecretStr | None = None
    tokopedia_fs_id: int = Field(default=13004, ge=1)
    tiktok_api_url: str = f"{_SIMULATOR}/tiktok_shop"
    tiktok_app_key: str | None = None
    tiktok_app_secret: SecretStr | None = None
    tiktok_auth_url: str = f"{_SIMULATOR}/tiktok_auth"
    tiktok_authorize_url: str = f"{_SIMULATOR}/tiktok_services"
    tiktok_service_id: str = ""
    shopee_api_url: str = f"{_SIMULATOR}/shopee"
    shopee_partner_id: int | None = Field(default=None, ge=1)
    shopee_partner_key: SecretStr | None = None
    shopee_redirect_url: str = "http://127.0.0.1:8083/shops/authorised"
    blibli_api_url: str = f"{_SIMULATOR}/blibli"
    blibli_api_client_id: str | None = None
    blibli_api_client_key: SecretStr | None = None
    blibli_api_key: str | None = None
    blibli_api_secret: SecretStr | None = None
    blibli_channel_id: str = Field(default="karya", min_length=1)
    blibli_username: str | None = None
    token_key: SecretStr | None = None
    token_refresh_interval_s: float = Field(default=60.0, gt=0)
    token_refresh_margin_s: float = Field(default=1800.0, gt=0)
    marketplace_api_timeout_s: float = Field(default=10.0, gt=0)

    @model_validator(mode="after")
    def _credentials_present(self) -> ClientSettings:
        missing = [env for name, env in REQUIRED.items() if _blank(getattr(self, name))]
        if missing:
            raise ValueError(f"missing marketplace API credentials: set {', '.join(missing)}")
        return self

    @classmethod
    def from_env(cls) -> ClientSettings:
        """Read the environment; raise :class:`ClientSettingsError` naming each bad or missing variable."""
        try:
            return cls()
        except ValidationError as exc:
            problems = []
            for error in exc.errors():
                field = ".".join(str(p) for p in error["loc"])
                message = str(error["msg"]).removeprefix("Value error, ")
                problems.append(f"KARYA_{field.upper()}: {message}" if field else message)
            raise ClientSettingsError("; ".join(problems)) from None

    def secret(self, name: str) -> str:
        """The plain value of a required credential (validated present)."""
        value = getattr(self, name)
        if isinstance(value, SecretStr):
            return value.get_secret_value()
        if value is None:
            raise ClientSettingsError(f"{REQUIRED.get(name, name)} is not set")
        return str(value)


def _blank(value: object) -> bool:
    if value is None:
        return True
    if isinstance(value, SecretStr):
        return not value.get_secret_value()
    return isinstance(value, str) and not value
