"""`make bench`: end-to-end throughput and latency of the real pipeline, against the same-run ceiling.

    python -m bench [--orders N ...] [--offered 2000] [--latency-seconds 15] [--no-ceiling] [--via-gateway]
                    [--scale-orders 5000] [--scale-repeats 1] [--ledger-only]

For each size: a fresh bench database, orders and ledger as separate processes, N order lifecycles published
as fast as the producer goes; events/s from first publish to the last posting committed, per-stage rates and
CPU seconds per process. Then a paced run at the offered load for latency percentiles (publish → posting
committed), and the ceiling. Prints a table, writes bench/results/<timestamp>.json, and prints one JSON line.
``--via-gateway`` sends the load as signed webhooks through the HTTP gateway instead (see bench/gateway_mode.py).
Last, the ledger-only run of ``--scale-orders`` orders (bench/ledger_only.py: the ledger's input pre-filled, one
then two ledger processes) for ``scale_2x``; ``--ledger-only`` runs only that, once per ``--orders`` size.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import time
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.table import Table
from sqlalchemy import text

from bench.ceiling import run_ceiling, table_counts
from bench.gateway_mode import via_gateway
from bench.harness import (
    LOCK_HELD_ENV,
    Bench,
    BenchBusy,
    committed_at,
    cpu_seconds,
    ledger_figures,
    publish,
    run_lock,
    stack_pids,
    wait_drained,
)
from bench.latency import describe, latency
from bench.ledger_only import scale, scale_table, summary_keys
from infra.db.engine import make_engine
from infra.db.roles import passwords_from_env, role_urls
from infra.environment import ROOT, state_dir
from karya.processes import interrupt_on_sigterm, wait_until_ready
from sim.pipeline_env import encoded_run

console = Console(stderr=True)


RESULTS = ROOT / "bench" / "results"


async def _epoch(bench: Bench, sql: str) -> float:
    engine = make_engine(bench.service_url, pool_size=1)
    try:
        async with engine.connect() as c:
            value = (await c.execute(text(sql))).scalar_one()
    finally:
        await engine.dispose()
    return float(value.timestamp()) if value is not None else 0.0


async def throughput(orders: int, seed: int, with_ceiling: bool, replicas: dict[str, int]) -> dict[str, Any]:
    """One size: publish everything at once, wait for the drain, measure."""
    stamp = int(time.time())
    bench = Bench(database="karya_bench", prefix=f"bench{stamp}n{orders}.")
    console.print(f"[bold]{orders:,} orders[/bold]: preparing database and services")
    await bench.setup(orders)
    bench.start(state_dir() / "bench" / bench.prefix.rstrip("."), replicas)
    try:
        await wait_until_ready(bench.procs)
        run = encoded_run(orders, seed, f"n{orders}-", bench.prefix)
        wires, order_events = run.wires, run.order_events
        pids = {
            "orders": bench.pids("orders"),
            "ledger": bench.pids("ledger"),
            **stack_pids(),
            "load generator": [os.getpid()],
        }
        cpu0 = cpu_seconds(pids)
        t0 = time.time()
        await publish(wires)
        t_published = time.time()
        console.print(f"published {len(wires):,} events in {t_published - t0:.1f} s; waiting for the drain")
        await wait_drained(bench, order_events, timeout_s=max(120, orders / 50))
        cpu1 = cpu_seconds(pids)
        end = await _epoch(bench, f"SELECT max({await committed_at(bench)}) FROM ledger.journal_entries")
        o_first = await _epoch(bench, "SELECT min(received_at) FROM orders.inbox")
        o_last = await _epoch(bench, "SELECT max(received_at) FROM orders.inbox")
        l_first = await _epoch(bench, "SELECT min(received_at) FROM ledger.inbox")
        l_last = await _epoch(bench, "SELECT max(received_at) FROM ledger.inbox")
        engine = make_engine(bench.service_url, pool_size=1)
        counts = await table_counts(engine)
        await engine.dispose()
    finally:
        await bench.close()
    elapsed = end - t0
    result: dict[str, Any] = {
        "orders": orders,
        "events": len(wires),
        "elapsed_s": round(elapsed, 2),
        "events_per_s": round(len(wires) / elapsed, 1),
        "publish_per_s": round(len(wires) / (t_published - t0), 1),
        "orders_stage_events_per_s": round(counts["orders.inbox"] / max(o_last - o_first, 1e-3), 1),
        "ledger_stage_events_per_s": round(counts["ledger.inbox"] / max(l_last - l_first, 1e-3), 1),
        "cpu_s": {k: round(cpu1.get(k, 0) - cpu0.get(k, 0), 1) for k in cpu0},
        "rows": counts,
        **ledger_figures(counts, cpu1.get("ledger", 0) - cpu0.get("ledger", 0), end - l_first, replicas["ledger"]),
    }
    if with_ceiling:
        migrator = make_engine(role_urls(_admin(), passwords_from_env(), bench.database).migrator, pool_size=1)
        try:
            batches = max(1, len(wires) // 2000)
            ceiling_s = await run_ceiling(migrator, counts, batches)
        finally:
            await migrator.dispose()
        result["ceiling_events_per_s"] = round(len(wires) / ceiling_s, 1)
        result["ratio"] = round(result["events_per_s"] / result["ceiling_events_per_s"], 3)
    return result


def _commit() -> str:
    """The commit measured (with ``+`` when the working tree has changes), or ``unknown`` outside a checkout."""
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True)
    except OSError:
        return "unknown"
    if rev.returncode != 0:
        return "unknown"
    return rev.stdout.strip() + ("+" if dirty.stdout.strip() else "")


def _admin() -> str:
    import os

    return os.environ["KARYA_DB_ADMIN_URL"]


def _table(runs: list[dict[str, Any]], lat: dict[str, Any] | None) -> None:
    table = Table(
        "orders",
        "events",
        "events/s",
        "orders stage/s",
        "ledger stage/s",
        "ceiling/s",
        "ratio",
        "ledger µs/line",
        "ledger lines/s",
        "cpu s (orders/ledger/pg/kafka/loadgen)",
        title="karya pipeline benchmark",
        title_justify="left",
    )
    for r in runs:
        cpu = r["cpu_s"]
        table.add_row(
            f"{r['orders']:,}",
            f"{r['events']:,}",
            f"{r['events_per_s']:,.0f}",
            f"{r['orders_stage_events_per_s']:,.0f}",
            f"{r['ledger_stage_events_per_s']:,.0f}",
            f"{r.get('ceiling_events_per_s', 0):,.0f}",
            str(r.get("ratio", "-")),
            str(r.get("ledger_cpu_us_per_line", "-")),
            f"{r['ledger_lines_per_s']:,.0f}" if r.get("ledger_lines_per_s") else "-",
            "/".join(str(cpu.get(k, "-")) for k in ("orders", "ledger", "postgres", "kafka", "load generator")),
        )
    console.print(table)
    if lat:
        console.print(describe(lat))


def main() -> None:
    """Parse arguments, run the sizes and the latency run, report."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--orders", type=int, nargs="*", default=[10_000, 100_000], help="sizes (order lifecycles); 1000000 is opt-in"
    )
    parser.add_argument("--offered", type=float, default=2000.0, help="events/s for the latency run")
    parser.add_argument("--latency-seconds", type=float, default=15.0)
    parser.add_argument("--no-latency", action="store_true")
    parser.add_argument("--no-ceiling", action="store_true")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--ledger-replicas", type=int, default=1, help="ledger processes (one consumer group)")
    parser.add_argument("--orders-replicas", type=int, default=1, help="orders processes (one consumer group)")
    parser.add_argument(
        "--via-gateway",
        action="store_true",
        help="signed webhooks from the marketplace simulator through the HTTP gateway (no ceiling, no latency run)",
    )
    parser.add_argument(
        "--scale-orders",
        type=int,
        default=5000,
        help="orders of the ledger-only run for scale_2x after the sizes (0: skip it)",
    )
    parser.add_argument("--scale-repeats", type=int, default=1, help="interleaved one/two-process pairs of it")
    parser.add_argument(
        "--ledger-only",
        action="store_true",
        help="only the ledger-only run (input pre-filled, one then two ledger processes), once per --orders size",
    )
    args = parser.parse_args()
    replicas = {"orders": args.orders_replicas, "ledger": args.ledger_replicas}
    interrupt_on_sigterm()  # a killed bench still stops its services (each run's finally)
    if os.environ.get(LOCK_HELD_ENV):
        _run(args, replicas)
        return
    try:
        with run_lock(wait=False):
            _run(args, replicas)
    except BenchBusy as busy:
        raise SystemExit(str(busy)) from None


def _run(args: argparse.Namespace, replicas: dict[str, int]) -> None:
    runs: list[dict[str, Any]] = []
    lat = None
    if args.ledger_only:
        scaled = [asyncio.run(scale(n, args.seed, args.scale_repeats, console.print)) for n in args.orders]
    else:
        runs, lat = _pipeline_runs(args, replicas)
        with_scale = args.scale_orders > 0 and not args.via_gateway
        scaled = []
        if with_scale:
            scaled.append(asyncio.run(scale(args.scale_orders, args.seed, args.scale_repeats, console.print)))
    for result in scaled:
        console.print(scale_table(result))
    last_scale = scaled[-1] if scaled else None
    summary = {
        **(_summary(runs, lat) if runs else _ledger_only_summary(last_scale)),
        **summary_keys(last_scale),
        "processes": replicas,
        "commit": _commit(),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    report = {"summary": summary, "runs": runs, "latency": lat, "ledger_only": scaled}
    out.write_text(json.dumps(report, indent=2, default=str))
    console.print(f"results: {out.relative_to(ROOT)}")
    print(json.dumps(summary), flush=True)


def _pipeline_runs(args: argparse.Namespace, replicas: dict[str, int]) -> tuple[list[dict[str, Any]], Any]:
    """The sizes through the pipeline (direct or via the gateway) and the latency run."""
    if args.via_gateway:
        runs = [asyncio.run(via_gateway(n, args.seed, replicas, console.print)) for n in args.orders]
        for r in runs:
            console.print(
                f"{r['orders']:,} orders via the gateway: {r['webhooks_sent']:,} webhooks at {r['webhooks_per_s']}/s "
                f"({r['webhooks_rejected']} rejected, {r['unexpected_rejections']} unexpectedly), "
                f"{r['events']:,} events processed at {r['events_per_s']} events/s, "
                f"{r['unbalanced_entries']} unbalanced entries, {r['duplicate_postings']} duplicate postings; "
                f"CPU-s while sending: {r['cpu_s_sending']}"
            )
        return runs, None
    runs = [asyncio.run(throughput(n, args.seed, not args.no_ceiling, replicas)) for n in args.orders]
    lat = (
        None
        if args.no_latency
        else asyncio.run(latency(args.offered, args.latency_seconds, args.seed, replicas, console.print))
    )
    _table(runs, lat)
    return runs, lat


def _summary(runs: list[dict[str, Any]], lat: dict[str, Any] | None) -> dict[str, Any]:
    """The pipeline runs' keys of the last JSON line (the last size's figures)."""
    last = runs[-1]
    return {
        "orders": last["orders"],
        "events": last["events"],
        "events_per_s": last["events_per_s"],
        "ceiling_events_per_s": last.get("ceiling_events_per_s"),
        "ratio": last.get("ratio"),
        **(
            {k: lat[k] for k in ("p50_ms", "p95_ms", "p99_ms", "offered_per_s")}
            if lat
            else {"p50_ms": None, "p95_ms": None, "p99_ms": None, "offered_per_s": None}
        ),
        "by_size": {str(r["orders"]): r["events_per_s"] for r in runs},
        **{k: last.get(k) for k in ("ledger_cpu_us_per_line", "ledger_lines_per_s", "ledger_replicas")},
    }


def _ledger_only_summary(result: dict[str, Any] | None) -> dict[str, Any]:
    """With ``--ledger-only``: the same keys, the ledger's figures from its one-process ledger-only runs (medians);
    the pipeline's are None."""
    assert result is not None
    one = summary_keys(result)["ledger_only"]["by_processes"].get("1", {})
    return {
        "mode": "ledger-only",
        "orders": result["orders"],
        "events": result["runs"][0]["input_records"],
        **dict.fromkeys(("events_per_s", "ceiling_events_per_s", "ratio", "p50_ms", "p95_ms", "p99_ms")),
        "offered_per_s": None,
        "by_size": {},
        "ledger_cpu_us_per_line": one.get("ledger_cpu_us_per_line"),
        "ledger_lines_per_s": one.get("ledger_lines_per_s"),
        "ledger_replicas": 1,
    }


if __name__ == "__main__":
    main()
