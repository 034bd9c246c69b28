"""/readyz follows the database: false while it is stopped, true again once it is back.

The test runs its own PostgreSQL server (a second local instance in a temporary state dir) because stopping the
session's shared server would break every other test.
"""

from __future__ import annotations

import asyncio
import shutil
import uuid

import httpx
import pytest

from infra.db.engine import make_engine
from infra.db.migrate import upgrade_to_head_async
from infra.db.roles import bootstrap_database, role_urls
from infra.environment import local_passwords, state_dir
from infra.localstack import ensure_postgres, stop_postgres
from infra.runtime import ServiceRuntime
from infra.settings import KafkaSettings
from karya.processes import free_port
from tests.integration.messaging_support import recording_handler, wait_for
from tests.naming import session_topic

pytestmark = pytest.mark.integration


async def test_readyz_turns_false_when_database_stops_and_true_when_it_returns(
    kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Under the project's state dir, which the unprivileged postgres user can reach (pytest's tmp is 0700).
    own_state = state_dir() / f"test-readyz-{uuid.uuid4().hex[:8]}"
    own_state.mkdir(parents=True)
    monkeypatch.setenv("KARYA_STATE_DIR", str(own_state))
    monkeypatch.setenv("KARYA_PG_PORT", str(free_port()))  # not a fixed port: sessions run side by side
    pg = await asyncio.to_thread(ensure_postgres)
    try:
        passwords = local_passwords()
        await bootstrap_database(pg.superuser_url, passwords, "karya")
        urls = role_urls(pg.superuser_url, passwords, "karya")
        await upgrade_to_head_async(urls.migrator)
        topic = session_topic("test.readyz")
        runtime = ServiceRuntime(
            name="readyz",
            schema="orders",
            engine=make_engine(urls.service),
            kafka=KafkaSettings(bootstrap_servers=kafka_bootstrap, partitions=1),
            relay=False,
        )
        runtime.add_consumer(name="readyz", topics=[topic], handler=recording_handler("orders"), description="test")
        app = runtime.http_app(after_stop=runtime.engine.dispose)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:

                async def ready() -> bool:
                    return (await client.get("/readyz")).status_code == 200

                await wait_for(ready, what="ready with the database up")
                assert (await client.get("/healthz")).json()["status"] == "alive"

                await asyncio.to_thread(stop_postgres)
                response = await client.get("/readyz")
                assert response.status_code == 503
                assert response.json()["database"] is False
                assert response.json()["broker"] is True
                assert (await client.get("/healthz")).status_code == 200

                await asyncio.to_thread(ensure_postgres)
                await wait_for(ready, what="ready again after the database returned")
                metrics = (await client.get("/metrics")).text
                assert "karya_outbox_backlog" in metrics or "karya_consumer_lag" in metrics
    finally:
        await asyncio.to_thread(stop_postgres)
        shutil.rmtree(own_state, ignore_errors=True)
