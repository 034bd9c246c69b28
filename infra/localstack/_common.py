"""Shared plumbing for the local stack: paths, pid files, locks, progress output, sync-over-async."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import signal
import socket
import time
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol, TypeVar, overload

T = TypeVar("T")

Progress = Callable[[str], None]
"""Receives one human-readable line per step of a long operation (jar download, initdb, start)."""

_log = logging.getLogger("infra.localstack")

LOOPBACK = "127.0.0.1"


class LocalStackError(RuntimeError):
    """A local service could not be installed, started or stopped; the message says what to do."""


class _HasStateDir(Protocol):
    @property
    def state_dir(self) -> Path: ...


class StatePath:
    """A path under a layout's ``state_dir``, read as an attribute: ``log_file = StatePath("log", "pg.log")``.

    The Kafka and PostgreSQL layouts name their files this way instead of one ``@property`` per file."""

    def __init__(self, *parts: str) -> None:
        self.parts = parts

    @overload
    def __get__(self, layout: None, owner: type) -> StatePath: ...
    @overload
    def __get__(self, layout: _HasStateDir, owner: type) -> Path: ...
    def __get__(self, layout: _HasStateDir | None, owner: type) -> Path | StatePath:
        """The path under ``layout.state_dir`` (the descriptor itself when read from the class)."""
        return self if layout is None else layout.state_dir.joinpath(*self.parts)


def repo_root() -> Path:
    """The repository root: the parent of the ``infra/`` package."""
    return Path(__file__).resolve().parents[2]


def state_root() -> Path:
    """Root of all local-stack state (``$KARYA_STATE_DIR`` or ``<repo>/.local``), created if missing."""
    env = os.environ.get("KARYA_STATE_DIR")
    root = Path(env).expanduser().resolve() if env else repo_root() / ".local"
    root.mkdir(parents=True, exist_ok=True)
    return root


def cache_root() -> Path:
    """Per-machine download cache: ``${XDG_CACHE_HOME:-~/.cache}/karya``."""
    env = os.environ.get("XDG_CACHE_HOME")
    base = Path(env).expanduser() if env else Path.home() / ".cache"
    return base / "karya"


def env_port_override(name: str) -> int | None:
    """The TCP port set in the environment variable ``name``, or None when it is unset or empty."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return None
    try:
        port = int(raw)
    except ValueError as exc:
        raise LocalStackError(f"{name}={raw!r} is not a port number") from exc
    if not 1 <= port <= 65535:
        raise LocalStackError(f"{name}={port} is outside 1..65535")
    return port


_EPHEMERAL_FALLBACK = (32768, 60999)  # Linux's default net.ipv4.ip_local_port_range


def ephemeral_range() -> tuple[int, int]:
    """The kernel's range for outgoing connections' local ports (``/proc/sys/net/ipv4/ip_local_port_range``)."""
    try:
        low, high = (int(part) for part in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    except (OSError, ValueError):
        return _EPHEMERAL_FALLBACK
    return low, high


def ephemeral_note(service: str, port: int, default: int) -> str | None:
    """A warning when a listener's port lies in the ephemeral range, else None.

    There a client reconnecting to a stopped server can be given that very port as its own and connect to
    itself (TCP simultaneous open), and the server then cannot bind it on restart.
    """
    low, high = ephemeral_range()
    if not low <= port <= high:
        return None
    return (
        f"{service} listens on {port}, inside the ephemeral port range {low}-{high}: clients reconnecting while it "
        f"is down can take the port and block its restart; restart the local stack (`karya stack down` then "
        f"`karya stack up`) to move it to {default}, or choose a port outside that range"
    )


def default_progress(line: str) -> None:
    """Progress sink used when the caller passes none: the module logger."""
    _log.info("%s", line)


def port_open(port: int, host: str = LOOPBACK, timeout: float = 1.0) -> bool:
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _proc_state(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name is in parentheses and may contain spaces; the state follows the last ')'
    return stat.rsplit(")", 1)[1].split()[0]


def pid_alive(pid: int) -> bool:
    """True when pid exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    state = _proc_state(pid)
    return state is not None and state not in ("Z", "X")


def pid_cmdline(pid: int) -> list[str]:
    """The argv of a running process (empty when it is gone)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def reap(pid: int) -> None:
    """Collect the exit status if pid is our own child, so it does not linger as a zombie."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def read_pid(path: Path) -> int | None:
    """The pid stored in a pid file, or None when the file is missing or garbled."""
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def write_private(path: Path, text: str, mode: int = 0o600) -> None:
    """Write a file that is created with ``mode`` from the start (no window with wider permissions)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(path, mode)


def terminate_pid(pid: int, *, grace_seconds: float, progress: Progress) -> None:
    """SIGTERM the given pid, wait up to ``grace_seconds``, then SIGKILL that same pid."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_seconds
    while time.monotonic() < deadline:
        reap(pid)
        if not pid_alive(pid):
            return
        time.sleep(0.2)
    progress(f"pid {pid} did not exit within {grace_seconds:.0f}s; sending SIGKILL")
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    for _ in range(50):
        reap(pid)
        if not pid_alive(pid):
            return
        time.sleep(0.1)


def tail(path: Path, lines: int = 40) -> str:
    """The last lines of a log file, for error messages."""
    try:
        data = path.read_bytes()[-64 * 1024 :]
    except OSError:
        return f"(no log at {path})"
    return "\n".join(data.decode(errors="replace").splitlines()[-lines:])


def log_excerpt(path: Path, lines: int = 25) -> str:
    """The first ERROR/FATAL lines with the line after each (Java puts the cause there), then the tail."""
    try:
        text = path.read_bytes()[-512 * 1024 :].decode(errors="replace").splitlines()
    except OSError:
        return f"(no log at {path})"
    errors: list[str] = []
    for index, line in enumerate(text):
        if " ERROR " in line or " FATAL " in line:
            errors.extend(text[index : index + 2])
            if len(errors) >= 6:
                break
    last = "\n".join(text[-lines:])
    if not errors:
        return last
    return "first errors:\n" + "\n".join(errors) + f"\n--- last {lines} lines ---\n" + last


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Exclusive inter-process lock so two ``ensure`` calls do not start two servers."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def run_sync(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion from synchronous code.

    Works both from plain code and from inside a running event loop (e.g. a pytest-asyncio
    session fixture): there the coroutine runs on a fresh loop in a worker thread.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(factory())
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="localstack") as pool:
        return pool.submit(lambda: asyncio.run(factory())).result()
