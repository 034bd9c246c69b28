"""Local stack ports: defaults outside the ephemeral range, and a running stack found on the ports it recorded."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.localstack import _common, kafka, postgres
from infra.localstack._common import LocalStackError, ephemeral_note, ephemeral_range

PORT_VARS = ("KARYA_KAFKA_PORT", "KARYA_KAFKA_CONTROLLER_PORT", "KARYA_PG_PORT")


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("KARYA_STATE_DIR", str(tmp_path))
    for name in PORT_VARS:
        monkeypatch.delenv(name, raising=False)
    return tmp_path


@pytest.fixture
def sleeper() -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for proc in procs:
        proc.kill()
        proc.wait()


def _sleep(argv0: str, *extra: str) -> list[str]:
    return [argv0, "-c", "import time; time.sleep(120)", *extra]


def test_defaults_lie_outside_the_ephemeral_range() -> None:
    low, high = ephemeral_range()
    for port in (kafka.DEFAULT_PORT, kafka.DEFAULT_CONTROLLER_PORT, postgres.DEFAULT_PORT):
        assert not low <= port <= high
        assert not 32768 <= port <= 60999  # Linux's default range, whatever this machine says
        assert port > 1024


def test_the_ephemeral_range_is_read_from_the_kernel(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    low, high = ephemeral_range()
    assert 1024 <= low < high <= 65535
    assert ephemeral_note("Kafka", low, 19092) is not None
    assert ephemeral_note("Kafka", high + 1 if high < 65535 else low - 1, 19092) is None
    note = ephemeral_note("PostgreSQL", low, 15432) or ""
    assert "15432" in note and "karya stack down" in note


def test_without_overrides_or_a_running_stack_the_defaults_apply(state: Path) -> None:
    lay = kafka._layout()
    assert (lay.port, lay.controller_port, lay.ports_from) == (19092, 19093, "defaults")
    assert kafka.kafka_port_note() is None
    pg = postgres._layout()
    assert (pg.port, pg.ports_from) == (15432, "defaults")
    assert postgres.postgres_port_note() is None


def test_overrides_win(state: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KARYA_KAFKA_PORT", "29092")
    monkeypatch.setenv("KARYA_PG_PORT", "25432")
    lay = kafka._layout()
    assert (lay.port, lay.controller_port, lay.ports_from) == (29092, 19093, "defaults")
    monkeypatch.setenv("KARYA_KAFKA_CONTROLLER_PORT", "29093")
    lay = kafka._layout()
    assert (lay.port, lay.controller_port, lay.ports_from) == (29092, 29093, "environment")
    assert (postgres._layout().port, postgres._layout().ports_from) == (25432, "environment")
    monkeypatch.setenv("KARYA_KAFKA_CONTROLLER_PORT", "29092")
    with pytest.raises(LocalStackError, match="both 29092"):
        kafka._layout()
    monkeypatch.setenv("KARYA_PG_PORT", "seventy")
    with pytest.raises(LocalStackError, match="KARYA_PG_PORT"):
        postgres._layout()


def test_a_running_broker_is_found_on_the_ports_it_recorded(
    state: Path, sleeper: list[subprocess.Popen[bytes]], monkeypatch: pytest.MonkeyPatch
) -> None:
    lay = kafka._Layout("4.1.1", 39092, 39093, state / "kafka")
    lay.state_dir.mkdir(parents=True)
    lay.properties.write_text(kafka._server_properties(lay))
    # stands in for the JVM: _running_pid checks the pid's argv for the main class and this properties file
    proc = subprocess.Popen(_sleep(sys.executable, kafka.MAIN_CLASS, str(lay.properties)))
    sleeper.append(proc)
    lay.pid_file.write_text(f"{proc.pid}\n")

    found = kafka._layout()
    assert (found.port, found.controller_port, found.ports_from) == (39092, 39093, "running broker")
    note = kafka.kafka_port_note() or ""
    assert "39092" in note and "19092" in note

    monkeypatch.setenv("KARYA_KAFKA_PORT", "29092")  # an override still wins; ensure_kafka then refuses
    overridden = kafka._layout()
    assert (overridden.port, overridden.controller_port) == (29092, 39093)
    with pytest.raises(LocalStackError, match=re.escape("already runs with listeners=PLAINTEXT://127.0.0.1:39092")):
        kafka._check_same_listeners(overridden, proc.pid)

    proc.kill()
    proc.wait()
    monkeypatch.delenv("KARYA_KAFKA_PORT")
    assert kafka._layout().ports_from == "defaults"  # a dead pid records nothing


def test_a_recycled_pid_is_not_taken_for_the_broker(state: Path, sleeper: list[subprocess.Popen[bytes]]) -> None:
    lay = kafka._Layout("4.1.1", 39092, 39093, state / "kafka")
    lay.state_dir.mkdir(parents=True)
    lay.properties.write_text(kafka._server_properties(lay))
    proc = subprocess.Popen(_sleep(sys.executable))
    sleeper.append(proc)
    lay.pid_file.write_text(f"{proc.pid}\n")
    assert kafka._layout().ports_from == "defaults"


def test_a_running_postgres_is_found_on_the_port_it_recorded(
    state: Path, sleeper: list[subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    fake = tmp_path / "bin" / "postgres"  # _postmaster checks that the pid's program is named postgres*
    fake.parent.mkdir()
    fake.symlink_to(sys.executable)
    proc = subprocess.Popen(_sleep(str(fake)))
    sleeper.append(proc)
    data = state / "postgres" / "data"
    data.mkdir(parents=True)
    lines = [str(proc.pid), str(data), "1700000000", "54329", str(state / "postgres" / "run"), "127.0.0.1", "0 0"]
    (data / "postmaster.pid").write_text("\n".join([*lines, "ready"]) + "\n")

    found = postgres._layout()
    assert (found.port, found.ports_from) == (54329, "running server")
    assert "54329" in (postgres.postgres_port_note() or "")


def test_env_port_rejects_nonsense(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KARYA_X_PORT", "70000")
    with pytest.raises(LocalStackError, match=re.escape("outside 1..65535")):
        _common.env_port_override("KARYA_X_PORT")
    monkeypatch.setenv("KARYA_X_PORT", " ")
    assert _common.env_port_override("KARYA_X_PORT") is None
    monkeypatch.setenv("KARYA_X_PORT", "1234")
    assert _common.env_port_override("KARYA_X_PORT") == 1234
