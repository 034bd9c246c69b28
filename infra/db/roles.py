"""The four database roles and their privileges.

- ``karya_migrator`` owns the schemas and runs Alembic (the only role with DDL rights);
- ``karya_service`` is what orders and ledger connect as: INSERT/SELECT everywhere, UPDATE/DELETE only where a
  migration grants it (never on journal tables), no CREATE anywhere; in the gateway schema it only reads, and
  never the raw webhook bodies (buyer name, phone, address: migration ``gateway_0006``);
- ``karya_gateway`` is what the gateway connects as (``KARYA_GATEWAY_DATABASE_URL``): the gateway schema only,
  raw deliveries included;
- ``karya_auditor`` reads everything but personal data and writes nothing;
- ``karya_finance`` is what the finance workspace connects as (``KARYA_FINANCE_DATABASE_URL``): it reads the
  ledger under row-level security, one lapas per transaction (``SET LOCAL karya.lapas_scope``; migration
  ``finance_0002``), and raw deliveries only through a redacted, scoped view.

Advisory locks belong to the roles that run outbox relays: in the karya database EXECUTE on every advisory-lock
function is revoked from PUBLIC and granted to the service and gateway roles, so no other role (the auditor
included) can take a relay's lock and silence it. Nothing else in the project takes advisory locks (migrations
and Alembic do not). Passwords come from the environment (``KARYA_MIGRATOR_PASSWORD``, ``KARYA_SERVICE_PASSWORD``,
``KARYA_GATEWAY_PASSWORD``, ``KARYA_AUDITOR_PASSWORD``, ``KARYA_FINANCE_PASSWORD``); nothing here invents one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import asyncpg
from sqlalchemy.engine import make_url

MIGRATOR = "karya_migrator"
SERVICE = "karya_service"
AUDITOR = "karya_auditor"
GATEWAY = "karya_gateway"
FINANCE = "karya_finance"
ROLES = (MIGRATOR, SERVICE, AUDITOR, GATEWAY, FINANCE)
PASSWORD_ENV = {
    MIGRATOR: "KARYA_MIGRATOR_PASSWORD",
    SERVICE: "KARYA_SERVICE_PASSWORD",
    AUDITOR: "KARYA_AUDITOR_PASSWORD",
    GATEWAY: "KARYA_GATEWAY_PASSWORD",
    FINANCE: "KARYA_FINANCE_PASSWORD",
}
GATEWAY_URL_ENV = "KARYA_GATEWAY_DATABASE_URL"
"""The gateway process's database URL (the gateway role); orders and ledger use ``DATABASE_URL``."""
FINANCE_URL_ENV = "KARYA_FINANCE_DATABASE_URL"
"""The finance workspace's database URL (the finance role)."""
RELAY_ROLES = (SERVICE, GATEWAY)
"""The roles whose processes run an outbox relay, hence take advisory locks."""


@dataclass(frozen=True)
class RoleUrls:
    """Connection URLs of the roles on one database (its repr hides the passwords)."""

    migrator: str
    service: str
    auditor: str
    gateway: str
    finance: str

    def __repr__(self) -> str:
        masked = {k: make_url(v).render_as_string(hide_password=True) for k, v in self.__dict__.items()}
        return f"RoleUrls({', '.join(f'{k}={v!r}' for k, v in masked.items())})"


def passwords_from_env() -> dict[str, str]:
    """The role passwords from the environment; raises naming every missing variable."""
    missing = [env for env in PASSWORD_ENV.values() if not os.environ.get(env)]
    if missing:
        raise SystemExit(f"missing secrets in the environment: {', '.join(missing)}")
    return {role: os.environ[env] for role, env in PASSWORD_ENV.items()}


def role_urls(admin_url: str, passwords: dict[str, str], database: str | None = None) -> RoleUrls:
    """URLs for the roles on the admin URL's host (and ``database`` if given)."""
    base = make_url(admin_url).set(drivername="postgresql+asyncpg")
    if database:
        base = base.set(database=database)

    def for_role(role: str) -> str:
        return base.set(username=role, password=passwords[role]).render_as_string(hide_password=False)

    return RoleUrls(for_role(MIGRATOR), for_role(SERVICE), for_role(AUDITOR), for_role(GATEWAY), for_role(FINANCE))


def url_as(url: str, role: str, passwords: dict[str, str]) -> str:
    """``url`` (same host and database) with ``role`` and its password instead of its own user."""
    return make_url(url).set(username=role, password=passwords[role]).render_as_string(hide_password=False)


_ADVISORY_LOCK_NAMES = (
    "pg_advisory_lock",
    "pg_advisory_lock_shared",
    "pg_try_advisory_lock",
    "pg_try_advisory_lock_shared",
    "pg_advisory_unlock",
    "pg_advisory_unlock_shared",
    "pg_advisory_xact_lock",
    "pg_advisory_xact_lock_shared",
    "pg_try_advisory_xact_lock",
    "pg_try_advisory_xact_lock_shared",
)
ADVISORY_LOCK_FUNCTIONS = (
    *(f"pg_catalog.{name}({args})" for name in _ADVISORY_LOCK_NAMES for args in ("bigint", "integer, integer")),
    "pg_catalog.pg_advisory_unlock_all()",
)
"""Every advisory-lock function of PostgreSQL, by signature."""


def advisory_lock_grants() -> list[str]:
    """Statements (run as a superuser, in the database) that keep advisory locks to the relays' roles."""
    functions = ", ".join(ADVISORY_LOCK_FUNCTIONS)
    return [
        f"REVOKE EXECUTE ON FUNCTION {functions} FROM PUBLIC",
        f"GRANT EXECUTE ON FUNCTION {functions} TO {', '.join(RELAY_ROLES)}",
    ]


def _dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def bootstrap_database(admin_url: str, passwords: dict[str, str], database: str | None = None) -> None:
    """Create (or update) the roles and the database, idempotently, as a superuser."""
    admin = make_url(admin_url)
    dbname = database or admin.database or "karya"
    conn = await asyncpg.connect(_dsn(admin.set(database="postgres").render_as_string(hide_password=False)))
    try:
        for role in ROLES:
            exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role)
            verb = "ALTER" if exists else "CREATE"
            pw = passwords[role].replace("'", "''")
            await conn.execute(f"{verb} ROLE {role} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD '{pw}'")
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", dbname):
            await conn.execute(f'CREATE DATABASE "{dbname}" OWNER {MIGRATOR}')
    finally:
        await conn.close()
    conn = await asyncpg.connect(_dsn(admin.set(database=dbname).render_as_string(hide_password=False)))
    try:
        await conn.execute(f'ALTER DATABASE "{dbname}" OWNER TO {MIGRATOR}')
        await conn.execute(f'REVOKE ALL ON DATABASE "{dbname}" FROM PUBLIC')
        readers = f"{SERVICE}, {GATEWAY}, {AUDITOR}, {FINANCE}"
        await conn.execute(f'GRANT CONNECT, TEMPORARY ON DATABASE "{dbname}" TO {readers}')
        await conn.execute(f'GRANT CONNECT, CREATE ON DATABASE "{dbname}" TO {MIGRATOR}')
        await conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
        await conn.execute(f"ALTER SCHEMA public OWNER TO {MIGRATOR}")
        await conn.execute(f"GRANT USAGE ON SCHEMA public TO {SERVICE}, {AUDITOR}")
        await conn.execute(f"ALTER DEFAULT PRIVILEGES FOR ROLE {MIGRATOR} GRANT SELECT, INSERT ON TABLES TO {SERVICE}")
        await conn.execute(
            f"ALTER DEFAULT PRIVILEGES FOR ROLE {MIGRATOR} GRANT USAGE, SELECT ON SEQUENCES TO {SERVICE}"
        )
        await conn.execute(f"ALTER DEFAULT PRIVILEGES FOR ROLE {MIGRATOR} GRANT SELECT ON TABLES TO {AUDITOR}")
        await conn.execute(f"ALTER DEFAULT PRIVILEGES FOR ROLE {MIGRATOR} GRANT SELECT ON SEQUENCES TO {AUDITOR}")
        await conn.execute(
            f"ALTER DEFAULT PRIVILEGES FOR ROLE {MIGRATOR} GRANT EXECUTE ON FUNCTIONS TO {SERVICE}, {AUDITOR}"
        )
        for statement in advisory_lock_grants():
            await conn.execute(statement)
    finally:
        await conn.close()


async def drop_database(admin_url: str, database: str) -> None:
    """Drop ``database`` (connections forced off) as the admin role; nothing happens if it does not exist."""
    conn = await asyncpg.connect(
        _dsn(make_url(admin_url).set(database="postgres").render_as_string(hide_password=False))
    )
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    finally:
        await conn.close()


def schema_grants(schema: str) -> list[str]:
    """Statements a migration runs after creating ``schema``: usage for the service and the auditor."""
    return [f"GRANT USAGE ON SCHEMA {schema} TO {SERVICE}, {AUDITOR}"]


def mutable_table_grants(schema: str, table: str, *, delete: bool = False) -> list[str]:
    """Grant UPDATE (and DELETE if asked) on a table whose rows the service changes (never the journal)."""
    privileges = "UPDATE, DELETE" if delete else "UPDATE"
    return [f"GRANT {privileges} ON {schema}.{table} TO {SERVICE}"]
