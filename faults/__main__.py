"""`make faults`: break the pipeline on purpose and count what it lost, doubled or dead-lettered.

    python -m faults [--quick] [--only R4 R8 ...] [--orders N] [--rate RECORDS_PER_S] [--seed S]
    python -m faults --stop [--state-dir DIR --pg-port P --kafka-port K --controller-port C]

Starts a PRIVATE PostgreSQL and Kafka (state in .local/faults, ports 17432/17092/17093: outside the ephemeral range,
never the shared development stack), runs a fault-free control of the seeded load, then each experiment on the same
load, compares each with the control order by order (final states, postings, stock) and checks that every consumed
record has an inbox row or a dead letter (``karya audit completeness`` and the harness's own check). Prints a table
and, as the last stdout line, one JSON object. Exits 1 when any experiment failed (lost, doubled, left a gap, did not
drain or did not recover as it must). Everything is bounded and stops by itself; docs/operations.md explains it.
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import json
import logging
import os
import random
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from rich.console import Console
from rich.table import Table

from faults.experiments import EXPERIMENTS, QUICK, Ctx, Experiment
from faults.observe import Figures, Snapshot, compare, snapshot
from faults.pipeline import Run
from faults.stack import PrivateStack
from faults.toxiproxy import Toxiproxy, stop_recorded
from infra.environment import ROOT
from karya.processes import interrupt_on_sigterm
from sim.pipeline_env import PipelineEnv, Wire, encode_all, messages_for

console = Console(stderr=True, width=200)
WiresOf = Callable[[str], list[Wire]]
"""The run's load encoded for a topic prefix."""


def say(line: str) -> None:
    """Progress on stderr."""
    console.print(line, highlight=False, soft_wrap=True)


async def one_run(
    stack: PrivateStack, args: argparse.Namespace, stamp: str, exp: Experiment | None, wires_of: WiresOf
) -> tuple[Run, Snapshot, bool, dict[str, Any], int]:
    """Set up a fresh database and topics, run the load (and the experiment's faults), wait, read the end state."""
    code = exp.code.lower() if exp else "control"
    env = PipelineEnv(database=f"faults_{code}", prefix=f"faults{stamp}{code}.")
    await env.setup(args.orders)
    run = Run(code, env, stack.state_dir / "logs" / f"{stamp}-{code}", say)
    rng = random.Random(f"{args.seed}-{code}")
    cycles = (exp.quick_cycles if args.quick else exp.cycles) if exp else 0
    wires = wires_of(env.prefix)
    base, expected_dead = len(wires), 0
    if exp and exp.shape:
        wires, expected_dead = exp.shape(wires, rng, cycles)
    rate = args.rate * len(wires) / max(base, 1)  # a rewritten load takes as long as the plain one
    ctx = Ctx(run, stack, cycles, rng, say)
    proxy = None
    stop = asyncio.Event()
    started = time.monotonic()
    try:
        if exp and exp.via_proxy:
            proxy = ctx.proxy = await asyncio.to_thread(
                Toxiproxy.start, stack.pg_port, stack.kafka_port, stack.state_dir, run.log_dir, say
            )
            run.database_url = proxy.database_url(run.service_url)
            await asyncio.to_thread(stack.restart_kafka, proxy.kafka_listen)
        run.start("orders")
        run.start("ledger")
        await run.ready()
        supervisor = asyncio.create_task(run.supervise(stop))
        fault = asyncio.create_task(exp.fault(ctx)) if exp and exp.fault else None
        say(f"[bold]{exp.code if exp else 'control'}[/bold]: publishing {len(wires):,} records at {rate:.0f}/s")
        await run.publish(wires, rate)
        if fault is not None:
            try:
                await fault
            except Exception as exc:  # the experiment did not run as specified: reported, and it fails
                ctx.notes["fault_error"] = type(exc).__name__
                say(f"  the fault driver failed: {type(exc).__name__}: {exc}")
        drained = await run.wait_drained(timeout_s=args.drain_timeout)
        stop.set()
        await supervisor
        snap = await snapshot(run)
    finally:
        stop.set()
        run.stop_all()
        await _delete_topics(env)
        if proxy is not None:
            await asyncio.to_thread(stack.restart_kafka, None)
            proxy.stop()
    ctx.notes["seconds"] = round(time.monotonic() - started, 1)
    return run, snap, drained, ctx.notes, expected_dead


async def _delete_topics(env: PipelineEnv) -> None:
    try:
        await asyncio.wait_for(env.delete_topics(), 60)
    except Exception as exc:  # hygiene only: the private broker's topics go with its state directory
        say(f"  topics of {env.prefix} not deleted: {type(exc).__name__}")


def _table(rows: list[Figures]) -> None:
    table = Table(
        "experiment",
        "events in",
        "applied",
        "lost",
        "doubled",
        "dead-lettered",
        "completeness gaps",
        "verdict",
        "faults",
        title="karya fault experiments",
        title_justify="left",
    )
    for f in rows:
        faults = ", ".join(f"{k}={v}" for k, v in f.details.get("faults", {}).items() if k != "seconds")
        table.add_row(
            f.experiment,
            f"{f.events_in:,}",
            f"{f.applied:,}",
            str(f.lost),
            str(f.doubled),
            str(f.dead_lettered),
            str(f.completeness_gaps),
            f.verdict,
            faults,
        )
    console.print(table)


def _commit() -> str:
    """The commit the suite ran on (``FAULTS_COMMIT`` names it for a tree exported without ``.git``)."""
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    return done.stdout.strip() or os.environ.get("FAULTS_COMMIT", "unknown")


async def suite(args: argparse.Namespace) -> dict[str, Any]:
    """Start the private stack, run the control and the experiments, report."""
    stack = PrivateStack(Path(args.state_dir), args.pg_port, args.kafka_port, args.controller_port)
    wanted = [e for e in EXPERIMENTS if e.code in (args.only or (QUICK if args.quick else [e.code]))]
    say(f"private stack in {stack.state_dir} (PostgreSQL :{stack.pg_port}, Kafka :{stack.kafka_port})")
    stamp = str(int(time.time()))
    messages = messages_for(args.orders, args.seed, "f")
    rows: list[Figures] = []
    try:
        await asyncio.to_thread(stack.start, say)  # inside: what a failed start did start is stopped again
        _, control, drained, notes, _ = await one_run(stack, args, stamp, None, lambda p: encode_all(p, messages))
        if not drained:
            raise RuntimeError("the control run did not drain; nothing to compare with")
        say(
            f"  control: {len(control.orders):,} orders, {len(control.postings):,} postings,"
            f" {control.applied:,} inbox rows"
        )
        for exp in wanted:
            run, snap, drained, notes, dead = await one_run(stack, args, stamp, exp, lambda p: encode_all(p, messages))
            figures = compare(exp.code, control, snap, run, drained, dead)
            figures.details["faults"] = notes
            cycles = exp.quick_cycles if args.quick else exp.cycles
            if exp.every_cycle and notes.get(exp.every_cycle, 0) < cycles:
                figures.verdict = "FAIL"
                figures.details["failed_check"] = f"{exp.every_cycle} in {notes.get(exp.every_cycle, 0)} of {cycles}"
            if "fault_error" in notes:
                figures.verdict = "FAIL"
            rows.append(figures)
            say(f"  {exp.code}: {figures.as_json()}")
    finally:
        if not args.keep_stack:
            await asyncio.to_thread(stack.stop)
    _table(rows)
    return {
        "commit": _commit(),
        "orders": args.orders,
        "rate": args.rate,
        "seed": args.seed,
        "quick": args.quick,
        "control": {"orders": len(control.orders), "postings": len(control.postings), "applied": control.applied},
        "experiments": {f.experiment: f.as_json() for f in rows},
        "ok": all(f.verdict == "PASS" for f in rows),
    }


def _exclusive(state_dir: Path) -> TextIO:
    """One suite per private stack: a second one would reset the databases and stop the servers under the first."""
    state_dir.mkdir(parents=True, exist_ok=True)
    handle = (state_dir / "suite.lock").open("a")
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        sys.exit(f"another fault suite is running on {state_dir}; wait for it or pass another --state-dir and ports")
    return handle


def main() -> None:
    """Parse the options, run the suite, print the JSON line, exit 1 on any loss, doubling or gap."""
    parser = argparse.ArgumentParser(prog="python -m faults", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small load, one cycle of each experiment")
    parser.add_argument("--only", nargs="*", default=None, help="experiment codes, e.g. R4 R8")
    parser.add_argument("--orders", type=int, default=None, help="order lifecycles per run (default 2000; quick 200)")
    parser.add_argument("--rate", type=float, default=None, help="records/s offered (default 150; quick 60)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--drain-timeout", type=float, default=None, help="seconds to wait for the drain")
    parser.add_argument("--state-dir", default=str(ROOT / ".local" / "faults"))
    parser.add_argument("--pg-port", type=int, default=17432)
    parser.add_argument("--kafka-port", type=int, default=17092)
    parser.add_argument("--controller-port", type=int, default=17093)
    parser.add_argument("--keep-stack", action="store_true", help="leave the private stack running afterwards")
    parser.add_argument("--stop", action="store_true", help="only stop a private stack a killed suite left running")
    args = parser.parse_args()
    if args.stop:
        stop_recorded(Path(args.state_dir))
        PrivateStack(Path(args.state_dir), args.pg_port, args.kafka_port, args.controller_port).stop()
        return
    args.only = [c.upper() for c in args.only] if args.only else None
    unknown = sorted(set(args.only or ()) - {e.code for e in EXPERIMENTS})
    if unknown:
        parser.error(f"unknown experiment(s) {', '.join(unknown)}; known: {', '.join(e.code for e in EXPERIMENTS)}")
    args.orders = args.orders or (200 if args.quick else 2000)
    args.rate = args.rate or (60.0 if args.quick else 150.0)
    args.drain_timeout = args.drain_timeout or (90.0 if args.quick else 180.0)
    interrupt_on_sigterm()
    # the load's producer and the probes retry through every outage on purpose; their warnings are the experiment
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    started = time.monotonic()
    lock = _exclusive(Path(args.state_dir))
    try:
        result = asyncio.run(suite(args))
    finally:
        lock.close()
    result["seconds"] = round(time.monotonic() - started, 1)
    print(json.dumps(result), flush=True)
    sys.exit(0 if result["ok"] else 1)


if __name__ == "__main__":
    main()
