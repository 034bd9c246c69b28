"""Toxiproxy (Shopify's TCP fault proxy, built from its Go module) in front of the private PostgreSQL and Kafka.

The binary is built once per machine with ``go install`` into the download cache
(``~/.cache/karya/bin/toxiproxy-server-<version>``; Go's module and build caches go under ``~/.cache/karya/go``, so
nothing lands in the repository). The harness starts ``toxiproxy-server`` on 127.0.0.1 on a free port, records its pid
under the private state directory, creates one proxy per server through the HTTP API and stops it by that pid.

The faults, through the API (toxics apply to every connection of a proxy, live and new):

- stall: a ``latency`` toxic on both directions as long as the stall, removed when it ends. Every byte is held and
  delivered afterwards, as behind a dead switch TCP retransmits. (The ``timeout`` toxic with timeout 0 is not a
  stall: it drops the bytes, which no TCP network does; the peers would see a corrupted stream.)
- reset: a ``reset_peer`` toxic (timeout 0) on both directions for two seconds: every connection that carries data
  meanwhile is cut on both sides, its unsent bytes discarded; every connection opened meanwhile is reset with a TCP
  RST at its first byte (Toxiproxy sets SO_LINGER 0, hence the RST, only on connections opened under the toxic; live
  ones see the cut as a close).
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy.engine import make_url

from infra.localstack._common import (
    LocalStackError,
    Progress,
    cache_root,
    file_lock,
    pid_alive,
    pid_cmdline,
    read_pid,
    reap,
    terminate_pid,
)

VERSION = "v2.12.0"
MODULE = "github.com/Shopify/toxiproxy/v2/cmd/server"
LOOPBACK = "127.0.0.1"
RESET_WINDOW_S = 2.0


def binary_path() -> Path:
    """Where the pinned toxiproxy-server lives on this machine."""
    return cache_root() / "bin" / f"toxiproxy-server-{VERSION.lstrip('v')}"


def ensure_binary(say: Progress) -> Path:
    """The pinned toxiproxy-server, built with ``go install`` into the per-machine cache when missing."""
    target = binary_path()
    if target.exists():
        return target
    go = shutil.which("go")
    if go is None:
        raise LocalStackError(
            f"toxiproxy-server is not in {target.parent} and `go` is not on PATH to build it; install Go (1.22+)"
            f" or put a toxiproxy-server {VERSION} binary at {target}"
        )
    gocache = cache_root() / "go"
    with file_lock(cache_root() / "toxiproxy-build.lock"):
        if target.exists():
            return target
        say(f"building toxiproxy-server {VERSION} with go install (once per machine, about a minute)")
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=target.parent) as gobin:
            env = {
                **os.environ,
                "GOBIN": gobin,
                "GOFLAGS": "-mod=mod",
                "GOPATH": str(gocache / "path"),
                "GOCACHE": str(gocache / "build"),
                "CGO_ENABLED": "0",
            }
            done = subprocess.run(
                [go, "install", f"{MODULE}@{VERSION}"],
                env=env,
                cwd=gobin,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                check=False,
            )
            built = Path(gobin) / "server"
            if done.returncode != 0 or not built.exists():
                raise LocalStackError(f"go install {MODULE}@{VERSION} failed:\n{done.stderr[-2000:]}")
            os.replace(built, target)
        say(f"toxiproxy-server {VERSION} built: {target}")
    return target


def _free_ports(count: int) -> list[int]:
    """``count`` distinct loopback ports nobody listens on, outside the ephemeral range (32768-60999): a client
    reconnecting to a port inside it can end up connected to itself."""
    rng = random.Random()
    ports: list[int] = []
    for _ in range(500):
        port = rng.randrange(20000, 30000)
        if port in ports:
            continue
        with socket.socket() as sock:
            try:
                sock.bind((LOOPBACK, port))
            except OSError:
                continue
        ports.append(port)
        if len(ports) == count:
            return ports
    raise RuntimeError("no free loopback ports in 20000-30000")


def _pid_file(state_dir: Path) -> Path:
    return state_dir / "toxiproxy" / "toxiproxy.pid"


def stop_recorded(state_dir: Path) -> None:
    """Stop a toxiproxy-server a killed suite left running, by the pid recorded under ``state_dir``."""
    pid_file = _pid_file(state_dir)
    pid = read_pid(pid_file)
    if pid is not None:
        reap(pid)
        argv = pid_cmdline(pid)
        if pid_alive(pid) and argv and argv[0] == str(binary_path()):
            terminate_pid(pid, grace_seconds=5, progress=lambda _line: None)
    pid_file.unlink(missing_ok=True)


@dataclass
class Toxiproxy:
    """A running toxiproxy-server with a ``postgres`` and a ``kafka`` proxy in front of the private servers."""

    popen: subprocess.Popen[bytes]
    api: str
    pg_listen: int
    kafka_listen: int
    state_dir: Path

    @classmethod
    def start(cls, pg_port: int, kafka_port: int, state_dir: Path, log_dir: Path, say: Progress) -> Toxiproxy:
        """Start the server on a free port and create the two proxies on free ports of their own."""
        binary = ensure_binary(say)
        stop_recorded(state_dir)
        api_port, pg_listen, kafka_listen = _free_ports(3)
        log_dir.mkdir(parents=True, exist_ok=True)
        with (log_dir / "toxiproxy.log").open("ab") as log:
            popen = subprocess.Popen(
                [str(binary), "--host", LOOPBACK, "--port", str(api_port)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "LOG_LEVEL": "info"},
                start_new_session=True,
            )
        pid_file = _pid_file(state_dir)
        pid_file.parent.mkdir(parents=True, exist_ok=True)
        pid_file.write_text(f"{popen.pid}\n")
        proxy = cls(popen, f"http://{LOOPBACK}:{api_port}", pg_listen, kafka_listen, state_dir)
        try:
            proxy._wait_ready(log_dir / "toxiproxy.log")
            proxy._create("postgres", pg_listen, pg_port)
            proxy._create("kafka", kafka_listen, kafka_port)
        except BaseException:
            proxy.stop()
            raise
        return proxy

    def _wait_ready(self, log: Path) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                break
            try:
                if httpx.get(f"{self.api}/version", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"toxiproxy-server did not start; see {log}")

    def _create(self, name: str, listen: int, upstream: int) -> None:
        body = {"name": name, "listen": f"{LOOPBACK}:{listen}", "upstream": f"{LOOPBACK}:{upstream}", "enabled": True}
        httpx.post(f"{self.api}/proxies", json=body, timeout=10).raise_for_status()

    def database_url(self, url: str) -> str:
        """``url`` with its port replaced by the PostgreSQL proxy's."""
        return make_url(url).set(port=self.pg_listen).render_as_string(hide_password=False)

    async def _toxics(self, proxy: str, kind: str, attributes: dict[str, int]) -> list[str]:
        """Add a ``kind`` toxic on both directions of ``proxy``; returns the toxics' names."""
        names = []
        async with httpx.AsyncClient(base_url=self.api, timeout=10) as client:
            for stream in ("upstream", "downstream"):
                name = f"{kind}_{stream}"
                body = {"name": name, "type": kind, "stream": stream, "toxicity": 1.0, "attributes": attributes}
                (await client.post(f"/proxies/{proxy}/toxics", json=body)).raise_for_status()
                names.append(name)
        return names

    async def _remove(self, proxy: str, names: list[str]) -> None:
        async with httpx.AsyncClient(base_url=self.api, timeout=10) as client:
            for name in names:
                (await client.delete(f"/proxies/{proxy}/toxics/{name}")).raise_for_status()

    async def stall(self, proxy: str, seconds: float) -> None:
        """Hold every byte of ``proxy`` (both directions, live and new connections) for ``seconds``."""
        names = await self._toxics(proxy, "latency", {"latency": int(seconds * 1000) + 1000, "jitter": 0})
        try:
            await asyncio.sleep(seconds)
        finally:
            await self._remove(proxy, names)

    async def reset(self, proxy: str) -> None:
        """Cut every connection of ``proxy`` that carries data, and RST every one that opens, for two seconds."""
        names = await self._toxics(proxy, "reset_peer", {"timeout": 0})
        try:
            await asyncio.sleep(RESET_WINDOW_S)
        finally:
            await self._remove(proxy, names)

    def stop(self) -> None:
        """Stop the server by its pid."""
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        _pid_file(self.state_dir).unlink(missing_ok=True)
