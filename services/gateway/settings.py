"""Gateway settings, read only from the environment (``KARYA_*``).

Secrets are never defaulted. :func:`load_settings` refuses with one message naming every missing variable,
the webhook secrets here (``KARYA_TOKOPEDIA_WEBHOOK_SECRET``, ``KARYA_TIKTOK_APP_KEY``, ``KARYA_TIKTOK_APP_SECRET``,
``KARYA_SHOPEE_PARTNER_ID``, ``KARYA_SHOPEE_PARTNER_KEY``, ``KARYA_BLIBLI_API_KEY``, ``KARYA_BLIBLI_API_SECRET``)
and the API clients' credentials with them (``KARYA_TOKOPEDIA_API_TOKEN``, ``KARYA_BLIBLI_API_CLIENT_ID``,
``KARYA_BLIBLI_API_CLIENT_KEY``, ``KARYA_TOKEN_KEY``: :data:`services.gateway.clients.settings.REQUIRED`), so
one start names all of them. ``KARYA_GATEWAY_PUBLIC_URL`` has a local default but must be the URL Shopee calls in
production: Shopee signs that URL with the body, so a wrong value refuses every Shopee push with 401.
The ``*_PREVIOUS`` secrets are optional: set them during a rotation so deliveries signed with the old secret
are still accepted (an empty value means "not set"). Every secret that is set — the signing secrets, their
``*_PREVIOUS`` values and ``KARYA_TOKOPEDIA_API_TOKEN`` — must be at least :data:`MIN_SECRET_LENGTH` characters
and not all whitespace; identifiers (app key, partner id, Blibli API key) must not be blank. The refusal names
the variables, never their values. The marketplace API clients read their own settings (base URLs, tokens:
:mod:`services.gateway.clients.settings`).

:class:`EdgeSettings` holds the HTTP edge limits (``KARYA_GATEWAY_*``, no secrets) that ``karya serve gateway``
passes to uvicorn; see :mod:`services.gateway.edge` and docs/gateway.md.
"""

from __future__ import annotations

import os

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "KARYA_"
REQUIRED_SECRETS = (
    "tokopedia_webhook_secret",
    "tiktok_app_key",
    "tiktok_app_secret",
    "shopee_partner_id",
    "shopee_partner_key",
    "blibli_api_key",
    "blibli_api_secret",
)
MIN_SECRET_LENGTH = 16
"""Shortest accepted secret: 16 characters. Real marketplace secrets are 32–64; this refuses typos and fillers."""
SIGNING_SECRETS = (
    "tokopedia_webhook_secret",
    "tokopedia_webhook_secret_previous",
    "tiktok_app_secret",
    "tiktok_app_secret_previous",
    "shopee_partner_key",
    "shopee_partner_key_previous",
    "blibli_api_secret",
    "tokopedia_api_token",
)
IDENTIFIERS = ("tiktok_app_key", "shopee_partner_id", "blibli_api_key")


class GatewayConfigError(RuntimeError):
    """The gateway cannot run with this environment (the message names what to set)."""


class GatewaySettings(BaseSettings):
    """Webhook secrets, marketplace API endpoints and credentials, poller intervals."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    # Webhook verification (the gateway refuses to start without these).
    tokopedia_webhook_secret: SecretStr = Field(min_length=1)
    tokopedia_webhook_secret_previous: SecretStr | None = None
    tiktok_app_key: str = Field(min_length=1)
    tiktok_app_secret: SecretStr = Field(min_length=1)
    tiktok_app_secret_previous: SecretStr | None = None
    shopee_partner_id: str = Field(min_length=1)
    shopee_partner_key: SecretStr = Field(min_length=1)
    shopee_partner_key_previous: SecretStr | None = None
    blibli_api_key: SecretStr = Field(min_length=1)
    blibli_api_secret: SecretStr = Field(min_length=1)
    # Read by the API clients (services.gateway.clients.settings); checked here too so a weak one stops the start.
    tokopedia_api_token: SecretStr | None = None

    gateway_public_url: str = Field(
        default="http://127.0.0.1:8083",
        description="The gateway's URL as the marketplaces call it (the one registered with Shopee): Shopee signs "
        "callback URL + '|' + body, so any other value refuses every Shopee push with 401.",
    )
    webhook_max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    gateway_body_timeout_s: float = Field(
        default=10.0, gt=0, description="A webhook body must arrive whole within this many seconds, else 408."
    )
    webhook_replay_window_s: float = Field(
        default=86_400.0,
        ge=60,
        description="A push whose own time (TikTok Shop, Shopee) is older than this is refused as a replay; "
        "longer than the channels' retry schedules, which resend the original time.",
    )
    webhook_clock_skew_s: float = Field(default=300.0, ge=0, description="How far in the future a push may be.")

    # Normaliser.
    api_concurrency: int = Field(default=8, ge=1, description="Marketplace API calls in flight per batch.")
    # While a channel's API is unreachable its deliveries are parked (gateway.parked_deliveries) and retried with
    # backoff up to api_retry_max_s apart; past the channel's window they are still retried, and reported overdue.
    tokopedia_api_retry_window_s: float = Field(default=86_400.0, gt=0, description="Tokopedia: no published policy.")
    tiktok_shop_api_retry_window_s: float = Field(default=57_600.0, gt=0, description="TikTok Shop retries ~15.5 h.")
    shopee_api_retry_window_s: float = Field(default=86_400.0, gt=0, description="Shopee: retry policy uncertain.")
    blibli_api_retry_window_s: float = Field(default=86_400.0, gt=0, description="Blibli (polled).")
    api_retry_base_s: float = Field(default=1.0, gt=0, description="First wait before a parked delivery's retry.")
    api_retry_max_s: float = Field(default=60.0, gt=0, description="Longest wait between a parked delivery's retries.")

    # Blibli poller (blibli.com has no webhooks).
    blibli_store_codes: str = Field(default="", description="Comma-separated Blibli store codes to poll.")
    blibli_poll_interval_s: float = Field(default=60.0, gt=0)
    blibli_poll_overlap_s: float = Field(default=300.0, ge=0, description="Each window re-reads this much.")
    blibli_poll_window_max_s: float = Field(default=86_400.0, gt=0)
    blibli_initial_lookback_s: float = Field(default=3 * 86_400.0, gt=0, description="First poll of a store.")

    # Backstop poller (webhooks get lost).
    backstop_interval_s: float = Field(default=300.0, gt=0)
    backstop_min_age_s: float = Field(default=1_800.0, ge=0, description="Re-check orders quiet this long.")
    backstop_max_age_s: float = Field(default=7 * 86_400.0, gt=0, description="Give up on older orders.")
    backstop_batch: int = Field(default=200, ge=1)

    # TikTok Shop statement poller (no webhook announces a statement).
    tiktok_statement_poll_interval_s: float = Field(default=900.0, gt=0, description="Between statement polls.")
    tiktok_statement_overlap_s: float = Field(default=86_400.0, ge=0, description="Each window re-reads this much.")
    tiktok_statement_lookback_s: float = Field(default=7 * 86_400.0, gt=0, description="First poll of a shop.")

    # Retention of raw deliveries (UU PDP): bodies are redacted in place this long after they arrived.
    gateway_raw_retention_days: int = Field(default=30, ge=1, description="Days a raw body is kept as received.")
    gateway_raw_retention_interval_s: float = Field(default=3_600.0, gt=0, description="Between retention rounds.")
    gateway_raw_retention_batch: int = Field(default=500, ge=1, description="Rows redacted per transaction.")

    pollers_enabled: bool = True

    @field_validator(*SIGNING_SECRETS, mode="before")
    @classmethod
    def _empty_optional_is_unset(cls, value: object, info: ValidationInfo) -> object:
        if value == "" and (info.field_name or "").endswith(("_previous", "_api_token")):
            return None
        return value

    @field_validator(*SIGNING_SECRETS)
    @classmethod
    def _strong_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        text = value.get_secret_value()
        if not text.strip():
            raise ValueError("is all whitespace")
        if len(text) < MIN_SECRET_LENGTH:
            raise ValueError(f"is shorter than {MIN_SECRET_LENGTH} characters")
        return value

    @field_validator(*IDENTIFIERS)
    @classmethod
    def _not_blank(cls, value: str | SecretStr) -> str | SecretStr:
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        if not text.strip():
            raise ValueError("is all whitespace")
        return value

    def api_retry_window_s(self, channel: str) -> float:
        """How long ``channel``'s deliveries are retried on schedule while its API is unreachable."""
        window = getattr(self, f"{channel}_api_retry_window_s", None)
        return float(window) if isinstance(window, int | float) else 86_400.0

    @property
    def blibli_stores(self) -> tuple[str, ...]:
        """The Blibli store codes to poll."""
        return tuple(code.strip() for code in self.blibli_store_codes.split(",") if code.strip())


class EdgeSettings(BaseSettings):
    """Limits on the gateway's HTTP listener (``KARYA_GATEWAY_*``); what each one covers is in docs/gateway.md."""

    model_config = SettingsConfigDict(env_prefix="KARYA_GATEWAY_", extra="ignore", frozen=True)

    max_concurrency: int = Field(
        default=256, ge=1, description="Open connections (idle, slow or busy) above which a new request gets 503."
    )
    header_timeout_s: float = Field(
        default=10.0, gt=0, description="A request's line and headers must arrive within this, else 408 and close."
    )
    keep_alive_timeout_s: int = Field(default=5, ge=1, description="An idle keep-alive connection is closed after.")
    max_header_bytes: int = Field(
        default=16 * 1024, ge=1024, description="Request line plus headers above this size get 400 and close."
    )
    graceful_shutdown_s: int = Field(
        default=15, ge=1, description="On shutdown, connections still busy after this are closed."
    )


_ABSENT = {"missing", "string_too_short", "too_short"}


def _reason(message: str) -> str:
    return message.removeprefix("Value error, ")


def env_name(field: str) -> str:
    """The environment variable of a settings field."""
    return f"{ENV_PREFIX}{field.upper()}"


def _missing_client_env() -> set[str]:
    """The API clients' required variables that are unset or empty (they refuse the start too, a step later)."""
    from services.gateway.clients.settings import REQUIRED

    return {name for name in REQUIRED.values() if not os.environ.get(name)}


def load_settings() -> GatewaySettings:
    """Settings from the environment.

    Raises:
        GatewayConfigError: naming every missing or invalid variable.
    """
    try:
        return GatewaySettings()
    except ValidationError as exc:
        errors = [e for e in exc.errors() if e["loc"]]
        missing = sorted({env_name(str(e["loc"][0])) for e in errors if e["type"] in _ABSENT})
        invalid = sorted(
            {f"{env_name(str(e['loc'][0]))} ({_reason(e['msg'])})" for e in errors if e["type"] not in _ABSENT}
        )
        parts = []
        if missing:
            parts.append(f"missing or empty environment variables: {', '.join(missing)}")
        if invalid:
            parts.append(f"invalid environment variables: {', '.join(invalid)}")
        if clients := sorted(_missing_client_env()):
            parts.append(f"missing or empty API client credentials: {', '.join(clients)}")
        raise GatewayConfigError("the gateway refuses to start: " + "; ".join(parts)) from None
