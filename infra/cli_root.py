"""The composition root of one ``karya`` command: settings read once, and what commands build from them.

A command line is a process of its own. A command that needs settings takes the Typer context (``ctx:
typer.Context``) and :meth:`CliRoot.of` gives every command of one invocation the same root, built from the
environment the first time a command asks for it and kept on the invocation's root context (``karya --help`` and
``karya db migrate`` never build one). From it a command takes

- a database of a role (:meth:`CliRoot.database`, :meth:`CliRoot.run`): an engine created for the command and
  disposed when it is done, wrapped with the service's schema in a :class:`~infra.db.unit_of_work.Database` or a
  :class:`~infra.db.unit_of_work.UnitOfWork`;
- a service's topics under the deployment's prefix (:meth:`CliRoot.topics`);
- a Kafka producer (:meth:`CliRoot.producer`);
- where a service keeps its data (:meth:`CliRoot.schema`, :meth:`CliRoot.role_of`): the topology the program's
  root hands in (``karya.services.SERVICES``), so no command names another service's schema;
- a service's own settings (:meth:`CliRoot.settings`), read once per invocation with the reader the service gives.

The roles: ``service`` (``DATABASE_URL``: orders, ledger), ``gateway`` (``KARYA_GATEWAY_DATABASE_URL``: the
only role that reads raw webhook bodies) and ``auditor`` (``KARYA_AUDITOR_URL``, read-only; the service role when
it is not set). The ``karya`` program puts a factory on its root context (``karya.services.cli_root``), which
:meth:`CliRoot.of` calls on first use. Tests build a root of their own and pass it as ``obj`` to
``CliRunner.invoke``.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, MutableMapping
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar, cast

import typer
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine

from infra.db.engine import make_engine
from infra.db.roles import GATEWAY, GATEWAY_URL_ENV
from infra.db.unit_of_work import Database, UnitOfWork
from infra.settings import DatabaseSettings, KafkaSettings

if TYPE_CHECKING:
    from aiokafka import AIOKafkaProducer

Role = Literal["service", "gateway", "auditor"]
AUDITOR_URL_ENV = "KARYA_AUDITOR_URL"
ROLE_ENV: dict[Role, str] = {"service": "DATABASE_URL", "gateway": GATEWAY_URL_ENV, "auditor": AUDITOR_URL_ENV}
"""The variable that configures each role's database URL."""
_MISSING = {
    "service": "DATABASE_URL is not set: export it (see `karya stack up`, which prints the local value)",
    "gateway": f"{GATEWAY_URL_ENV} is not set: the gateway connects as its own role, {GATEWAY} "
    "(see `karya stack up`, which writes the local value to .local/stack.env)",
}

_T = TypeVar("_T")
_S = TypeVar("_S")
_Topics = TypeVar("_Topics", covariant=True)


class TopicsClass(Protocol[_Topics]):
    """A service's topics dataclass (``OrdersTopics``, ``LedgerTopics``, ``GatewayTopics``)."""

    def with_prefix(self, prefix: str) -> _Topics:
        """The topics under ``prefix``."""
        ...


class Placed(Protocol):
    """Where a service keeps its data: its schema and the database role its process connects as."""

    @property
    def schema(self) -> str:
        """The service's PostgreSQL schema."""
        ...

    @property
    def role(self) -> Role:
        """The role that reads and writes the service's tables."""
        ...


@dataclass(frozen=True)
class CliRoot:
    """The settings of one command invocation: Kafka, the database URL of each role that is configured, the
    services' topology and the service settings read so far (``settings``: given by a test, or filled on use)."""

    kafka: KafkaSettings
    urls: Mapping[Role, str] = field(default_factory=dict)
    services: Mapping[str, Placed] = field(default_factory=dict)
    settings_read: MutableMapping[type, Any] = field(default_factory=dict)

    @classmethod
    def from_environment(cls, services: Mapping[str, Placed] | None = None) -> CliRoot:
        """The root of a command run from a shell: every setting read from the environment, now; ``services``:
        the topology (where each service keeps its data)."""
        urls: dict[Role, str] = {}
        with suppress(ValidationError):
            urls["service"] = DatabaseSettings().url
        optional: tuple[Role, ...] = ("gateway", "auditor")
        for role in optional:
            value = os.environ.get(ROLE_ENV[role], "").strip()
            if value:
                urls[role] = value
        return cls(KafkaSettings(), urls, services or {})

    @classmethod
    def of(cls, ctx: typer.Context) -> CliRoot:
        """The root of the invocation ``ctx`` belongs to: the one passed as ``obj``, else made on first use by the
        factory the program put there (else from the environment, with no topology) and kept for the
        invocation's other commands."""
        top = ctx.find_root()
        if not isinstance(top.obj, CliRoot):
            top.obj = top.obj() if callable(top.obj) else cls.from_environment()
        return cast(CliRoot, top.obj)

    def schema(self, service: str) -> str:
        """The schema of ``service`` (from the topology this root was given)."""
        return self._placed(service).schema

    def role_of(self, service: str) -> Role:
        """The database role that reads and writes ``service``'s tables."""
        return self._placed(service).role

    def _placed(self, service: str) -> Placed:
        if service not in self.services:
            known = ", ".join(self.services) or "none: this root was given no topology"
            raise SystemExit(f"unknown service {service!r} (known: {known})")
        return self.services[service]

    def settings(self, kind: type[_S], read: Callable[[], _S] | None = None) -> _S:
        """A service's own settings of type ``kind``, read once per invocation with ``read`` (default: ``kind()``,
        a pydantic settings class reading the environment); a test may give them in ``settings_read``."""
        if kind not in self.settings_read:
            self.settings_read[kind] = (read or kind)()
        return cast(_S, self.settings_read[kind])

    def has(self, role: Role) -> bool:
        """Whether ``role``'s database URL is configured (the auditor's falls back to the service role's)."""
        return role in self.urls or (role == "auditor" and "service" in self.urls)

    def url(self, role: Role) -> str:
        """The database URL of ``role``; stops the command naming the variable to set when it is not configured."""
        if role in self.urls:
            return self.urls[role]
        if role == "auditor":
            return self.url("service")
        raise SystemExit(_MISSING[role])

    def topics(self, cls: TopicsClass[_Topics]) -> _Topics:
        """A service's topics (``OrdersTopics`` …) under this deployment's prefix."""
        return cls.with_prefix(self.kafka.topic_prefix)

    def producer(self, client_id: str) -> AIOKafkaProducer:
        """An idempotent producer to this deployment's brokers (not started)."""
        from infra.messaging.relay import make_producer

        return make_producer(self.kafka.bootstrap_servers, client_id)

    @asynccontextmanager
    async def engine(self, role: Role, *, pool_size: int = 1, name: str = "karya-cli") -> AsyncIterator[AsyncEngine]:
        """``role``'s engine for the block, disposed after it (``name``: its ``application_name``)."""
        engine = make_engine(self.url(role), pool_size=pool_size, application_name=name)
        try:
            yield engine
        finally:
            await engine.dispose()

    @asynccontextmanager
    async def database(self, role: Role, schema: str, *, name: str = "karya-cli") -> AsyncIterator[Database]:
        """``role``'s engine on ``schema`` for the block (:meth:`engine`), as a :class:`Database`."""
        async with self.engine(role, name=name) as engine:
            yield Database(engine, schema)

    def run(self, role: Role, schema: str, work: Callable[[UnitOfWork], Awaitable[_T]]) -> _T:
        """Run ``work`` in one transaction as ``role`` on ``schema`` (its own event loop; the engine is disposed)."""

        async def main() -> _T:
            async with self.database(role, schema) as db, db.begin() as uow:
                return await work(uow)

        return asyncio.run(main())
