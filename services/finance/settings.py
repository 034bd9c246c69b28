"""Settings of the finance workspace process, read only from the environment (pydantic-settings).

Its database URL (the ``karya_finance`` role's) and its secret have no default: :func:`read_settings` refuses to
start without them, naming the variables (``KARYA_FINANCE_DATABASE_URL``, ``KARYA_FINANCE_SECRET_KEY`` of at least
32 characters; the deployment provides them).
"""

from __future__ import annotations

from pydantic import AliasChoices, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from infra.db.roles import FINANCE_URL_ENV

SECRET_ENV = "KARYA_FINANCE_SECRET_KEY"  # noqa: S105 - the variable's name, not a secret


class FinanceSettings(BaseSettings):
    """The workspace's database, its secret and the rules of its sessions and logins."""

    model_config = SettingsConfigDict(env_prefix="KARYA_FINANCE_", extra="ignore", populate_by_name=True)

    database_url: SecretStr = Field(
        validation_alias=AliasChoices(FINANCE_URL_ENV),
        description="The finance role's database URL (`karya_finance`: row-level-secured reads of the ledger, the "
        "workspace's own tables; required). `karya stack up` writes the local value to .local/stack.env.",
    )
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
        names = ", ".join(_variable(str(e["loc"][0])) for e in exc.errors() if e["loc"])
        raise SystemExit(f"the finance workspace cannot start: set {names} (see docs/settings.md)") from None


def _variable(field: str) -> str:
    return field if field.isupper() else f"KARYA_FINANCE_{field.upper()}"
