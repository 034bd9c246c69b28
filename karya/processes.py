"""Service processes started by the demo and the benchmark: recorded by pid, stopped by pid."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx


@dataclass
class ServiceProcess:
    """One child process with its log file and HTTP port."""

    name: str
    port: int
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        """The process id recorded at start."""
        return self.popen.pid


def free_port() -> int:
    """A free loopback port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_service(
    name: str, argv: list[str], env: dict[str, str], log_dir: Path, port: int | None = None
) -> ServiceProcess:
    """Start ``python -m <argv>`` detached from the terminal's signals, logging to ``log_dir/<name>.log``."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / f"{name}.log"
    port = port or free_port()
    with log.open("ab") as fh:
        popen = subprocess.Popen(
            [sys.executable, "-m", *argv, "--port", str(port)]
            if "--port" not in argv
            else [sys.executable, "-m", *argv],
            env={**os.environ, **env},
            stdout=fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    (log_dir / f"{name}.pid").write_text(str(popen.pid))
    return ServiceProcess(name, port, popen, log)


def stop_all(processes: list[ServiceProcess], grace_s: float = 15.0) -> None:
    """SIGTERM each recorded pid, wait, then SIGKILL what is left (by pid, never by name)."""
    for p in processes:
        if p.popen.poll() is None:
            p.popen.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for p in processes:
        try:
            p.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.popen.kill()
            p.popen.wait()


async def wait_until_ready(procs: list[ServiceProcess], timeout_s: float = 120) -> None:
    """Until every service answers /readyz with 200."""
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            dead = [p.name for p in procs if p.popen.poll() is not None]
            if dead:
                raise RuntimeError(f"service process(es) exited: {dead}; see their logs")
            try:
                codes = [(await client.get(f"http://127.0.0.1:{p.port}/readyz")).status_code for p in procs]
                if all(c == 200 for c in codes):
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.5)
    raise TimeoutError("services did not become ready; see their logs")


def interrupt_on_sigterm() -> None:
    """Treat SIGTERM (``kill PID``, a CI timeout, a supervisor) like Ctrl-C, so the caller's ``finally`` stops the
    service processes it started instead of leaving them running without a parent."""

    def _interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, _interrupt)
