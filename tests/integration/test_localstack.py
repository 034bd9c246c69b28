"""Integration tests for the local stack: a real Kafka broker and a real PostgreSQL server."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from typer.testing import CliRunner

from infra.localstack import (
    KafkaInfo,
    PostgresInfo,
    ensure_kafka,
    ensure_postgres,
    kafka_server_version,
    kafka_status,
    postgres_server_version,
    postgres_status,
    stop_kafka,
    stop_postgres,
)
from infra.localstack.cli import stack_app
from infra.localstack.kafka import KAFKA_VERSION_DEFAULT
from tests.naming import session_topic

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def kafka() -> KafkaInfo:
    return ensure_kafka()


@pytest.fixture(scope="module")
def postgres() -> PostgresInfo:
    return ensure_postgres()


def _plain_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


# --- Kafka ---------------------------------------------------------------------------------------------


def test_kafka_ensure_is_idempotent(kafka: KafkaInfo) -> None:
    again = ensure_kafka()
    assert again.pid == kafka.pid
    assert kafka_status() == again


def test_kafka_reports_its_version(kafka: KafkaInfo) -> None:
    expected = os.environ.get("KARYA_KAFKA_VERSION") or KAFKA_VERSION_DEFAULT
    assert kafka.version == f"Apache Kafka {expected}"
    assert kafka_server_version(kafka.bootstrap) == kafka.version


async def test_idempotent_producer_delivers_and_consumer_reads_back(kafka: KafkaInfo) -> None:
    topic = session_topic("localstack")
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])
    finally:
        await admin.close()

    sent = [(f"order-{i % 4}".encode(), f"event-{i}".encode()) for i in range(20)]
    # enable_idempotence makes the producer fetch a producer id (InitProducerId) before its first send;
    # on a broker without replication-factor-1 internal topics this is where it would hang or fail
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        for key, value in sent:
            meta = await producer.send_and_wait(topic, value, key=key)
            assert meta.topic == topic
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka.bootstrap,
        group_id=f"localstack-test-{uuid.uuid4().hex}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    received: list[tuple[bytes, bytes]] = []
    try:
        for _ in range(60):  # bounded number of polls, not a wall-clock assertion
            batches = await consumer.getmany(timeout_ms=1000)
            for records in batches.values():
                received.extend((r.key or b"", r.value or b"") for r in records)
            if len(received) >= len(sent):
                break
        await consumer.commit()
        committed = [await consumer.committed(TopicPartition(topic, p)) for p in range(3)]
    finally:
        await consumer.stop()

    assert sorted(received) == sorted(sent)
    # one key always lands in one partition, so per-key order is preserved
    for key in {k for k, _ in sent}:
        assert [v for k, v in received if k == key] == [v for k, v in sent if k == key]
    assert sum(offset or 0 for offset in committed) == len(sent)


# --- PostgreSQL ----------------------------------------------------------------------------------------


def test_postgres_ensure_is_idempotent(postgres: PostgresInfo) -> None:
    again = ensure_postgres()
    assert again.pid == postgres.pid
    assert postgres_status() == again


async def test_postgres_answers_and_reports_version(postgres: PostgresInfo) -> None:
    assert re.fullmatch(r"PostgreSQL \d+(\.\d+)?", postgres.version)
    assert postgres_server_version(postgres.superuser_url) == postgres.version

    conn = await asyncpg.connect(_plain_dsn(postgres.superuser_url))
    try:
        assert await conn.fetchval("select 1") == 1
        assert await conn.fetchval("select current_database()") == "karya"
        assert await conn.fetchval("show synchronous_commit") == "on"
        assert await conn.fetchval("show fsync") == "on"
        assert await conn.fetchval("show listen_addresses") == "127.0.0.1"
    finally:
        await conn.close()


async def test_superuser_url_works_with_sqlalchemy(postgres: PostgresInfo) -> None:
    engine = create_async_engine(postgres.superuser_url)
    try:
        async with engine.connect() as conn:
            assert (await conn.execute(text("select 1"))).scalar_one() == 1
    finally:
        await engine.dispose()


async def test_ensure_works_inside_a_running_event_loop(kafka: KafkaInfo, postgres: PostgresInfo) -> None:
    asyncio.get_running_loop()  # we are inside pytest-asyncio's loop
    assert ensure_postgres().pid == postgres.pid
    assert ensure_kafka().pid == kafka.pid


def test_cli_status_prints_exportable_settings(kafka: KafkaInfo, postgres: PostgresInfo) -> None:
    result = CliRunner().invoke(stack_app, ["status"])
    assert result.exit_code == 0, result.output
    assert f"KAFKA_BOOTSTRAP_SERVERS={kafka.bootstrap}" in result.stdout.splitlines()
    masked = make_url(postgres.superuser_url).render_as_string(hide_password=True)
    assert f"KARYA_DB_ADMIN_URL={masked}" in result.stdout.splitlines()
    password = make_url(postgres.superuser_url).password
    assert password is not None
    assert password not in result.stdout, "secrets are never printed"


# --- full lifecycle on a private state dir and ports (leaves the shared stack alone) ----------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def private_stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    # /var/tmp rather than pytest's tmp_path: the unprivileged postgres user must traverse the path
    state = Path(tempfile.mkdtemp(prefix="karya-stack-test-", dir="/var/tmp"))
    state.chmod(0o755)
    monkeypatch.setenv("KARYA_STATE_DIR", str(state))
    for name in ("KARYA_KAFKA_PORT", "KARYA_KAFKA_CONTROLLER_PORT", "KARYA_PG_PORT"):
        monkeypatch.setenv(name, str(_free_port()))
    try:
        yield state
    finally:
        stop_kafka()
        stop_postgres()
        shutil.rmtree(state, ignore_errors=True)


async def test_start_stop_lifecycle(private_stack: Path) -> None:
    # async on purpose: readiness checks must work while an event loop is running (worker-thread path)
    kafka = ensure_kafka()
    postgres = ensure_postgres()
    assert kafka.pid is not None and postgres.pid is not None
    assert (private_stack / "kafka" / "kafka.pid").read_text().strip() == str(kafka.pid)
    assert kafka_status() == kafka and postgres_status() == postgres

    assert stop_kafka() is True
    assert stop_postgres() is True
    assert kafka_status() is None and postgres_status() is None
    assert not (private_stack / "kafka" / "kafka.pid").exists()
    assert stop_kafka() is False and stop_postgres() is False

    result = CliRunner().invoke(stack_app, ["status"])
    assert result.exit_code == 1

    # restart reuses the formatted storage and the initialised cluster (same password, same database)
    again = ensure_postgres()
    assert again.superuser_url == postgres.superuser_url
    assert ensure_kafka().version == kafka.version
