"""The private stack the experiments break: its own PostgreSQL and Kafka, never the shared development stack.

Everything here works through ``infra.localstack`` with this process's environment pointed at a private state
directory and private loopback ports (outside Linux's ephemeral range 32768-60999). Every stop or kill first checks
that the target is the private instance: its pid file lives under the private state directory and its command line
names that directory.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from infra.db.roles import PASSWORD_ENV, ROLES
from infra.localstack import ensure_kafka, ensure_postgres, kafka, stop_kafka, stop_postgres
from infra.localstack._common import LocalStackError, Progress, pid_alive, pid_cmdline, read_pid, reap, state_root
from infra.localstack._kafka_jars import ensure_jars, require_java
from infra.localstack.postgres import pg_bin_dir

SHARED_PORTS = frozenset({39092, 39093, 54329})
EPHEMERAL = range(32768, 61000)


@dataclass(frozen=True)
class PrivateStack:
    """A PostgreSQL server and a Kafka broker of the fault suite's own."""

    state_dir: Path
    pg_port: int = 17432
    kafka_port: int = 17092
    controller_port: int = 17093

    def __post_init__(self) -> None:
        for port in (self.pg_port, self.kafka_port, self.controller_port):
            if port in SHARED_PORTS or port in EPHEMERAL:
                raise ValueError(f"port {port} is the shared stack's or in the ephemeral range; pick another")

    @property
    def bootstrap(self) -> str:
        """Where the private broker listens."""
        return f"127.0.0.1:{self.kafka_port}"

    def _point_environment(self) -> None:
        """Point this process (and every child it starts) at the private stack."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        os.environ["KARYA_STATE_DIR"] = str(self.state_dir)
        os.environ["KARYA_PG_PORT"] = str(self.pg_port)
        os.environ["KARYA_KAFKA_PORT"] = str(self.kafka_port)
        os.environ["KARYA_KAFKA_CONTROLLER_PORT"] = str(self.controller_port)
        os.environ["KAFKA_BOOTSTRAP_SERVERS"] = self.bootstrap
        os.environ.pop("KARYA_KAFKA_BOOTSTRAP_SERVERS", None)
        for var in ("DATABASE_URL", "KARYA_MIGRATOR_URL", "KARYA_AUDITOR_URL"):
            os.environ.pop(var, None)

    def _check_private(self) -> None:
        """Refuse to touch anything unless this process points at the private state directory and ports."""
        if state_root() != self.state_dir.resolve():
            raise RuntimeError(f"KARYA_STATE_DIR is not the private {self.state_dir}; refusing to stop anything")
        if os.environ.get("KARYA_PG_PORT") != str(self.pg_port) or os.environ.get("KARYA_KAFKA_PORT") != str(
            self.kafka_port
        ):
            raise RuntimeError("the port variables do not name the private stack; refusing to stop anything")

    def start(self, say: Progress | None = None) -> None:
        """Start (or find running) the private PostgreSQL and Kafka; set the connection variables."""
        self._point_environment()
        pg = ensure_postgres(say or (lambda _line: None))
        self.start_kafka()
        os.environ["KARYA_DB_ADMIN_URL"] = pg.superuser_url
        passwords = _private_passwords(self.state_dir)
        for role in ROLES:
            os.environ[PASSWORD_ENV[role]] = passwords[role]

    def stop(self) -> None:
        """Stop both private servers by their recorded pids."""
        self._point_environment()
        self._check_private()
        stop_kafka(lambda _line: None)
        stop_postgres(lambda _line: None)

    # --- PostgreSQL -------------------------------------------------------------------------------------------

    @property
    def pg_data(self) -> Path:
        """The private cluster's data directory."""
        return self.state_dir / "postgres" / "data"

    def postmaster_pid(self) -> int | None:
        """The private postmaster's pid, when it runs."""
        pid = read_pid(self.pg_data / "postmaster.pid")
        if pid is None or not pid_alive(pid):
            return None
        argv = pid_cmdline(pid)
        return pid if argv and str(self.pg_data) in " ".join(argv) else None

    def pg_stop_immediate(self) -> bool:
        """``pg_ctl stop -m immediate`` on the private cluster (no checkpoint: crash recovery at the next start)."""
        self._check_private()
        if self.postmaster_pid() is None:
            return False
        run_as = ["runuser", "-u", "karya-pg", "--"] if os.geteuid() == 0 else []
        done = subprocess.run(
            [*run_as, str(pg_bin_dir() / "pg_ctl"), "-D", str(self.pg_data), "-m", "immediate", "-w", "-s", "stop"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            check=False,
            start_new_session=True,
        )
        return done.returncode == 0

    def pg_start(self) -> None:
        """Start the private cluster again (crash recovery runs first after an immediate stop)."""
        self._check_private()
        ensure_postgres(lambda _line: None)

    # --- Kafka ------------------------------------------------------------------------------------------------

    def broker_pid(self) -> int | None:
        """The private broker's pid, when it runs (its command line names the private properties file)."""
        pid = read_pid(self.state_dir / "kafka" / "kafka.pid")
        if pid is None:
            return None
        reap(pid)
        if not pid_alive(pid):
            return None
        return pid if str(self.state_dir / "kafka" / "server.properties") in pid_cmdline(pid) else None

    def kill_broker(self, sig: signal.Signals, timeout_s: float = 40.0) -> float:
        """Send ``sig`` to the private broker and wait until it is gone; returns the seconds that took."""
        self._check_private()
        pid = self.broker_pid()
        if pid is None:
            raise LocalStackError("the private broker is not running")
        started = time.monotonic()
        os.kill(pid, sig)
        while time.monotonic() - started < timeout_s:
            reap(pid)
            if not pid_alive(pid):
                return time.monotonic() - started
            time.sleep(0.1)
        os.kill(pid, signal.SIGKILL)
        for _ in range(100):
            reap(pid)
            if not pid_alive(pid):
                break
            time.sleep(0.1)
        return time.monotonic() - started

    def start_kafka(self) -> None:
        """Start the private broker (or find it running)."""
        self._check_private()
        ensure_kafka(lambda _line: None)

    def restart_kafka(self, advertised_port: int | None) -> None:
        """Restart the private broker; with ``advertised_port`` it tells clients to connect there (the fault proxy
        in front of it), so every Kafka connection of the services passes the proxy; without, as usual."""
        self._check_private()
        stop_kafka(lambda _line: None)
        if advertised_port is None:
            ensure_kafka(lambda _line: None)
            return
        lay = kafka._layout()
        usual = f"advertised.listeners=PLAINTEXT://{lay.bootstrap},"
        props = kafka._server_properties(lay)
        if usual not in props:
            raise LocalStackError("the broker's advertised listener is not where the fault suite expects it")
        props = props.replace(usual, f"advertised.listeners=PLAINTEXT://127.0.0.1:{advertised_port},")
        java = require_java()
        libs = ensure_jars(lay.version, lambda _line: None)
        lay.properties.write_text(props)
        kafka._format_storage(lay, java, libs, lambda _line: None)
        with open(lay.log_file, "ab") as log:
            proc = subprocess.Popen(
                [*kafka._java_base(java, libs), kafka.MAIN_CLASS, str(lay.properties)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=lay.state_dir,
                start_new_session=True,
            )
        lay.pid_file.write_text(f"{proc.pid}\n")
        kafka._wait_ready(lay, proc.pid, lambda _line: None)


def _private_passwords(state_dir: Path) -> dict[str, str]:
    """Role passwords of the private stack, generated once into its own state directory."""
    import json
    import secrets

    path = state_dir / "secrets.json"
    if path.exists():
        stored: dict[str, str] = json.loads(path.read_text())
        if all(r in stored for r in ROLES):
            return stored
    generated = {r: secrets.token_urlsafe(24) for r in ROLES}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(generated, fh)
    return generated
