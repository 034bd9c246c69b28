"""Interleaved A/B of ``make bench`` between two commits: A B A B ... on the same stack, one run at a time.

    python -m bench.compare REV_A REV_B [--pairs 3] [-- BENCH_ARGS]   (default: --orders 10000 --no-latency
    --no-ceiling)

Each commit is checked out once in a detached git worktree (``$TMPDIR/karya-bench-trees/<commit>``) and benchmarked with
its own code: this interpreter (the project's venv) with ``PYTHONPATH`` and working directory set to that tree, so
``python -m bench`` and the service processes it starts import the tree's packages, not the editable install (each
run records which ``services`` package it imported). Runs hold ``<state dir>/bench/run.lock``, the lock a plain
``python -m bench`` takes, so two runs never share the stack, the bench database or the broker's CPU. Interleaving
spreads slow drifts of a shared machine over both sides; the per-pair ratio B/A compares runs made minutes apart.
Prints one line per run, the medians and spreads, and, last on stdout, one JSON object; the runs and that summary
are kept in ``bench/results/compare-<time>.json`` (rewritten after each run, so a stopped comparison keeps its runs).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.harness import run_lock
from infra.environment import ROOT, state_dir

DEFAULT_ARGS = ["--orders", "10000", "--no-latency", "--no-ceiling"]
_RESULTS_LINE = re.compile(r"results: (\S+\.json)")


def worktree(rev: str) -> Path:
    """A detached worktree of ``rev`` (reused when it already exists at that commit)."""
    commit = _git("rev-parse", "--verify", f"{rev}^{{commit}}")
    path = Path(tempfile.gettempdir()) / "karya-bench-trees" / commit[:12]
    if not (path / ".git").exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        _git("worktree", "add", "--detach", str(path), commit)
    return path


def tree_args(tree: Path, bench_args: list[str]) -> list[str]:
    """``bench_args`` for the bench of ``tree``: with ``--scale-orders 0`` where that bench has the flag and the
    arguments do not set it, so that a comparison of pipeline runs does not also run the ledger-only runs on the side
    whose bench would (its figures are not compared, and minutes of it between pairs only widen the drift)."""
    if "--scale-orders" in bench_args or "--scale-orders" not in (tree / "bench" / "__main__.py").read_text():
        return bench_args
    return [*bench_args, "--scale-orders", "0"]


def one_run(tree: Path, bench_args: list[str]) -> dict[str, Any]:
    """``python -m bench`` in ``tree`` under the run lock; its summary, CPU seconds and what it imported."""
    env = {**os.environ, "PYTHONPATH": str(tree), "KARYA_STATE_DIR": str(state_dir())}
    python = [sys.executable, "-c", "import services; print(services.__file__)"]
    imported = subprocess.run(python, cwd=tree, env=env, capture_output=True, text=True, check=True).stdout.strip()
    with run_lock(wait=True):
        started = time.time()
        done = subprocess.run(
            [sys.executable, "-m", "bench", *tree_args(tree, bench_args)],
            cwd=tree,
            env=env | {"KARYA_BENCH_LOCK_HELD": "1"},
            capture_output=True,
            text=True,
        )
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"bench failed in {tree} (exit {done.returncode}): {done.stderr[-2000:]}")
    summary = json.loads(lines[-1])
    cpu: dict[str, float] = {}
    if found := _RESULTS_LINE.findall(done.stderr):
        with suppress(OSError, KeyError, IndexError, ValueError):
            cpu = json.loads((tree / found[-1]).read_text())["runs"][-1]["cpu_s"]
    return {
        "commit": _git("-C", str(tree), "rev-parse", "--short", "HEAD"),
        "imported": imported,
        "started": datetime.fromtimestamp(started, UTC).isoformat(timespec="seconds"),
        "seconds": round(time.time() - started, 1),
        "load1": os.getloadavg()[0],
        "events_per_s": summary["events_per_s"],
        "cpu_s": cpu,
        "summary": summary,
    }


def spread(values: list[float]) -> dict[str, float]:
    """Median, min, max and (max - min) / median in percent."""
    median = statistics.median(values)
    return {
        "median": round(median, 1),
        "min": min(values),
        "max": max(values),
        "spread_pct": round((max(values) - min(values)) / median * 100, 1),
    }


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per side: events/s and orders/ledger CPU seconds; per pair: the ratio B/A of events/s."""
    out: dict[str, Any] = {}
    for side in ("A", "B"):
        mine = [r for r in runs if r["side"] == side]
        out[side] = {
            "commit": mine[0]["commit"],
            "events_per_s": spread([r["events_per_s"] for r in mine]),
            **{
                f"cpu_s_{p}": spread([r["cpu_s"][p] for r in mine])
                for p in ("orders", "ledger")
                if all(p in r["cpu_s"] for r in mine)
            },
        }
    ratios = [b["events_per_s"] / a["events_per_s"] for a, b in zip(runs[::2], runs[1::2], strict=True)]
    out["median_b_over_a"] = round(out["B"]["events_per_s"]["median"] / out["A"]["events_per_s"]["median"], 3)
    out["pair_ratios"] = [round(r, 3) for r in ratios]
    out["pair_ratio_median"] = round(statistics.median(ratios), 3)
    return out


def main() -> None:
    """Parse arguments, run the pairs, report."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.compare", description=__doc__.split("\n\n")[0], epilog="-- BENCH_ARGS: to python -m bench"
    )
    parser.add_argument("rev_a")
    parser.add_argument("rev_b")
    parser.add_argument("--pairs", type=int, default=3)
    argv = sys.argv[1:]
    split = argv.index("--") if "--" in argv else len(argv)  # what follows -- goes to python -m bench
    args = parser.parse_args(argv[:split])
    bench_args = argv[split + 1 :] or DEFAULT_ARGS
    if "--ledger-only" in bench_args:
        # Its runs have no end-to-end rate to pair up; it would fail after the first run.
        parser.error("--ledger-only runs are not compared here: run `python -m bench --ledger-only` on each commit")
    trees = {"A": worktree(args.rev_a), "B": worktree(args.rev_b)}
    out = ROOT / "bench" / "results" / f"compare-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    runs: list[dict[str, Any]] = []
    for pair in range(1, args.pairs + 1):
        for side, tree in trees.items():
            run = {"pair": pair, "side": side, **one_run(tree, bench_args)}
            runs.append(run)
            out.write_text(json.dumps({"bench_args": bench_args, "runs": runs}, indent=1))
            print(
                f"{pair}{side} {run['commit']} {run['events_per_s']:>8,.0f} events/s  cpu orders/ledger "
                f"{run['cpu_s'].get('orders', '-')}/{run['cpu_s'].get('ledger', '-')} s  load {run['load1']:.1f}  "
                f"({run['imported']})",
                file=sys.stderr,
                flush=True,
            )
    result = summarise(runs)
    out.write_text(json.dumps({"bench_args": bench_args, "runs": runs, "summary": result}, indent=1))
    for side in ("A", "B"):
        s = result[side]["events_per_s"]
        print(
            f"{side} {result[side]['commit']}: median {s['median']:,.0f} events/s "
            f"(min {s['min']:,.0f}, max {s['max']:,.0f}, spread {s['spread_pct']}%)",
            file=sys.stderr,
        )
    print(f"B/A of the medians {result['median_b_over_a']}, per pair {result['pair_ratios']}", file=sys.stderr)
    print(f"runs: {out}", file=sys.stderr)
    print(json.dumps(result), flush=True)


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()


if __name__ == "__main__":
    main()
