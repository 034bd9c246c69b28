"""Process settings, read only from the environment (pydantic-settings).

Secrets (database passwords, webhook secrets) are never defaulted: a process that needs one and does not find it
refuses to start with a message naming the variable.
"""

from __future__ import annotations

import os

from pydantic import AliasChoices, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from infra.db.roles import GATEWAY, GATEWAY_URL_ENV


class KafkaSettings(BaseSettings):
    """Where the broker is and how this process talks to it."""

    model_config = SettingsConfigDict(env_prefix="KARYA_KAFKA_", extra="ignore", populate_by_name=True)

    bootstrap_servers: str = Field(
        default="127.0.0.1:19092",
        validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS", "KARYA_KAFKA_BOOTSTRAP_SERVERS"),
    )
    topic_prefix: str = Field(
        default="",
        validation_alias=AliasChoices("KARYA_TOPIC_PREFIX", "topic_prefix"),
        description="Prefix of every topic and consumer group of this deployment (isolates deployments and test "
        "runs sharing a cluster).",
    )
    partitions: int = Field(default=6, ge=1, description="Partitions for topics this project creates.")
    batch_max_records: int = Field(
        default=5000,
        ge=1,
        description="Records per consumed batch (one transaction); 5,000 was ~9% faster than 2,000 in `make bench`.",
    )
    batch_timeout_ms: int = Field(default=50, ge=1)
    batch_top_up_ms: int = Field(
        default=5,
        ge=0,
        description="How long a batch waits for records that arrived after it was fetched (0: never).",
    )
    max_attempts: int = Field(default=3, ge=1, description="Tries per event before it is dead-lettered.")
    retry_backoff_ms: int = Field(default=100, ge=0)
    retry_backoff_max_ms: int = Field(default=5000, ge=0)
    completeness_audit_interval_s: float = Field(
        default=300.0,
        ge=0,
        description="How often a service audits its consumer groups for records neither applied nor dead-lettered "
        "(karya_completeness_gaps); 0: never.",
    )


class DatabaseSettings(BaseSettings):
    """The PostgreSQL connection of a service process (the service role: DML only, no DDL)."""

    model_config = SettingsConfigDict(env_prefix="KARYA_DB_", extra="ignore", populate_by_name=True)

    url: str = Field(validation_alias=AliasChoices("DATABASE_URL", "KARYA_DB_URL"))


class HttpSettings(BaseSettings):
    """The HTTP port of each service process (``/healthz``, ``/readyz``, ``/metrics``; the gateway's webhooks too);
    ``karya serve NAME --port N`` overrides it for that process."""

    model_config = SettingsConfigDict(env_prefix="KARYA_", extra="ignore")

    orders_port: int = Field(default=8081, ge=1, le=65535, description="HTTP port of `karya serve orders`.")
    ledger_port: int = Field(default=8082, ge=1, le=65535, description="HTTP port of `karya serve ledger`.")
    gateway_port: int = Field(default=8083, ge=1, le=65535, description="HTTP port of `karya serve gateway`.")
    finance_port: int = Field(
        default=8084, ge=1, le=65535, description="HTTP port of `karya serve finance` (the finance workspace)."
    )

    def port(self, service: str) -> int:
        """The port of ``service`` (orders, ledger, gateway or finance)."""
        return int(getattr(self, f"{service}_port"))


def http_port(service: str) -> int:
    """``KARYA_<SERVICE>_PORT`` or the service's default; a bad value stops the process naming the variable."""
    try:
        return HttpSettings().port(service)
    except ValidationError as exc:
        names = ", ".join(f"KARYA_{str(e['loc'][0]).upper()}" for e in exc.errors() if e["loc"])
        raise SystemExit(f"invalid port in {names}: a number from 1 to 65535") from None


def kafka_settings() -> KafkaSettings:
    """The Kafka settings in the environment, read now (a process's composition root reads them once and passes
    them down; nothing keeps them in a global)."""
    return KafkaSettings()


def database_settings() -> DatabaseSettings:
    """The process-wide database settings; raises a clear error when DATABASE_URL is missing."""
    try:
        return DatabaseSettings()
    except Exception as exc:  # pydantic's ValidationError names the field; make the fix obvious too
        raise SystemExit(
            "DATABASE_URL is not set: export it (see `karya stack up`, which prints the local value)"
        ) from exc


def gateway_database_url() -> str:
    """The gateway's database URL (``KARYA_GATEWAY_DATABASE_URL``, the gateway role, the only one that reads raw
    webhook bodies); refuses to go on without it, never falling back to ``DATABASE_URL`` (the service role)."""
    url = os.environ.get(GATEWAY_URL_ENV, "").strip()
    if not url:
        raise SystemExit(
            f"{GATEWAY_URL_ENV} is not set: the gateway connects as its own role, {GATEWAY} "
            "(see `karya stack up`, which writes the local value to .local/stack.env)"
        )
    return url
