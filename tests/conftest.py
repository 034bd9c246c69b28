"""Session fixtures: the real Kafka broker and PostgreSQL server.

Resolution order: environment variables (``KAFKA_BOOTSTRAP_SERVERS``; ``KARYA_DB_ADMIN_URL`` for a role that may
create roles and databases) → testcontainers when a Docker engine answers → the project's local stack, started
once per session. Integration tests never skip silently: if no broker or database can be had, they fail.
Each session migrates a fresh database of its own, so runs never see each other's rows, and deletes the topics
it made on the broker when it ends (their names carry its own prefix: ``tests/naming.py``).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from infra.db.engine import make_engine
from infra.db.migrate import upgrade_to_head
from infra.db.roles import RoleUrls, bootstrap_database, drop_database, role_urls
from infra.environment import local_passwords


@dataclass(frozen=True)
class Services:
    """Where the test session's broker and database are."""

    kafka_bootstrap: str
    kafka_version: str
    admin_url: str
    postgres_version: str
    how: str


_SERVICES: Services | None = None
_TOPIC_CLEANUP = pytest.StashKey[str]()
_CONTAINERS: list[Any] = []


def _docker_answers() -> bool:
    if not shutil.which("docker"):
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _resolve_services() -> Services:
    global _SERVICES
    if _SERVICES is not None:
        return _SERVICES
    from infra.localstack import kafka_server_version, postgres_server_version

    kafka = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    admin = os.environ.get("KARYA_DB_ADMIN_URL")
    how = "environment"
    if not (kafka and admin) and _docker_answers():
        from testcontainers.kafka import KafkaContainer
        from testcontainers.postgres import PostgresContainer

        how = "testcontainers"
        if not kafka:
            kc = KafkaContainer("apache/kafka:4.1.1").with_kraft()
            kc.start()
            _CONTAINERS.append(kc)
            kafka = kc.get_bootstrap_server()
        if not admin:
            pc = PostgresContainer("postgres:18", driver="asyncpg")
            pc.start()
            _CONTAINERS.append(pc)
            admin = pc.get_connection_url()
    if not kafka or not admin:
        from infra.localstack import ensure_kafka, ensure_postgres

        how = "local stack"
        kafka = kafka or ensure_kafka().bootstrap
        admin = admin or ensure_postgres().superuser_url
    _SERVICES = Services(kafka, kafka_server_version(kafka), admin, postgres_server_version(admin), how)
    return _SERVICES


def _needs_services(config: pytest.Config) -> bool:
    args = " ".join(str(a) for a in config.args)
    return not (args and all(str(a).startswith("tests/unit") for a in config.args))


def pytest_report_header(config: pytest.Config) -> list[str]:
    """Print the versions the servers report themselves."""
    if not _needs_services(config):
        return ["services: not needed (unit tests only)"]
    s = _resolve_services()
    return [
        f"kafka: {s.kafka_version} at {s.kafka_bootstrap} ({s.how})",
        f"postgres: {s.postgres_version} at {_host_of(s.admin_url)} ({s.how})",
    ]


def _host_of(url: str) -> str:
    from sqlalchemy.engine import make_url

    u = make_url(url)
    return f"{u.host}:{u.port}"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Delete the topics this session made on the broker (see ``tests/naming.py``) — only if it used one."""
    if _SERVICES is not None:
        _delete_session_topics(session.config, _SERVICES.kafka_bootstrap)


def _delete_session_topics(config: pytest.Config, bootstrap: str, timeout_s: float = 60.0) -> None:
    """Delete the topics named with this session's prefix; a broker already gone (or slow) only earns a line."""
    from infra.messaging.admin import delete_topics_with_prefix
    from tests.naming import SESSION_PREFIX, SESSION_PREFIX_SHAPE

    if not SESSION_PREFIX_SHAPE.fullmatch(SESSION_PREFIX):  # never a prefix that could name other topics
        raise RuntimeError(f"unexpected session topic prefix {SESSION_PREFIX!r}")
    try:
        deleted = asyncio.run(asyncio.wait_for(delete_topics_with_prefix(bootstrap, SESSION_PREFIX), timeout_s))
        line = f"kafka: deleted the {deleted} topics of this session ({SESSION_PREFIX}*)"
    except Exception as exc:  # the session's outcome stands whatever the broker does now
        why = str(exc) or f"no answer in {timeout_s:.0f} s"
        line = f"kafka: could not delete this session's topics ({SESSION_PREFIX}*): {type(exc).__name__}: {why}"
    if config.pluginmanager.get_plugin("terminalreporter") is not None:
        config.stash[_TOPIC_CLEANUP] = line  # printed with the summary (see below)
    else:
        print(line, file=sys.stderr)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say what became of this session's topics."""
    line = terminalreporter.config.stash.get(_TOPIC_CLEANUP, None)
    if line is not None:
        terminalreporter.write_line(line)


def pytest_unconfigure(config: pytest.Config) -> None:
    for container in _CONTAINERS:
        container.stop()


@pytest.fixture(scope="session")
def services() -> Services:
    """The broker and server of this session (started when needed)."""
    return _resolve_services()


@pytest.fixture(scope="session")
def kafka_bootstrap(services: Services) -> str:
    """Bootstrap servers of the real broker."""
    return services.kafka_bootstrap


@pytest.fixture(scope="session")
def database(services: Services) -> Iterator[RoleUrls]:
    """A fresh database of this session, migrated to head; yields the URLs of the three roles."""
    name = f"karya_test_{uuid.uuid4().hex[:10]}"
    passwords = local_passwords()
    asyncio.run(bootstrap_database(services.admin_url, passwords, name))
    urls = role_urls(services.admin_url, passwords, name)
    upgrade_to_head(urls.migrator)
    yield urls
    asyncio.run(drop_database(services.admin_url, name))


@pytest.fixture(scope="session")
def admin_db_url(services: Services, database: RoleUrls) -> str:
    """The superuser URL on this session's database (for tests that play the attacker)."""
    from sqlalchemy.engine import make_url

    name = make_url(database.service).database
    return make_url(services.admin_url).set(database=name).render_as_string(hide_password=False)


@pytest.fixture
async def service_engine(database: RoleUrls) -> AsyncIterator[AsyncEngine]:
    """An engine connected as the service role."""
    engine = make_engine(database.service, pool_size=5)
    yield engine
    await engine.dispose()
