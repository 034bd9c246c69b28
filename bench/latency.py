"""The paced latency run: publish → posting committed at a fixed offered load, and where the time goes.

A sale's completion crosses three hops before the ledger posts it, and the run reports each one's percentiles,
so a slow pipeline says which stage to look at:

- ``orders``: published → the orders transaction that applied the marketplace event committed;
- ``relay``: that commit → the relay appended the resulting ``orders.events`` record to Kafka (its create time);
- ``ledger``: that record → the ledger transaction that posted the completion committed.

Settlements go straight to the ledger, but one that arrives before its completion waits (parked) for it, so
their latency is reported only in the total.

The total is also reported per second of publishing (``by_second``): on a shared box a p99 is often set by a few
slow seconds (a warm-up, a neighbour's burst), and the series tells that apart from a pipeline slow throughout.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import text

from bench.harness import (
    Bench,
    commit_time_sql,
    order_events,
    publish,
    tracks_commit_times,
    wait_drained,
)
from infra.db.engine import make_engine
from infra.environment import state_dir
from karya.processes import wait_until_ready
from sim.pipeline_env import encode_all, messages_for

HOPS = ("orders", "relay", "ledger")


def percentiles(samples_ms: Sequence[float]) -> dict[str, float]:
    """p50/p95/p99 in ms (inclusive method; zeros when there are fewer than two samples)."""
    q = statistics.quantiles(samples_ms, n=100, method="inclusive") if len(samples_ms) >= 2 else [0.0] * 99
    return {"p50_ms": round(q[49], 1), "p95_ms": round(q[94], 1), "p99_ms": round(q[98], 1)}


def by_second(samples: Sequence[tuple[float, float]]) -> list[dict[str, float]]:
    """Per second of publishing (from the first sample's publish time): postings, p50 and max of the latency.

    ``samples`` are (published at, seconds since the epoch; latency in ms). Seconds with no sample are left out."""
    if not samples:
        return []
    start = min(at for at, _ in samples)
    buckets: dict[int, list[float]] = {}
    for at, ms in samples:
        buckets.setdefault(int(at - start), []).append(ms)
    rows = []
    for second in sorted(buckets):
        values = sorted(buckets[second])
        rows.append(
            {
                "second": second,
                "postings": len(values),
                "p50_ms": round(statistics.median(values), 1),
                "max_ms": round(values[-1], 1),
            }
        )
    return rows


async def latency(
    offered: float, seconds: float, seed: int, replicas: dict[str, int], say: Callable[[str], None]
) -> dict[str, Any]:
    """Publish ~``seconds`` of order lifecycles paced at ``offered`` events/s; latency percentiles, total and
    per hop (see the module docstring)."""
    stamp = int(time.time())
    orders = max(50, int(offered * seconds / 4.7))
    bench = Bench(database="karya_bench", prefix=f"bench{stamp}lat.")
    say(f"[bold]latency[/bold] at {offered:,.0f} events/s offered for ~{seconds:.0f} s")
    await bench.setup(orders)
    bench.start(state_dir() / "bench" / bench.prefix.rstrip("."), replicas)
    try:
        await wait_until_ready(bench.procs)
        messages = messages_for(orders, seed + 1, "lat-")
        sent = await publish(encode_all(bench.prefix, messages), rate=offered)
        order_event_count = sum(1 for m in messages if m.topic == "marketplace.order-events")
        await wait_drained(bench, order_event_count, timeout_s=300)
        engine = make_engine(bench.service_url, pool_size=1)
        async with engine.connect() as c:
            tracked = await tracks_commit_times(c)
            posted_at = commit_time_sql(tracked, "e")
            applied_at = commit_time_sql(tracked, "i", fallback="received_at")
            postings = (
                await c.execute(
                    text(
                        f"SELECT extract(epoch FROM {posted_at})::float8 AS at, e.source_event::text AS source, "
                        "e.kind FROM ledger.journal_entries e WHERE e.kind IN ('sale_completed', 'settlement')"
                    )
                )
            ).all()
            inbox = await c.execute(
                text(f"SELECT i.event_id::text, extract(epoch FROM {applied_at})::float8 FROM orders.inbox i")
            )
            applied: dict[str, float] = {event_id: at for event_id, at in inbox.tuples()}
        await engine.dispose()
        published = await order_events(bench.prefix)
    finally:
        await bench.close()
    total: list[tuple[float, float]] = []
    hops: dict[str, list[tuple[float, float]]] = {hop: [] for hop in HOPS}
    for at, source, kind in postings:
        if kind == "settlement":
            if (t0 := sent.get(source)) is not None:
                total.append((t0, (at - t0) * 1000))
            continue
        event = published.get(source)
        if event is None or event.cause is None or (t0 := sent.get(event.cause)) is None:
            continue
        total.append((t0, (at - t0) * 1000))
        if (t1 := applied.get(event.cause)) is not None:
            hops["orders"].append((t0, (t1 - t0) * 1000))
            hops["relay"].append((t0, (event.appended_at - t1) * 1000))
            hops["ledger"].append((t0, (at - event.appended_at) * 1000))
    return {
        "offered_per_s": offered,
        "latency_samples": len(total),
        **percentiles(sorted(ms for _, ms in total)),
        "completion_hops": {hop: percentiles(sorted(ms for _, ms in samples)) for hop, samples in hops.items()},
        "by_second": by_second(total),
        "completion_hops_by_second": {hop: by_second(samples) for hop, samples in hops.items()},
    }


def describe(lat: dict[str, Any]) -> str:
    """One paragraph for the console."""
    hops = ", ".join(
        f"{hop} p50 {h['p50_ms']:,.0f} / p99 {h['p99_ms']:,.0f} ms" for hop, h in lat["completion_hops"].items()
    )
    seconds = lat.get("by_second") or []
    slowest = max(seconds, key=lambda row: row["p50_ms"], default=None)
    worst = (
        f"; slowest second {slowest['second']} of {len(seconds)}: p50 {slowest['p50_ms']:,.0f} / max "
        f"{slowest['max_ms']:,.0f} ms (per-second series in the results file)"
        if slowest
        else ""
    )
    return (
        f"latency at {lat['offered_per_s']:,.0f} events/s offered: p50 {lat['p50_ms']} ms, "
        f"p95 {lat['p95_ms']} ms, p99 {lat['p99_ms']} ms ({lat['latency_samples']} postings); "
        f"a completion's hops: {hops}{worst}"
    )
