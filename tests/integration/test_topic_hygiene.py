"""A test session deletes the topics it made on the shared broker when it ends, and only those
(``tests/naming.py``, ``pytest_sessionfinish`` in ``tests/conftest.py``)."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from infra.messaging.admin import ensure_topics
from tests.conftest import Services
from tests.naming import SESSION_PREFIX, session_topic, topic_prefix

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
_CORE = "tests/integration/test_messaging_core.py"
_DELETED = re.compile(r"kafka: deleted the (\d+) topics of this session \((t[0-9a-f]{8}-)\*\)")


async def _topics(bootstrap: str, prefix: str) -> list[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return sorted(t for t in await admin.list_topics() if t.startswith(prefix))
    finally:
        await admin.close()


def test_names_carry_this_sessions_prefix() -> None:
    prefix, topic = topic_prefix("gw"), session_topic("test.relay")
    assert prefix.startswith(SESSION_PREFIX) and prefix.endswith(".") and topic.startswith(SESSION_PREFIX)
    assert topic_prefix() != topic_prefix() and session_topic("x") != session_topic("x")


async def test_a_session_deletes_its_own_topics_and_no_others(services: Services) -> None:
    bootstrap = services.kafka_bootstrap
    mine = f"{topic_prefix()}orders.events"  # this (outer) session's: the inner session must leave it alone
    await ensure_topics(bootstrap, [mine], partitions=1)
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "KARYA_DB_ADMIN_URL": services.admin_url}
    inner = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "pytest", "-q", f"{_CORE}::test_idempotent_producer_initialises_and_delivers"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert inner.returncode == 0, inner.stdout[-3000:] + inner.stderr[-3000:]
    found = _DELETED.search(inner.stdout)
    assert found is not None, inner.stdout[-3000:]
    deleted, prefix = int(found.group(1)), found.group(2)
    assert deleted >= 1 and prefix != SESSION_PREFIX
    left = await _topics(bootstrap, prefix)
    for _ in range(20):  # deletion is acknowledged before every broker's metadata has caught up
        if not left:
            break
        await asyncio.sleep(0.5)
        left = await _topics(bootstrap, prefix)
    assert left == []
    assert await _topics(bootstrap, mine) == [mine, f"{mine}.dlq"]
