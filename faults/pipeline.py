"""One run of the pipeline on the private stack: its database and topics, orders and ledger as processes (restarted
like a supervisor would when one exits), a paced load that survives broker outages, and the wait for the drain."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from sqlalchemy import text

from infra.db.engine import make_engine
from infra.messaging.relay import make_producer
from karya.demo_report import BrokerProbe, backlog
from karya.processes import ServiceProcess, start_service, stop_all, wait_until_ready
from sim.pipeline_env import PipelineEnv, Wire

INPUT_TOPICS = {
    "orders": ("marketplace.order-events", "ledger.order-events"),
    "ledger": ("orders.events", "marketplace.settlements"),
}
"""Each service's consumer and the base names of the topics it consumes (its consumer group is ``karya-<name>``)."""

Say = Callable[[str], None]
_SEEN = "SELECT (SELECT count(*) FROM orders.inbox) + (SELECT count(*) FROM ledger.inbox)"


@dataclass
class Run:
    """One experiment's (or the control's) pipeline: a database, a topic prefix and the service processes."""

    name: str
    env: PipelineEnv
    log_dir: Path
    say: Say
    database_url: str | None = None
    """What the services connect to (a fault proxy in front of PostgreSQL); default: the database itself."""
    procs: dict[str, ServiceProcess] = field(default_factory=dict)
    crashes: int = 0
    published: int = 0
    republished: int = 0

    @property
    def prefix(self) -> str:
        """The run's topic prefix."""
        return self.env.prefix

    @property
    def service_url(self) -> str:
        """The service role's URL on the run's database (direct, never through a proxy)."""
        return self.env.service_url

    def start(self, name: str) -> ServiceProcess:
        """Start one service process (``orders``, ``ledger``, ``orders-2``, ...) under its name."""
        service = name.split("-")[0]
        env = {
            "KARYA_TOPIC_PREFIX": self.prefix,
            "DATABASE_URL": self.database_url or self.service_url,
            "KARYA_LOG_LEVEL": "WARNING",
        }
        proc = start_service(name, ["karya.cli", "serve", service], env, self.log_dir)
        self.procs[name] = proc
        return proc

    def kill(self, name: str, sig: signal.Signals = signal.SIGKILL) -> None:
        """Signal one service process by its recorded pid and reap it (SIGKILL is immediate)."""
        proc = self.procs.pop(name)
        if proc.popen.poll() is None:
            proc.popen.send_signal(sig)
        proc.popen.wait()

    async def remove(self, name: str) -> None:
        """Stop one service process gracefully (SIGTERM, SIGKILL after the grace period)."""
        proc = self.procs.pop(name)
        await asyncio.to_thread(stop_all, [proc])

    async def ready(self, names: list[str] | None = None, timeout_s: float = 120) -> None:
        """Until the named (default: all) processes answer /readyz with 200."""
        procs = [p for n, p in self.procs.items() if names is None or n in names]
        await wait_until_ready(procs, timeout_s)

    async def supervise(self, stop: asyncio.Event) -> None:
        """Restart any service process that exited without the experiment stopping it (as systemd would)."""
        while not stop.is_set():
            for name, proc in list(self.procs.items()):
                if proc.popen.poll() is not None and self.procs.get(name) is proc:
                    self.crashes += 1
                    self.say(f"  {name} exited by itself (code {proc.popen.returncode}); restarting it")
                    self.start(name)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=1.0)

    def stop_all(self) -> None:
        """Stop every service process by pid."""
        stop_all(list(self.procs.values()))
        self.procs.clear()

    async def publish(self, wires: list[Wire], rate: float, on_progress: Callable[[int], None] | None = None) -> None:
        """Publish ``wires`` paced at ``rate`` records/s; a record whose send fails (the broker is down) is sent
        again until it is acknowledged, so every record reaches the broker at least once."""
        producer = await _started_producer(os.environ["KAFKA_BOOTSTRAP_SERVERS"])
        try:
            start = time.monotonic()
            window: list[tuple[Wire, asyncio.Future[object]]] = []
            for i, w in enumerate(wires):
                delay = start + i / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                window.append((w, await _send(producer, w)))
                if len(window) >= 200:
                    await self._settle(producer, window)
                    window = []
                    if on_progress is not None:
                        on_progress(i + 1)
            await self._settle(producer, window)
        finally:
            await producer.stop()
        self.published += len(wires)

    async def _settle(self, producer: AIOKafkaProducer, window: list[tuple[Wire, asyncio.Future[object]]]) -> None:
        pending = window
        while pending:
            failed: list[Wire] = []
            for w, fut in pending:
                try:
                    await fut
                except KafkaError:
                    failed.append(w)
            if not failed:
                return
            self.republished += len(failed)
            await asyncio.sleep(1.0)
            pending = [(w, await _send(producer, w)) for w in failed]

    async def wait_drained(self, timeout_s: float, stable_s: float = 4.0) -> bool:
        """Until the consumer groups have no lag, the outboxes are empty and the inbox counts stopped moving for
        ``stable_s``; False on timeout (e.g. a relay that died for good leaves its outbox full). A group that has not
        committed yet shows no lag, so nothing is drained before the first inbox row."""
        groups = [f"{self.prefix}karya-{g}" for g in INPUT_TOPICS]
        engine = make_engine(self.service_url, pool_size=1)
        deadline = time.monotonic() + timeout_s
        last: tuple[int, int, int] | None = None
        since = time.monotonic()
        try:
            async with BrokerProbe(os.environ["KAFKA_BOOTSTRAP_SERVERS"], self.prefix) as probe:
                while time.monotonic() < deadline:
                    try:
                        async with engine.connect() as conn:
                            seen = int((await conn.execute(text(_SEEN))).scalar_one())
                            pending = await backlog(conn)
                        _, lag = await probe.counts(groups)
                    except Exception:  # the stack may still be recovering; look again
                        await asyncio.sleep(1.0)
                        continue
                    state = (seen, lag, pending)
                    if state != last:
                        since, last = time.monotonic(), state
                    elif seen and lag == 0 and pending == 0 and time.monotonic() - since >= stable_s:
                        return True
                    await asyncio.sleep(1.0)
        finally:
            await engine.dispose()
        self.say(f"  not drained after {timeout_s:.0f} s (inbox rows, lag, outbox backlog = {last})")
        return False


async def _started_producer(bootstrap: str) -> AIOKafkaProducer:
    for _ in range(60):
        producer = make_producer(bootstrap, "karya-faults")
        try:
            await producer.start()
            return producer
        except KafkaError:
            with contextlib.suppress(Exception):
                await producer.stop()
            await asyncio.sleep(1.0)
    raise RuntimeError("the private broker did not accept a producer for 60 s")


async def _send(producer: AIOKafkaProducer, w: Wire) -> asyncio.Future[object]:
    while True:
        try:
            fut: asyncio.Future[object] = await producer.send(w.topic, w.value, key=w.key)
            return fut
        except KafkaError:
            await asyncio.sleep(1.0)
