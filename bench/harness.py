"""The pipeline under test: a fresh bench database (sim.pipeline_env), orders and ledger as separate processes,
timed runs."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
from aiokafka import AIOKafkaProducer
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from infra.db.engine import make_engine
from infra.db.roles import GATEWAY_URL_ENV
from infra.environment import state_dir
from infra.messaging.admin import read_to_end
from infra.messaging.partitioning import partition_for_key
from infra.messaging.relay import make_producer
from infra.messaging.topics import topic_name
from karya.demo_report import wait_pipeline_drained
from karya.processes import ServiceProcess, start_service, stop_all
from sim.pipeline_env import PipelineEnv, Wire

LOCK_HELD_ENV = "KARYA_BENCH_LOCK_HELD"
"""Set by a parent that already holds the run lock for this run (``python -m bench.compare``)."""


class BenchBusy(Exception):
    """Another benchmark holds the run lock."""


@contextlib.contextmanager
def run_lock(*, wait: bool) -> Iterator[None]:
    """Hold ``<state dir>/bench/run.lock`` for one benchmark: runs on one stack share the bench database name,
    and two at once would also share its CPU. Without ``wait``, raise :class:`BenchBusy` when it is taken."""
    path = state_dir() / "bench" / "run.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BenchBusy(f"another benchmark holds {path}; wait for it") from None
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


@dataclass
class Bench(PipelineEnv):
    """One benchmark environment: its database and topic prefix, and the service processes it started."""

    procs: list[ServiceProcess] = field(default_factory=list)

    def start(
        self,
        log_dir: Path,
        replicas: dict[str, int] | None = None,
        *,
        gateway: tuple[int, dict[str, str]] | None = None,
    ) -> None:
        """Start orders and ledger (``replicas`` processes each, default one), as in production; with ``gateway``
        (its port and environment: marketplace secrets and API URLs) also the HTTP gateway."""
        env = {"KARYA_TOPIC_PREFIX": self.prefix, "DATABASE_URL": self.service_url, "KARYA_LOG_LEVEL": "WARNING"}
        for service in ("orders", "ledger"):
            for n in range((replicas or {}).get(service, 1)):
                name = service if n == 0 else f"{service}-{n + 1}"
                self.procs.append(start_service(name, ["karya.cli", "serve", service], env, log_dir))
        if gateway is not None:
            port, extra = gateway
            cmd = ["karya.cli", "serve", "gateway"]
            own = {GATEWAY_URL_ENV: self.gateway_url}  # the gateway's own role (raw bodies are its alone)
            self.procs.append(start_service("gateway", cmd, env | extra | own, log_dir, port=port))

    def pids(self, service: str) -> list[int]:
        """Pids of every replica of ``service``."""
        return [p.pid for p in self.procs if p.name == service or p.name.startswith(f"{service}-")]

    def stop(self) -> None:
        """Stop the service processes by pid."""
        stop_all(self.procs)
        self.procs = []

    async def close(self) -> None:
        """Stop the services, then delete the run's topics."""
        self.stop()
        await self.delete_topics()


_TICK_S = 0.005


async def publish(wires: Sequence[Wire], rate: float | None = None) -> dict[str, float]:
    """Publish (paced at ``rate`` msgs/s if given); returns event_id → publish time (epoch seconds).

    Paced, the events that fell due since the last tick (at least ``_TICK_S`` apart) go out together, one record
    batch per partition: a sleep and a ``send`` per event cost the load generator about a third of a core at
    1,000/s, CPU the services under test then lacked on a 2-core box. An event's time is when its tick handed it to
    the producer, at most a tick after it was due."""
    producer = make_producer(os.environ["KAFKA_BOOTSTRAP_SERVERS"], "karya-bench")
    await producer.start()
    sent: dict[str, float] = {}
    try:
        if rate is None:
            futures = []
            for w in wires:
                sent[w.event_id] = time.time()
                futures.append(await producer.send(w.topic, w.value, key=w.key))
                if len(futures) >= 2000:
                    await asyncio.gather(*futures)
                    futures = []
            await asyncio.gather(*futures)
        else:
            await _paced(producer, wires, rate, sent)
    finally:
        await producer.stop()
    return sent


async def _paced(producer: AIOKafkaProducer, wires: Sequence[Wire], rate: float, sent: dict[str, float]) -> None:
    partitions: dict[str, int] = {}
    for topic in {w.topic for w in wires}:
        partitions[topic] = len(await producer.partitions_for(topic))
    start = time.time()
    futures: list[asyncio.Future[Any]] = []
    done = 0
    while done < len(wires):
        now = time.time()
        due = min(len(wires), int((now - start) * rate) + 1)
        if due > done:
            groups: dict[tuple[str, int], list[Wire]] = {}
            for w in wires[done:due]:
                sent[w.event_id] = now
                groups.setdefault((w.topic, partition_for_key(w.key, partitions[w.topic])), []).append(w)
            for (topic, partition), group in groups.items():
                batch = producer.create_batch()
                for w in group:
                    if batch.append(key=w.key, value=w.value, timestamp=None) is None:
                        futures.append(await producer.send_batch(batch, topic, partition=partition))
                        batch = producer.create_batch()
                        batch.append(key=w.key, value=w.value, timestamp=None)
                futures.append(await producer.send_batch(batch, topic, partition=partition))
            done = due
            if len(futures) >= 500:
                await asyncio.gather(*futures)
                futures = []
        await asyncio.sleep(max(_TICK_S, start + done / rate - time.time()))
    await asyncio.gather(*futures)


async def wait_drained(bench: Bench, expected_inbox: int, timeout_s: float) -> None:
    """Until both consumers saw everything, lag and outbox backlog are zero, and counts are stable."""
    last: deque[tuple[int, int, int]] = deque(maxlen=1)
    if not await wait_pipeline_drained(
        bench.service_url,
        bench.prefix,
        bench.procs,
        timeout_s,
        min_processed=expected_inbox,
        stable_s=0.5,
        poll_s=0.5,
        on_update=lambda *state: last.append(state),
    ):
        raise TimeoutError(f"not drained after {timeout_s}s (last: inbox, lag, outbox = {list(last)})")


@dataclass(frozen=True, slots=True)
class OrderEvent:
    """An event the orders service published: the marketplace event that caused it, and when the relay appended
    it to Kafka (the record's create time, epoch seconds)."""

    cause: str | None
    appended_at: float


async def order_events(prefix: str) -> dict[str, OrderEvent]:
    """Every event on the run's ``orders.events`` topic (read to its end), by event id: the ledger names an order
    event as a posting's source, the bench published the marketplace event that caused it."""
    events: dict[str, OrderEvent] = {}
    for record in await read_to_end(os.environ["KAFKA_BOOTSTRAP_SERVERS"], topic_name("orders.events", prefix)):
        envelope = json.loads(record.value or b"{}")
        cause = envelope.get("causation_id")
        events[str(envelope["event_id"])] = OrderEvent(None if cause is None else str(cause), record.timestamp / 1000)
    return events


def cpu_seconds(pids: dict[str, list[int]]) -> dict[str, float]:
    """user+system CPU seconds per named group of processes (children included for PostgreSQL)."""
    out: dict[str, float] = {}
    for name, group in pids.items():
        total = 0.0
        for pid in group:
            try:
                proc = psutil.Process(pid)
                procs = [proc, *proc.children(recursive=True)] if name == "postgres" else [proc]
                for p in procs:
                    t = p.cpu_times()
                    total += t.user + t.system
            except psutil.Error:
                continue
        out[name] = total
    return out


def stack_pids() -> dict[str, list[int]]:
    """Pids of the local broker and database (from the local stack's pid files)."""
    out: dict[str, list[int]] = {}
    for name, rel in (("kafka", "kafka/kafka.pid"), ("postgres", "postgres/data/postmaster.pid")):
        path = state_dir() / rel
        if path.exists():
            with contextlib.suppress(ValueError, IndexError):
                out[name] = [int(path.read_text().split()[0])]
    return out


async def tracks_commit_times(conn: AsyncConnection) -> bool:
    """Whether the server records commit times (the local stack sets ``track_commit_timestamp``)."""
    return bool((await conn.execute(text("SHOW track_commit_timestamp"))).scalar_one() == "on")


def commit_time_sql(tracked: bool, alias: str = "", fallback: str = "recorded_at") -> str:
    """SQL for when a row became durable: its transaction's commit time where the server tracks it, else the time
    stamped on the row before writing (``fallback``: a journal entry's ``recorded_at``, an inbox row's
    ``received_at``)."""
    p = f"{alias}." if alias else ""
    return f"coalesce(pg_xact_commit_timestamp({p}xmin), {p}{fallback})" if tracked else f"{p}{fallback}"


async def committed_at(bench: Bench, alias: str = "", fallback: str = "recorded_at") -> str:
    """:func:`commit_time_sql` for the bench database."""
    engine = make_engine(bench.service_url, pool_size=1)
    try:
        async with engine.connect() as c:
            tracked = await tracks_commit_times(c)
    finally:
        await engine.dispose()
    return commit_time_sql(tracked, alias, fallback)


def ledger_figures(counts: dict[str, int], ledger_cpu_s: float, ledger_s: float, replicas: int) -> dict[str, Any]:
    """The ledger's own figures (issue 19): Python CPU per journal line (all its processes' CPU over the lines they
    wrote), journal lines per second over the ledger's ``ledger_s`` seconds (in a pipeline run, from its first
    event received to its last entry committed), and how many ledger processes ran."""
    lines = counts.get("ledger.journal_lines", 0)
    return {
        "ledger_lines": lines,
        "ledger_cpu_us_per_line": round(ledger_cpu_s * 1e6 / lines, 1) if lines else None,
        "ledger_lines_per_s": round(lines / ledger_s, 1) if lines and ledger_s > 0 else None,
        "ledger_replicas": replicas,
    }
