"""The outbox relay under its supervisor, against the real database and broker.

- Its database connections are killed (``pg_terminate_backend`` as the admin role, only this runtime's backends of
  this session's database) and kept out (the database's connection limit at 0 for non-superusers): ``/readyz``
  answers 503 naming the relay, the relay is restarted (``karya_task_restarts_total``), and once the database takes
  connections again every outbox row — those written before and during the outage — is on Kafka exactly once.
- Only its lock connection is killed: the relay notices it lost its leadership, is restarted, takes the lock again
  and publishes what comes next.
- Another holder of the lock keeps the relay waiting: the backlog gauge still counts the rows that wait (it is
  measured apart from the publishing loop), and the relay takes over when the lock is released.

Each test observes the records on Kafka (their ``karya-outbox`` headers), never outbox rows a relay may delete.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from infra.db.engine import make_engine
from infra.db.roles import RoleUrls
from infra.messaging.outbox import OutboundMessage, enqueue
from infra.messaging.relay import OUTBOX_HEADER
from infra.runtime import ServiceRuntime
from infra.settings import KafkaSettings
from tests.integration.messaging_support import create_scratch_schema, read_topic, wait_for
from tests.naming import session_topic, unique_suffix

pytestmark = pytest.mark.integration


@dataclass
class _Relayed:
    """One runtime with a relay on a scratch outbox, its HTTP client and the topic it publishes to."""

    runtime: ServiceRuntime
    client: httpx.AsyncClient
    schema: str
    topic: str
    engine: AsyncEngine

    @property
    def application_name(self) -> str:
        return f"karya-{self.runtime.name}"

    async def write(self, engine: AsyncEngine, first: int, n: int) -> None:
        messages = [
            OutboundMessage(self.topic, f"k{i % 7}".encode(), f"row-{i}".encode()) for i in range(first, first + n)
        ]
        async with engine.begin() as conn:
            await enqueue(conn, self.schema, messages)

    async def metric(self, name: str, labels: dict[str, str]) -> float | None:
        body = (await self.client.get("/metrics")).text
        for family in text_string_to_metric_families(body):
            for sample in family.samples:
                if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                    return float(sample.value)
        return None

    async def published_rows(self, expected: int) -> list[str]:
        """The values of the records on the topic, after checking each carries this outbox's header."""
        records = await read_topic(self.runtime.kafka.bootstrap_servers, self.topic, expected)
        for r in records:
            assert dict(r.headers)[OUTBOX_HEADER].startswith(f"{self.schema}:".encode())
        return sorted(r.value.decode() for r in records)


@asynccontextmanager
async def _relayed(kafka_bootstrap: str, database: RoleUrls, schema: str | None = None) -> AsyncIterator[_Relayed]:
    """A runtime relaying a scratch outbox (``schema``: one created by the caller, else a new one)."""
    u = unique_suffix()
    topic = session_topic("test.supervision")
    if schema is None:
        schema = f"sup_{u}"
        await create_scratch_schema(database.migrator, schema)
    runtime = ServiceRuntime(
        name=f"suptest-{u}",
        schema=schema,
        engine=make_engine(database.service, application_name=f"karya-suptest-{u}"),
        kafka=KafkaSettings(bootstrap_servers=kafka_bootstrap, partitions=3),
        restart_delay_s=(0.2, 1.0),
    )
    runtime.declare_output(topic, "test output")
    engine = make_engine(database.service, pool_size=2)
    app = runtime.http_app(after_stop=runtime.engine.dispose)
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                relayed = _Relayed(runtime, client, schema, topic, engine)

                async def ready() -> bool:
                    return (await client.get("/readyz")).status_code == 200

                await wait_for(ready, what="the runtime ready")
                yield relayed
    finally:
        await engine.dispose()


def _pg(admin_db_url: str) -> str:
    return make_url(admin_db_url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _terminate(admin: asyncpg.Connection, application_name: str, only_lock_holder: bool = False) -> int:
    """Terminate this session database's backends of ``application_name`` (or only the one holding an advisory
    lock); returns how many."""
    lock_filter = (
        "AND pid IN (SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted)" if only_lock_holder else ""
    )
    return int(
        await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            f"WHERE datname = current_database() AND application_name = $1 {lock_filter}",
            application_name,
        )
    )


async def test_killed_database_connections_make_readyz_503_restart_the_relay_and_the_outbox_drains(
    kafka_bootstrap: str, database: RoleUrls, admin_db_url: str
) -> None:
    dbname = make_url(admin_db_url).database
    admin = await asyncpg.connect(_pg(admin_db_url))
    admin_engine = make_engine(admin_db_url, pool_size=1)
    try:
        async with _relayed(kafka_bootstrap, database) as r:
            await r.write(r.engine, 0, 40)
            assert len(await r.published_rows(expected=40)) == 40

            await admin.execute(f'ALTER DATABASE "{dbname}" WITH CONNECTION LIMIT 0')  # superusers still get in
            try:
                assert await _terminate(admin, r.application_name) >= 1

                async def relay_reported_down() -> bool:
                    response = await r.client.get("/readyz")
                    body = response.json()
                    return response.status_code == 503 and body["tasks"] is False and "relay" in body["tasks_down"]

                await wait_for(relay_reported_down, what="/readyz 503 naming the relay")
                await r.write(admin_engine, 40, 60)  # written while the service cannot reach its database

                async def restarted() -> bool:
                    return (await r.metric("karya_task_restarts_total", {"task": "relay"}) or 0) >= 1

                await wait_for(restarted, what="the relay restarted")
            finally:
                await admin.execute(f'ALTER DATABASE "{dbname}" WITH CONNECTION LIMIT -1')

            async def ready_again() -> bool:
                return (await r.client.get("/readyz")).status_code == 200

            await wait_for(ready_again, what="/readyz 200 once the database takes connections again")
            rows = await r.published_rows(expected=100)
            assert rows == sorted(f"row-{i}" for i in range(100)), "every row on Kafka exactly once"
    finally:
        await admin_engine.dispose()
        await admin.close()


async def test_a_relay_whose_lock_connection_dies_is_restarted_and_leads_again(
    kafka_bootstrap: str, database: RoleUrls, admin_db_url: str
) -> None:
    admin = await asyncpg.connect(_pg(admin_db_url))
    try:
        async with _relayed(kafka_bootstrap, database) as r:

            async def leads() -> bool:
                return await r.metric("karya_outbox_relay_leader", {"schema": r.schema}) == 1.0

            await wait_for(leads, what="the relay leading")
            assert await _terminate(admin, r.application_name, only_lock_holder=True) == 1

            async def restarted() -> bool:
                return (await r.metric("karya_task_restarts_total", {"task": "relay"}) or 0) >= 1

            await wait_for(restarted, what="the relay noticed the lost lock and was restarted")
            await r.write(r.engine, 0, 25)
            assert await r.published_rows(expected=25) == sorted(f"row-{i}" for i in range(25))
            holders = await admin.fetchval(
                "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
                "WHERE l.locktype = 'advisory' AND l.granted AND a.application_name = $1",
                r.application_name,
            )
            assert holders == 1, "the restarted relay holds the lock again"
    finally:
        await admin.close()


async def test_backlog_is_counted_while_another_holder_keeps_the_relay_waiting(
    kafka_bootstrap: str, database: RoleUrls
) -> None:
    schema = f"sup_{unique_suffix()}"
    await create_scratch_schema(database.migrator, schema)
    rival = make_engine(database.service, pool_size=1, application_name="rival-relay")
    try:
        async with rival.connect() as lock_conn:
            key = {"k": f"karya-outbox:{schema}"}
            assert (await lock_conn.execute(text("SELECT pg_try_advisory_lock(hashtext(:k))"), key)).scalar()
            await lock_conn.commit()
            async with _relayed(kafka_bootstrap, database, schema) as r:
                await r.write(r.engine, 0, 30)

                async def backlog_counted() -> bool:
                    return await r.metric("karya_outbox_backlog", {"schema": schema}) == 30.0

                await wait_for(backlog_counted, what="the backlog gauge counting rows no relay publishes")
                leader = await r.metric("karya_outbox_relay_leader", {"schema": schema})
                assert leader == 0.0, "a standby exports 0, so no leader is visible to an alert"

                await lock_conn.execute(text("SELECT pg_advisory_unlock(hashtext(:k))"), key)
                await lock_conn.commit()
                assert await r.published_rows(expected=30) == sorted(f"row-{i}" for i in range(30))

                async def drained() -> bool:
                    return await r.metric("karya_outbox_backlog", {"schema": schema}) == 0.0

                await wait_for(drained, what="the backlog gauge back to 0")
    finally:
        await rival.dispose()
