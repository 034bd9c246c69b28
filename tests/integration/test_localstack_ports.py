"""A private local stack (own state dir and ports; the shared stack is left alone) across a change of defaults.

1. Started with port variables, it is found again without them (from the ports it recorded): `stack status`
   says up in a shell that never set them.
2. Stopped and started again after the defaults moved, it comes up on the new ports with its data: the KRaft
   storage formatted for the old controller port is kept, and a record written before is read back.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from typer.testing import CliRunner

from infra.localstack import (
    ensure_kafka,
    ensure_postgres,
    kafka,
    kafka_status,
    postgres,
    postgres_status,
    stop_kafka,
    stop_postgres,
)
from infra.localstack.cli import stack_app

pytestmark = pytest.mark.integration
PORT_VARS = ("KARYA_KAFKA_PORT", "KARYA_KAFKA_CONTROLLER_PORT", "KARYA_PG_PORT")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def private_state(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    # /var/tmp rather than pytest's tmp_path: the unprivileged postgres user must traverse the path
    state = Path(tempfile.mkdtemp(prefix="karya-ports-test-", dir="/var/tmp"))
    state.chmod(0o755)
    monkeypatch.setenv("KARYA_STATE_DIR", str(state))
    for name in ("KAFKA_BOOTSTRAP_SERVERS", "KARYA_DB_ADMIN_URL"):
        monkeypatch.delenv(name, raising=False)
    try:
        yield state
    finally:
        for name in PORT_VARS:
            monkeypatch.delenv(name, raising=False)
        stop_kafka()  # by the pids recorded in this private state dir only
        stop_postgres()
        shutil.rmtree(state, ignore_errors=True)


async def _write(bootstrap: str, topic: str, value: bytes) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        await producer.send_and_wait(topic, value)
    finally:
        await producer.stop()


async def _read(bootstrap: str, topic: str) -> list[bytes]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=f"ports-{uuid.uuid4().hex}", auto_offset_reset="earliest"
    )
    await consumer.start()
    values: list[bytes] = []
    try:
        for _ in range(60):  # bounded polls
            batches = await consumer.getmany(timeout_ms=1000)
            values.extend(r.value or b"" for records in batches.values() for r in records)
            if values:
                break
    finally:
        await consumer.stop()
    return values


def test_a_running_stack_is_found_without_port_variables_and_moves_with_the_defaults(
    private_state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = {name: _free_port() for name in PORT_VARS}
    for name, port in old.items():
        monkeypatch.setenv(name, str(port))
    broker = ensure_kafka()
    server = ensure_postgres()
    topic = f"ports-{uuid.uuid4().hex[:8]}"
    asyncio.run(_write(broker.bootstrap, topic, b"before the move"))

    for name in PORT_VARS:  # a new shell that never set them
        monkeypatch.delenv(name)
    assert kafka_status() == broker
    assert postgres_status() == server
    status = CliRunner().invoke(stack_app, ["status"])
    assert status.exit_code == 0, status.output
    assert f"KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:{old['KARYA_KAFKA_PORT']}" in status.stdout.splitlines()
    assert ensure_kafka().pid == broker.pid and ensure_postgres().pid == server.pid  # found, not restarted

    assert stop_kafka() is True and stop_postgres() is True
    new_broker, new_controller, new_pg = _free_port(), _free_port(), _free_port()
    monkeypatch.setattr(kafka, "DEFAULT_PORT", new_broker)  # the defaults moved (as 39092 -> 19092 did)
    monkeypatch.setattr(kafka, "DEFAULT_CONTROLLER_PORT", new_controller)
    monkeypatch.setattr(postgres, "DEFAULT_PORT", new_pg)
    lines: list[str] = []
    moved = ensure_kafka(lines.append)
    assert moved.bootstrap == f"127.0.0.1:{new_broker}"
    assert any(f"moving it to {new_controller}" in line for line in lines), lines
    assert asyncio.run(_read(moved.bootstrap, topic)) == [b"before the move"]
    again = ensure_postgres()
    assert again.superuser_url.split("@")[1] == f"127.0.0.1:{new_pg}/karya"
    assert again.superuser_url.split("@")[0] == server.superuser_url.split("@")[0]  # same cluster and password
    formatted = (private_state / "kafka" / "formatted.properties").read_text().splitlines()
    assert f"controller.port={new_controller}" in formatted
