"""Settings of the finance workspace process, read only from the environment (pydantic-settings).

The session-signing secret has no default: :func:`read_settings` refuses to start without it, naming the
variable (``KARYA_FINANCE_SECRET_KEY``, at least 32 characters; ``karya stack up`` or the deployment provides it).
"""

from __future__ import annotations

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

SECRET_ENV = "KARYA_FINANCE_SECRET_KEY"  # noqa: S105 - the variable's name, not a secret


class FinanceSettings(BaseSettings):
    """The workspace's secret and the rules of its sessions and logins."""

    model_config = SettingsConfigDict(env_prefix="KARYA_FINANCE_", extra="ignore")

    secret_key: SecretStr = Field(
        min_length=32,
        description="Secret the CSRF tokens are derived with (at least 32 characters; required).",
    )
    session_idle_minutes: int = Field(
        default=30, ge=1, le=24 * 60, description="A session unused for this long is over (idle expiry)."
    )
    login_max_failures: int = Field(
        default=5, ge=1, description="Failed logins of one user name from one address before logins are refused."
    )
    login_window_minutes: int = Field(
        default=15, ge=1, description="The window failed logins are counted in (the throttle lifts as they age)."
    )


def read_settings() -> FinanceSettings:
    """The workspace's settings from the environment; stops the process naming what is missing or invalid."""
    try:
        return FinanceSettings()  # secret_key comes from the environment
    except ValidationError as exc:
        names = ", ".join(f"KARYA_FINANCE_{str(e['loc'][0]).upper()}" for e in exc.errors() if e["loc"])
        raise SystemExit(f"the finance workspace cannot start: set {names} (see docs/settings.md)") from None
