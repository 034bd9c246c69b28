"""The composition root of one ``karya`` command: settings read once, and what commands build from them.

A command line is a process of its own. A command that needs settings takes the Typer context (``ctx:
typer.Context``) and :meth:`CliRoot.of` gives every command of one invocation the same root, built from the
environment the first time a command asks for it and kept on the invocation's root context (``karya --help`` and
``karya db migrate`` never build one). From it a command takes

- a database of a role (:meth:`CliRoot.database`, :meth:`CliRoot.run`): an engine created for the command and
  disposed when it is done, wrapped with the service's schema in a :class:`~infra.db.unit_of_work.Database` or a
  :class:`~infra.db.unit_of_work.UnitOfWork`;
- a service's topics under the deployment's prefix (:meth:`CliRoot.topics`);
- a Kafka producer (:meth:`CliRoot.producer`).

The roles: ``service`` (``DATABASE_URL``: orders, ledger), ``gateway`` (``KARYA_GATEWAY_DATABASE_URL``: the
only role that reads raw webhook bodies) and ``auditor`` (``KARYA_AUDITOR_URL``, read-only; the service role when
it is not set). Tests build a root of their own and pass it as ``obj`` to ``CliRunner.invoke``.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol, TypeVar

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
_MISSING = {
    "service": "DATABASE_URL is not set: export it (see `karya stack up`, which prints the local value)",
    "gateway": f"{GATEWAY_URL_ENV} is not set: the gateway connects as its own role, {GATEWAY} "
    "(see `karya stack up`, which writes the local value to .local/stack.env)",
}

_T = TypeVar("_T")
_Topics = TypeVar("_Topics", covariant=True)


class TopicsClass(Protocol[_Topics]):
    """A service's topics dataclass (``OrdersTopics``, ``LedgerTopics``, ``GatewayTopics``)."""

    def with_prefix(self, prefix: str) -> _Topics:
        """The topics under ``prefix``."""
        ...


@dataclass(frozen=True)
class CliRoot:
    """The settings of one command invocation: Kafka, and the database URL of each role that is configured."""

    kafka: KafkaSettings
    urls: Mapping[Role, str] = field(default_factory=dict)

    @classmethod
    def from_environment(cls) -> CliRoot:
        """The root of a command run from a shell: every setting read from the environment, now."""
        urls: dict[Role, str] = {}
        with suppress(ValidationError):
            urls["service"] = DatabaseSettings().url
        for role, env in (("gateway", GATEWAY_URL_ENV), ("auditor", AUDITOR_URL_ENV)):
            value = os.environ.get(env, "").strip()
            if value:
                urls[role] = value  # type: ignore[index]
        return cls(KafkaSettings(), urls)

    @classmethod
    def of(cls, ctx: typer.Context) -> CliRoot:
        """The root of the invocation ``ctx`` belongs to: the one passed as ``obj``, else built from the
        environment on first use and kept for the invocation's other commands."""
        top = ctx.find_root()
        if not isinstance(top.obj, CliRoot):
            top.obj = cls.from_environment()
        return top.obj

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
