"""The ledger-only run (issue 19): the ledger's whole input present at once, N ledger processes posting it.

1. **Input.** The orders stage runs to completion with no ledger process: a fresh bench database and prefix, the
   seeded load published (the order events, and the settlements the marketplace side sends straight to the
   ledger), the orders service alone until its consumer group has committed every order event and its outbox is
   empty. The run's ``orders.events`` and ``marketplace.settlements`` — the ledger's whole input — are read back
   into memory (about 1 KB a record) and the source topics deleted.
2. **Ledger runs.** For each run, a fresh bench database and prefix and ``replicas`` ledger processes in one
   consumer group, nothing else. Once the group is stable with every process assigned, the input is appended to
   its two topics record by record (same partition, key, value and headers), as fast as the producer goes. The
   run ends when the group has committed every input record.
3. **Window.** From the moment the whole input is on the broker to the last journal line committed: the lines
   and inbox rows (events posted) committed in it, and the ledger processes' CPU over it. ``steady``: the group
   was still stable with all its processes at the end (no rebalance moved partitions during the run).

Why join first: started on topics already full, the first process to join takes every partition (the broker
rebalances at once, ``group.initial.rebalance.delay.ms=0``) and posts until its batch ends and the group lets the
second one in — at 2,000 orders that was the whole run, so "two processes" measured one. Filling the topics after
the join keeps start-up and rebalancing out of the measure; the records posted while the copy ran (its first
second or so) are outside the window.

``scale_2x`` is the median rate of two processes over the median rate of one, runs interleaved (1, 2, then 2, 1…).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from rich.table import Table
from sqlalchemy import text

from bench.harness import Bench, cpu_seconds, ledger_figures, publish, stack_pids, tracks_commit_times
from infra.db.engine import make_engine
from infra.environment import state_dir
from infra.messaging.admin import partitions_of, read_to_end
from infra.messaging.relay import make_producer
from infra.messaging.topics import MARKETPLACE_ORDER_EVENTS, MARKETPLACE_SETTLEMENTS, ORDERS_EVENTS, topic_name
from karya.processes import wait_until_ready
from sim.pipeline_env import encoded_run

LEDGER_INPUT = (ORDERS_EVENTS, MARKETPLACE_SETTLEMENTS)
"""The topics the ledger consumes (``LedgerTopics.orders_events``, ``.settlements``), as base names."""

Input = dict[str, list[ConsumerRecord[bytes, bytes]]]
"""The ledger's input: base topic name → its records, each partition in offset order."""


def window_figures(
    *, replicas: int, lines: int, events: int, cpu_s: float, start: float, end: float, steady: bool
) -> dict[str, Any]:
    """One ledger-only run's figures over its window (epoch seconds ``start``..``end``): journal lines and events
    posted per second and the ledger's CPU per line, in the keys of the pipeline run's ledger figures."""
    seconds = end - start
    return {
        **ledger_figures({"ledger.journal_lines": lines}, cpu_s, seconds, replicas),
        "ledger_events": events,
        "ledger_events_per_s": round(events / seconds, 1) if events and seconds > 0 else None,
        "seconds": round(seconds, 2),
        "steady": steady,
    }


def scale_ratio(one: Sequence[float | None], two: Sequence[float | None]) -> float | None:
    """Median rate of the two-process runs over the median rate of the one-process runs (None if either side has
    no rate)."""
    a, b = _median(one), _median(two)
    return round(b / a, 3) if a and b else None


def summary_keys(result: dict[str, Any] | None) -> dict[str, Any]:
    """The ledger-only keys of the bench's last JSON line: ``scale_2x`` and, per process count, the median lines/s,
    events/s and CPU µs per line of its runs (``{"scale_2x": None}`` when no ledger-only run was made)."""
    if result is None:
        return {"scale_2x": None}
    by: dict[str, dict[str, float | None]] = {}
    for n in sorted({r["ledger_replicas"] for r in result["runs"]}):
        mine = [r for r in result["runs"] if r["ledger_replicas"] == n]
        by[str(n)] = {k: _median([r[k] for r in mine]) for k in _PER_PROCESSES}
    return {"scale_2x": result["scale_2x"], "ledger_only": {"orders": result["orders"], "by_processes": by}}


_PER_PROCESSES = ("ledger_lines_per_s", "ledger_events_per_s", "ledger_cpu_us_per_line")


def _median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(statistics.median(present), 1) if present else None


def interleaved(repeats: int) -> list[int]:
    """Ledger process counts in run order: 1, 2, then 2, 1, … so a drifting box favours neither side."""
    return [n for i in range(repeats) for n in ((1, 2) if i % 2 == 0 else (2, 1))]


class GroupWatch:
    """One consumer group over fixed input (its topics' end offsets are read by :meth:`read_ends` once the input
    is complete): its lag, and whether it is stable with every member assigned."""

    def __init__(self, group: str, topics: Sequence[str]) -> None:
        bootstrap = os.environ["KAFKA_BOOTSTRAP_SERVERS"]
        self._group = group
        self._topics = list(topics)
        self._admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        self._consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        self.ends: dict[TopicPartition, int] = {}

    async def __aenter__(self) -> GroupWatch:
        await self._admin.start()
        await self._consumer.start()
        return self

    async def read_ends(self) -> None:
        """Take the input topics' end offsets as the input the group must commit."""
        self.ends = await self._consumer.end_offsets(await partitions_of(self._consumer, self._topics))

    async def __aexit__(self, *exc: object) -> None:
        await self._consumer.stop()
        await self._admin.close()

    async def lag(self) -> int:
        """Input records the group has not committed (a partition it never committed counts whole)."""
        committed = await self._admin.list_consumer_group_offsets(self._group)
        return sum(max(0, end - (committed[tp].offset if tp in committed else 0)) for tp, end in self.ends.items())

    async def stable_members(self) -> int:
        """Members of the group when it is stable and every member has an assignment; 0 otherwise."""
        for response in await self._admin.describe_consumer_groups([self._group]):
            for group in response.groups:
                state, members = group[2], group[5]
                if state == "Stable" and members and all(m[4] for m in members):
                    return len(members)
        return 0


async def _wait_until_committed(bench: Bench, watch: GroupWatch, schema: str, timeout_s: float) -> None:
    """Until ``watch``'s group committed all its input and ``schema``'s outbox stayed empty for a second; the
    service processes must stay up."""
    engine = make_engine(bench.service_url, pool_size=1)
    deadline = time.monotonic() + timeout_s
    done_since: float | None = None
    try:
        while time.monotonic() < deadline:
            dead = [p.name for p in bench.procs if p.popen.poll() is not None]
            if dead:
                raise RuntimeError(f"service process(es) exited: {dead}; see their logs")
            async with engine.connect() as c:
                pending = int((await c.execute(text(f"SELECT count(*) FROM {schema}.outbox"))).scalar_one())
            if await watch.lag() == 0 and pending == 0:
                done_since = done_since or time.monotonic()
                if time.monotonic() - done_since >= 1.0:
                    return
            else:
                done_since = None
            await asyncio.sleep(0.2)
    finally:
        await engine.dispose()
    raise TimeoutError(f"{schema}: input not all committed after {timeout_s:.0f} s")


async def prefill(orders: int, seed: int, say: Callable[[str], None]) -> Input:
    """Run the orders stage alone over ``orders`` seeded order lifecycles; the ledger's input it left."""
    bench = Bench(database="karya_bench", prefix=f"bench{int(time.time())}src{orders}.")
    say(f"[bold]ledger-only[/bold], {orders:,} orders: filling the ledger's input (orders stage, no ledger)")
    await bench.setup(orders)
    bench.start(state_dir() / "bench" / bench.prefix.rstrip("."), {"orders": 1, "ledger": 0})
    try:
        await wait_until_ready(bench.procs)
        await publish(encoded_run(orders, seed, f"n{orders}-", bench.prefix).wires)
        source = [topic_name(MARKETPLACE_ORDER_EVENTS, bench.prefix)]
        async with GroupWatch(f"{bench.prefix}karya-orders", source) as watch:
            await watch.read_ends()
            await _wait_until_committed(bench, watch, "orders", timeout_s=max(120, orders / 50))
        bootstrap = os.environ["KAFKA_BOOTSTRAP_SERVERS"]
        return {base: await read_to_end(bootstrap, topic_name(base, bench.prefix)) for base in LEDGER_INPUT}
    finally:
        await bench.close()


async def _copy(records: Input, prefix: str) -> None:
    """Append the input to the run's topics, each record to its own partition number, and wait for the acks."""
    producer = make_producer(os.environ["KAFKA_BOOTSTRAP_SERVERS"], "karya-bench-prefill")
    await producer.start()
    try:
        futures = []
        for base, batch in records.items():
            topic = topic_name(base, prefix)
            for r in batch:
                futures.append(
                    await producer.send(topic, r.value, key=r.key, partition=r.partition, headers=list(r.headers))
                )
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def ledger_run(records: Input, orders: int, replicas: int, say: Callable[[str], None]) -> dict[str, Any]:
    """``replicas`` ledger processes over the input, on a fresh database and prefix; the run's figures (see the
    module docstring for the window)."""
    bench = Bench(database="karya_bench", prefix=f"bench{int(time.time())}led{replicas}n{orders}.")
    await bench.setup(orders)
    events = sum(len(batch) for batch in records.values())
    bench.start(state_dir() / "bench" / bench.prefix.rstrip("."), {"orders": 0, "ledger": replicas})
    pids = {"ledger": bench.pids("ledger"), **stack_pids()}
    try:
        await wait_until_ready(bench.procs)
        group = f"{bench.prefix}karya-ledger"
        async with GroupWatch(group, [topic_name(b, bench.prefix) for b in LEDGER_INPUT]) as watch:
            await _wait_until_joined(watch, replicas, timeout_s=60)
            say(f"ledger-only: {replicas} ledger process(es) joined; appending {events:,} input records")
            await _copy(records, bench.prefix)
            filled, cpu0, load1 = time.time(), cpu_seconds(pids), os.getloadavg()[0]
            await watch.read_ends()
            await _wait_until_committed(bench, watch, "ledger", timeout_s=max(120, events / 100))
            cpu1 = cpu_seconds(pids)
            steady = await watch.stable_members() == replicas
        result = await _measure(bench, replicas, filled, steady, cpu1["ledger"] - cpu0["ledger"])
        result["cpu_s"] = {k: round(cpu1.get(k, 0) - cpu0.get(k, 0), 1) for k in cpu1}
    finally:
        await bench.close()
    # The box's load when the window opened: runs of a shared 2-core machine are compared with it in view.
    return {"orders": orders, "input_records": events, "load1": round(load1, 2), **result}


async def _wait_until_joined(watch: GroupWatch, replicas: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while await watch.stable_members() != replicas:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the ledger group did not settle with {replicas} members in {timeout_s:.0f} s")
        await asyncio.sleep(0.2)


async def _measure(bench: Bench, replicas: int, start: float, steady: bool, cpu_s: float) -> dict[str, Any]:
    """The window's figures: lines and events committed from ``start`` (epoch seconds) to the last line."""
    engine = make_engine(bench.service_url, pool_size=1)
    since = "pg_xact_commit_timestamp(xmin) >= to_timestamp(:t)"
    counted = text(
        "SELECT (SELECT extract(epoch FROM max(pg_xact_commit_timestamp(xmin))) FROM ledger.journal_lines), "
        f"(SELECT count(*) FROM ledger.journal_lines WHERE {since}), "
        f"(SELECT count(*) FROM ledger.inbox WHERE {since}), "
        "(SELECT count(*) FROM ledger.journal_lines), (SELECT count(*) FROM ledger.inbox)"
    )
    try:
        async with engine.connect() as c:
            if not await tracks_commit_times(c):
                raise RuntimeError("the ledger-only run needs track_commit_timestamp (the local stack sets it)")
            last, lines, events, all_lines, all_events = (await c.execute(counted, {"t": start})).one()
    finally:
        await engine.dispose()
    end = float(last) if last is not None else start
    figures = window_figures(
        replicas=replicas, lines=int(lines), events=int(events), cpu_s=cpu_s, start=start, end=end, steady=steady
    )
    return {**figures, "all_lines": int(all_lines), "all_events": int(all_events)}


async def scale(orders: int, seed: int, repeats: int, say: Callable[[str], None]) -> dict[str, Any]:
    """Fill the input once, then ledger runs of one and two processes, interleaved; ``scale_2x`` and the runs."""
    records = await prefill(orders, seed, say)
    runs = [await ledger_run(records, orders, n, say) for n in interleaved(repeats)]
    rates = {n: [r["ledger_lines_per_s"] for r in runs if r["ledger_replicas"] == n] for n in (1, 2)}
    return {"orders": orders, "scale_2x": scale_ratio(rates[1], rates[2]), "runs": runs}


def scale_table(result: dict[str, Any]) -> Table:
    """The ledger-only runs, one row each, with ``scale_2x`` in the title."""
    table = Table(
        "processes",
        "window s",
        "lines",
        "lines/s",
        "events/s",
        "µs/line",
        "cpu s ledger/pg/kafka",
        "steady",
        title=f"ledger-only, {result['orders']:,} orders ({result['runs'][0]['input_records']:,} input records): "
        f"scale_2x = {result['scale_2x']}",
        title_justify="left",
    )
    for r in result["runs"]:
        cpu = r["cpu_s"]
        table.add_row(
            str(r["ledger_replicas"]),
            str(r["seconds"]),
            f"{r['ledger_lines']:,}",
            f"{r['ledger_lines_per_s']:,.0f}" if r["ledger_lines_per_s"] else "-",
            f"{r['ledger_events_per_s']:,.0f}" if r["ledger_events_per_s"] else "-",
            str(r["ledger_cpu_us_per_line"] or "-"),
            "/".join(str(cpu.get(k, "-")) for k in ("ledger", "postgres", "kafka")),
            "yes" if r["steady"] else "no",
        )
    return table
