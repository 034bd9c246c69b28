"""Resolve where Kafka and PostgreSQL are: from the environment, else the local stack this project runs.

``KAFKA_BOOTSTRAP_SERVERS`` points everything at an existing cluster. ``KARYA_DB_ADMIN_URL`` (a role allowed to
create roles and databases) points at an existing PostgreSQL; without it the local server is started. The role
passwords are read from the environment; for the local stack they are generated once and kept in
``.local/secrets.json`` (mode 0600), never in the repository. A role added later gets its password generated
next to the stored ones, which stay as they are (roles are shared by every database of the server).
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from infra.db.roles import FINANCE_URL_ENV, GATEWAY_URL_ENV, PASSWORD_ENV, ROLES, RoleUrls, role_urls

ROOT = Path(__file__).resolve().parents[1]


def state_dir() -> Path:
    """Where local data, pids and generated secrets live (ignored by git)."""
    return Path(os.environ.get("KARYA_STATE_DIR", ROOT / ".local"))


@dataclass(frozen=True)
class StackEnvironment:
    """Everything a process needs to reach the broker and the database."""

    kafka_bootstrap: str
    admin_url: str
    roles: RoleUrls
    passwords: dict[str, str]

    def as_env(self) -> dict[str, str]:
        """Shell variables for services and tools (DATABASE_URL is the service role, the gateway has its own)."""
        env = {
            "KAFKA_BOOTSTRAP_SERVERS": self.kafka_bootstrap,
            "DATABASE_URL": self.roles.service,
            GATEWAY_URL_ENV: self.roles.gateway,
            FINANCE_URL_ENV: self.roles.finance,
            "KARYA_MIGRATOR_URL": self.roles.migrator,
            "KARYA_AUDITOR_URL": self.roles.auditor,
            "KARYA_DB_ADMIN_URL": self.admin_url,
        }
        env.update({PASSWORD_ENV[r]: self.passwords[r] for r in ROLES})
        return env


def local_passwords() -> dict[str, str]:
    """Role passwords: each from the environment when set, else the local stack's stored one, else generated once
    and stored (under a lock, so sessions starting together agree; stored passwords are never replaced)."""
    if all(os.environ.get(PASSWORD_ENV[r]) for r in ROLES):
        return {r: os.environ[PASSWORD_ENV[r]] for r in ROLES}
    path = state_dir() / "secrets.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    lock_fd = os.open(path.with_name("secrets.lock"), os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
        stored: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
        missing = [r for r in ROLES if r not in stored]
        if missing:
            stored |= {r: secrets.token_urlsafe(24) for r in missing}
            fresh = path.with_name(f"secrets.json.{os.getpid()}")
            fd = os.open(fresh, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                json.dump(stored, fh)
            os.replace(fresh, path)  # readers see the old file or the new one, never half of one
    finally:
        os.close(lock_fd)  # releases the lock
    return {r: os.environ.get(PASSWORD_ENV[r]) or stored[r] for r in ROLES}


def resolve_kafka() -> str:
    """The bootstrap servers: the environment's, else the local broker (started if needed)."""
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        return os.environ["KAFKA_BOOTSTRAP_SERVERS"]
    from infra.localstack import ensure_kafka

    return ensure_kafka().bootstrap


def resolve_admin_url() -> str:
    """A superuser URL: the environment's, else the local server's (started if needed)."""
    if os.environ.get("KARYA_DB_ADMIN_URL"):
        return os.environ["KARYA_DB_ADMIN_URL"]
    from infra.localstack import ensure_postgres

    return ensure_postgres().superuser_url


def resolve_environment(database: str = "karya") -> StackEnvironment:
    """Start what is missing and return the connection settings (roles not yet bootstrapped)."""
    kafka = resolve_kafka()
    admin = resolve_admin_url()
    passwords = local_passwords()
    return StackEnvironment(kafka, admin, role_urls(admin, passwords, database), passwords)


def write_env_file(env: StackEnvironment) -> Path:
    """Write ``.local/stack.env`` (mode 0600) so make targets and shells can source it."""
    path = state_dir() / "stack.env"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        for key, value in env.as_env().items():
            fh.write(f"export {key}='{value}'\n")
    return path
