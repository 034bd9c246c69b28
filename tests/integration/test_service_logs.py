"""A real ``karya serve orders`` process logs JSON lines on stderr, each naming the service, and what it logs
while it handles an event carries that event's context (event_id, subject, correlation_id, topic, partition,
offset).

The process gets this session's database and broker and a topic prefix of its own; the event is one the orders
service refuses (an unknown type), so it is dead-lettered and the ``event_dead_lettered`` line is written while
the event is handled.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from infra.db.roles import RoleUrls
from infra.messaging.envelope import make_envelope
from karya.processes import free_port
from tests.integration.messaging_support import wait_for
from tests.integration.orders_support import publish
from tests.naming import topic_prefix, unique_suffix

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def _lines(path: Path) -> list[dict[str, Any]]:
    """Every line of ``path`` as JSON (a line that is not JSON fails the test, naming it)."""
    parsed = []
    for raw in path.read_text().splitlines():
        if raw.strip():
            try:
                parsed.append(json.loads(raw))
            except json.JSONDecodeError:
                pytest.fail(f"a log line is not JSON: {raw[:300]!r}")
    return parsed


def _start(argv: list[str], env: dict[str, str], stdout: Path, stderr: Path) -> subprocess.Popen[bytes]:
    with stdout.open("wb") as out, stderr.open("wb") as err:
        return subprocess.Popen([sys.executable, "-m", "karya.cli", *argv], env=env, stdout=out, stderr=err, cwd=ROOT)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM by pid, then SIGKILL if it does not end."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


async def test_a_service_process_writes_json_lines_with_the_event_context_bound(
    kafka_bootstrap: str, database: RoleUrls, tmp_path: Path
) -> None:
    prefix = topic_prefix("logs")
    port = free_port()
    stdout, stderr = tmp_path / "orders.out", tmp_path / "orders.err"
    env = {
        **os.environ,
        "DATABASE_URL": database.service,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "KARYA_TOPIC_PREFIX": prefix,
        "KARYA_KAFKA_PARTITIONS": "3",
        "KARYA_LOG_LEVEL": "info",
    }
    proc = _start(["serve", "orders", "--port", str(port)], env, stdout, stderr)
    subject = f"tokopedia:shop-{unique_suffix()}:o1"
    envelope = make_envelope(type="karya.test.not_an_order_event.v1", source="karya/test", subject=subject, data={})
    try:
        async with httpx.AsyncClient() as client:

            async def ready() -> bool:
                assert proc.poll() is None, f"karya serve orders exited: {stderr.read_text()[-2000:]}"
                try:
                    return (await client.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200
                except httpx.HTTPError:
                    return False

            await wait_for(ready, timeout=120, what="karya serve orders ready")
        await publish(kafka_bootstrap, f"{prefix}marketplace.order-events", [envelope])

        async def dead_lettered() -> bool:
            return any(line.get("event") == "event_dead_lettered" for line in _lines(stderr))

        await wait_for(dead_lettered, timeout=60, what="the refused event logged")
    finally:
        _stop(proc)

    lines = _lines(stderr)
    assert stdout.read_text() == "", "nothing is logged on stdout"
    assert lines and all(line["service"] == "orders" for line in lines)
    assert all({"event", "level", "timestamp"} <= line.keys() for line in lines)
    assert any(line["event"] == "service_started" for line in lines), "KARYA_LOG_LEVEL=info keeps info lines"
    handled = next(line for line in lines if line["event"] == "event_dead_lettered")
    assert handled["topic"] == f"{prefix}marketplace.order-events"
    assert isinstance(handled["partition"], int) and isinstance(handled["offset"], int)
    assert handled["event_id"] == str(envelope.event_id)
    assert handled["subject"] == subject
    assert handled["correlation_id"] == str(envelope.correlation_id)
