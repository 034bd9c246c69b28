"""The composition root of a service process: the services that exist, and how one process is built from settings.

Every process that runs or describes a service builds it here, in four steps:

1. settings: :func:`process_settings` reads the environment once — the database URL the service connects with
   (:func:`database_url`: the gateway role for the gateway, the service role for orders and ledger), the
   :class:`KafkaSettings`, whose ``topic_prefix`` names this deployment, and the service's own settings with the
   ``read_settings()`` its app module exposes (:func:`service_settings`: the ledger's chain-verification interval,
   the gateway's secrets and API clients; orders has none);
2. engine: :func:`service_engine` creates the process's one engine for that URL; the root disposes it when the
   process stops (:func:`build_http_app` hands ``engine.dispose`` to the app's lifespan);
3. topics: :func:`service_topics` puts the service's topics dataclass (``GatewayTopics``, ``OrdersTopics``,
   ``LedgerTopics``) under that prefix — no module reads a prefixed topic name from a global;
4. wiring: the service's ``build_runtime(engine, kafka, topics=…, settings=…)`` (``services/<svc>/app.py``)
   names its schema, builds its use cases and handlers and registers them on an
   :class:`infra.runtime.ServiceRuntime`, the generic runtime that owns the broker, supervisor and outbox relay.

``karya serve`` builds the HTTP app with :func:`build_http_app`; tests call :func:`build_service` with an engine and
settings of their own; ``karya schemas gen``, ``karya audit completeness`` and tests that only read the wiring use
:func:`wiring_of` and :func:`wired_consumers` (the engine connects lazily and is never used, so nothing connects;
no service settings are read, so no secret is needed: ``build_runtime`` gets ``settings=None``, which a service
serves with its defaults — the ledger — or refuses to serve — the gateway).

:data:`SERVICES` is also the topology: where each service keeps its data (:attr:`Service.schema`, as its
``build_runtime`` names it, and :attr:`Service.role`). The CLI's root, :class:`infra.cli_root.CliRoot`, is handed
it by :func:`cli_root`, so a command that reads another service's tables asks the root for its schema.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from typing import Any, Protocol

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from infra.cli_root import CliRoot, Role
from infra.db.engine import make_engine
from infra.messaging.completeness_audit import AuditedConsumer
from infra.runtime import ServiceRuntime
from infra.settings import KafkaSettings, database_settings, gateway_database_url, kafka_settings


@dataclass(frozen=True)
class Service:
    """Where a service's wiring lives: its app module (``build_runtime``, ``SCHEMA`` and, if the service has
    settings of its own, ``read_settings()``), its topics class (``module:Class``, with a ``with_prefix(prefix)``
    constructor) and the database role it connects as; its HTTP port is ``infra.settings.http_port``. Imported
    only when used, so ``karya --help`` does not load every service."""

    app: str
    topics: str
    role: Role

    @property
    def schema(self) -> str:
        """The service's PostgreSQL schema, as its app module names it once."""
        return str(importlib.import_module(self.app).SCHEMA)


SERVICES: dict[str, Service] = {
    "orders": Service("services.orders.app", "services.orders.outbound:OrdersTopics", "service"),
    "ledger": Service("services.ledger.app", "services.ledger.outbound:LedgerTopics", "service"),
    "gateway": Service("services.gateway.app", "services.gateway.emit:GatewayTopics", "gateway"),
}


class RuntimeBuilder(Protocol):
    """A service's ``build_runtime``: wires the service onto a runtime for this engine, these settings and topics."""

    def __call__(self, engine: AsyncEngine, kafka: KafkaSettings, *, topics: Any, settings: Any) -> ServiceRuntime:
        """The service's runtime, not started (``settings``: its own, from ``read_settings()``; None: not served)."""
        ...


@dataclass(frozen=True)
class ProcessSettings:
    """What one service process is configured with, read from the environment once."""

    database_url: str
    kafka: KafkaSettings


def _known(service: str) -> Service:
    if service not in SERVICES:
        raise SystemExit(f"unknown service {service!r}; choose one of {', '.join(SERVICES)}")
    return SERVICES[service]


def database_url(service: str) -> str:
    """The database URL a service process connects with: its role's — the gateway role
    (``KARYA_GATEWAY_DATABASE_URL``) for the gateway, the service role (``DATABASE_URL``) for orders and ledger."""
    if _known(service).role == "gateway":
        return gateway_database_url()
    return database_settings().url


def service_settings(service: str) -> Any:
    """``service``'s own settings, read from the environment by its app module's ``read_settings()`` (None for a
    service without any); a service refuses here, naming what is missing, when it cannot serve."""
    read = getattr(importlib.import_module(_known(service).app), "read_settings", None)
    return None if read is None else read()


def process_settings(service: str) -> ProcessSettings:
    """The settings of a process serving ``service``, from the environment (refuses to go on without its URL)."""
    return ProcessSettings(database_url(service), kafka_settings())


def service_topics(service: str, prefix: str) -> Any:
    """The topics ``service`` reads and writes, under ``prefix``."""
    module, _, name = _known(service).topics.partition(":")
    return getattr(importlib.import_module(module), name).with_prefix(prefix)


def service_engine(service: str, url: str, *, pool_size: int = 10) -> AsyncEngine:
    """The engine of a process serving ``service`` (named ``karya-<service>`` in ``pg_stat_activity``); whoever
    creates it disposes it."""
    return make_engine(url, pool_size=pool_size, application_name=f"karya-{service}")


def build_service(service: str, engine: AsyncEngine, kafka: KafkaSettings, settings: Any = None) -> ServiceRuntime:
    """The runtime of ``service`` (not started) on ``engine`` (the caller's, disposed by it): its topics under
    ``kafka.topic_prefix``, handed to its ``build_runtime`` with the settings (``settings``: the service's own,
    from :func:`service_settings`; None builds it to be described, not served)."""
    builder: RuntimeBuilder = importlib.import_module(_known(service).app).build_runtime
    return builder(engine, kafka, topics=service_topics(service, kafka.topic_prefix), settings=settings)


_NEVER_CONNECTED = "postgresql+asyncpg://wiring@127.0.0.1:1/wiring"


def wiring_of(service: str, kafka: KafkaSettings) -> ServiceRuntime:
    """``service`` as :func:`build_service` wires it, on an engine that is never used (it connects lazily, so
    nothing connects and there is nothing to dispose): for documents and checks of the wiring."""
    return build_service(service, make_engine(_NEVER_CONNECTED, pool_size=1), kafka)


def wired_consumers(prefix: str) -> list[AuditedConsumer]:
    """Every consumer of every service under ``prefix`` (group, inbox schema, topics), as :func:`build_service`
    wires it; nothing connects."""
    kafka = KafkaSettings(bootstrap_servers="127.0.0.1:1", topic_prefix=prefix, completeness_audit_interval_s=0)
    return [c for service in SERVICES for c in wiring_of(service, kafka).audited]


FINANCE = "finance"
"""The finance workspace (``services/finance``): a web app without consumers, so not one of :data:`SERVICES`."""
WORKSPACES: dict[str, str] = {FINANCE: "services.finance.app"}
"""The rest of the topology: web apps outside :data:`SERVICES` (no consumers, no runtime), name → app module, whose
``SCHEMA`` names where the app keeps its own data (the schema-naming check holds them to it like a service)."""


def build_finance_app() -> FastAPI:
    """The finance workspace's app, configured from the environment: its settings first (it refuses to start
    without its database URL and secret), then one engine as the finance role, disposed when the app stops; the
    app is handed the schema of every service (``app.state.schemas``) so that no module of the workspace names
    one."""
    from services.finance.app import create_app
    from services.finance.settings import read_settings
    from services.finance.web.queues import install_ledger_writer
    from services.ledger.outbound import LedgerTopics

    own = read_settings()
    engine = service_engine(FINANCE, own.database_url.get_secret_value())
    schemas = {name: service.schema for name, service in SERVICES.items()}
    # The work queues' actions write the ledger as the service role (DATABASE_URL); without it they answer 503.
    writer = service_engine(FINANCE, database_settings().url, pool_size=2) if os.environ.get("DATABASE_URL") else None

    async def stop() -> None:
        await engine.dispose()
        if writer is not None:
            await writer.dispose()

    app = create_app(engine, own, schemas=schemas, after_stop=stop)
    if writer is not None:
        install_ledger_writer(app, writer, LedgerTopics.with_prefix(kafka_settings().topic_prefix), schemas)
    return app


def build_http_app(service: str) -> FastAPI:
    """The FastAPI app of one service process, configured from the environment; its lifespan starts the runtime
    and, after stopping it, disposes the engine this root created (``finance``: :func:`build_finance_app`)."""
    if service == FINANCE:
        return build_finance_app()
    settings = process_settings(service)
    own = service_settings(service)  # before the engine: a service that cannot serve stops here, naming why
    engine = service_engine(service, settings.database_url)
    return build_service(service, engine, settings.kafka, own).http_app(after_stop=engine.dispose)


def cli_root() -> CliRoot:
    """The root of one ``karya`` command run from a shell: its settings from the environment and the topology
    (:data:`SERVICES`); ``karya``'s callback puts this factory where :meth:`CliRoot.of` finds it."""
    return CliRoot.from_environment(SERVICES)
