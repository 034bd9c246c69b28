"""A small TCP fault proxy (asyncio): forwards loopback connections and, on command, stalls or resets them.

    python -m faults.proxy --control PORT --route NAME=LISTEN_PORT:TARGET_PORT [--route ...]

Used instead of Toxiproxy, whose Go module is not among the packages this machine can install (the harness stays
pure Python). Commands, one line each on the control port, answered by ``ok`` or ``error ...``:

- ``stall NAME SECONDS``: no byte moves in either direction on any connection of the route (live or new) for that
  long; the peers see a silent network, as behind a dead switch;
- ``reset NAME``: every live connection of the route is closed with a TCP RST on both sides.

Only 127.0.0.1 is ever listened on or connected to. The harness starts it as a child and stops it by its pid.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import socket
import struct
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import make_url

LOOPBACK = "127.0.0.1"


@dataclass
class Route:
    """One listening port forwarded to one target port, with its live connections."""

    name: str
    listen: int
    target: int
    resume_at: float = 0.0
    live: set[asyncio.StreamWriter] = field(default_factory=set)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Forward one client connection to the target until either side ends (or a reset)."""
        await self._wait_unstalled()
        try:
            up_reader, up_writer = await asyncio.open_connection(LOOPBACK, self.target)
        except OSError:
            _abort(writer)
            return
        self.live |= {writer, up_writer}
        pipes = [asyncio.create_task(self._pipe(reader, up_writer)), asyncio.create_task(self._pipe(up_reader, writer))]
        try:
            await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in pipes:
                task.cancel()
            for w in (writer, up_writer):
                self.live.discard(w)
                with contextlib.suppress(Exception):
                    w.close()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, ConnectionError):
            while data := await reader.read(65536):
                await self._wait_unstalled()
                writer.write(data)
                await writer.drain()

    async def _wait_unstalled(self) -> None:
        for _ in range(1000):  # a stall can be extended while it lasts
            left = self.resume_at - time.monotonic()
            if left <= 0:
                return
            await asyncio.sleep(left)

    def stall(self, seconds: float) -> None:
        """Hold every byte of the route for ``seconds``."""
        self.resume_at = max(self.resume_at, time.monotonic() + seconds)

    def reset(self) -> int:
        """RST every live connection of the route; returns how many sockets were reset."""
        doomed = list(self.live)
        self.live.clear()
        for w in doomed:
            _abort(w)
        return len(doomed)


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


def _abort(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def serve(routes: dict[str, Route], control: int) -> None:
    """Listen on every route and on the control port until killed."""
    servers = [await asyncio.start_server(r.handle, LOOPBACK, r.listen) for r in routes.values()]

    async def command(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        words = (await reader.readline()).decode().split()
        reply = "error: expected 'stall NAME SECONDS' or 'reset NAME'"
        if len(words) >= 2 and words[1] in routes:
            route = routes[words[1]]
            if words[0] == "stall" and len(words) == 3:
                route.stall(float(words[2]))
                reply = "ok"
            elif words[0] == "reset":
                reply = f"ok {route.reset()}"
        writer.write(f"{reply}\n".encode())
        await writer.drain()
        writer.close()

    servers.append(await asyncio.start_server(command, LOOPBACK, control))
    await asyncio.gather(*(s.serve_forever() for s in servers))


@dataclass
class ProxyProcess:
    """The proxy as a child process of the harness, in front of the private PostgreSQL and Kafka."""

    popen: subprocess.Popen[bytes]
    pg_listen: int
    kafka_listen: int
    control: int

    @classmethod
    def start(cls, pg_port: int, kafka_port: int, log_dir: Path) -> ProxyProcess:
        """Start the proxy on three free ports: one forwarding to PostgreSQL, one to Kafka, one for commands."""
        listen, kafka_listen, control = _free_ports(3)
        routes = ["--route", f"postgres={listen}:{pg_port}", "--route", f"kafka={kafka_listen}:{kafka_port}"]
        log_dir.mkdir(parents=True, exist_ok=True)
        with (log_dir / "proxy.log").open("ab") as log:
            popen = subprocess.Popen(
                [sys.executable, "-m", "faults.proxy", "--control", str(control), *routes],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection((LOOPBACK, control), timeout=1):
                return cls(popen, listen, kafka_listen, control)
            if popen.poll() is not None:
                break
            time.sleep(0.1)
        popen.kill()
        raise RuntimeError(f"the fault proxy did not start; see {log_dir / 'proxy.log'}")

    def database_url(self, url: str) -> str:
        """``url`` with its port replaced by the proxy's."""
        return make_url(url).set(port=self.pg_listen).render_as_string(hide_password=False)

    async def command(self, line: str) -> str:
        """Send one command; returns the proxy's answer."""
        reader, writer = await asyncio.open_connection(LOOPBACK, self.control)
        writer.write(f"{line}\n".encode())
        await writer.drain()
        answer = (await reader.readline()).decode().strip()
        writer.close()
        if not answer.startswith("ok"):
            raise RuntimeError(f"fault proxy refused {line!r}: {answer}")
        return answer

    def stop(self) -> None:
        """Stop the proxy by its pid."""
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


def main() -> None:
    """Parse the routes and serve until terminated."""
    parser = argparse.ArgumentParser(prog="python -m faults.proxy", description=__doc__.split("\n\n")[0])
    parser.add_argument("--control", type=int, required=True)
    parser.add_argument("--route", action="append", required=True, help="NAME=LISTEN_PORT:TARGET_PORT")
    args = parser.parse_args()
    routes: dict[str, Route] = {}
    for spec in args.route:
        name, ports = spec.split("=", 1)
        listen, target = (int(p) for p in ports.split(":", 1))
        routes[name] = Route(name, listen, target)
    asyncio.run(serve(routes, args.control))


if __name__ == "__main__":
    main()
