"""`make faults --quick` as a test: every experiment with one cycle (two where they alternate between targets) on a
small load — duplicates, kill -9 of the consumers, a PostgreSQL immediate stop, a broker SIGKILL, network stalls and
resets through Toxiproxy, poison on every input, rebalances, relay and database connections killed — each
compared with a fault-free control run of the same seed, order by order, and audited for completeness.

The suite starts a PostgreSQL and a Kafka of its own (state in a fresh ``.local/faults-quick-*`` directory, deleted
afterwards; free loopback ports outside the ephemeral range), because it stops and kills them; the shared stack the
other tests use is never touched. Its last stdout line is one JSON object of figures per experiment; the suite runs
once for the module (about 5 minutes).
"""

from __future__ import annotations

import contextlib
import json
import random
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1200)]
ROOT = Path(__file__).resolve().parents[2]
CLEAN = {"lost": 0, "doubled": 0, "completeness_gaps": 0, "audit_gaps": 0, "stock_batches_differ": 0, "drained": True}


def _free_ports(count: int) -> list[int]:
    """``count`` consecutive loopback ports nobody listens on, outside the ephemeral range (32768-60999), so a
    suite running at the same time elsewhere (another clone, CI) does not collide with this one."""
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(20000, 30000)
        try:
            with contextlib.ExitStack() as stack:
                for port in range(base, base + count):
                    sock = stack.enter_context(socket.socket())
                    sock.bind(("127.0.0.1", port))
            return list(range(base, base + count))
        except OSError:
            continue
    raise RuntimeError("no free block of loopback ports in 20000-30000")


@pytest.fixture(scope="module")
def report() -> Iterator[dict[str, Any]]:
    """The quick suite's JSON line, with its stderr for failure messages; its private state is deleted after."""
    pg, kafka, controller = _free_ports(3)
    (ROOT / ".local").mkdir(exist_ok=True)
    state = Path(tempfile.mkdtemp(prefix="faults-quick-", dir=ROOT / ".local"))
    state.chmod(0o755)  # the PostgreSQL system user must traverse it
    where = ["--state-dir", str(state), "--pg-port", str(pg), "--kafka-port", str(kafka)]
    where += ["--controller-port", str(controller)]
    try:
        done = subprocess.run(
            [sys.executable, "-m", "faults", "--quick", *where],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=1100,
        )
        assert done.stdout.strip(), done.stderr[-4000:]
        result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        result["stderr"] = done.stderr[-4000:]
        yield result
    finally:  # a suite killed by the timeout leaves its servers running: stop them by their pids first
        subprocess.run([sys.executable, "-m", "faults", "--stop", *where], cwd=ROOT, capture_output=True, timeout=120)
        shutil.rmtree(state, ignore_errors=True)


def _strict(figures: dict[str, Any]) -> dict[str, Any]:
    return {k: figures[k] for k in CLEAN}


def test_the_faults_happened_and_nothing_was_lost_doubled_or_skipped(report: dict[str, Any]) -> None:
    experiments = report["experiments"]
    assert list(experiments) == ["R1", "R3", "R4", "R6", "R7", "R8", "R9", "R10"], report["stderr"]
    assert report["control"]["orders"] == 200 and report["control"]["postings"] > 0
    faults = {code: f["faults"] for code, f in experiments.items()}
    assert experiments["R1"]["events_in"] > 3 * experiments["R3"]["events_in"]
    assert faults["R3"]["kills"] == 2
    assert faults["R4"]["immediate_stops"] == 1
    assert faults["R6"]["broker_sigkill"] == 1
    assert faults["R7"]["postgres_stall_s"] > 0 and faults["R7"]["kafka_resets"] == 1
    assert faults["R9"]["rebalances"] == 2
    assert faults["R10"]["relay_connections_killed"] >= 2 and faults["R10"]["relay_leadership_regained"] == 2
    assert all("fault_error" not in f for f in faults.values()), faults
    for code, figures in experiments.items():
        assert _strict(figures) == CLEAN, f"{code}: {figures}\n{report['stderr']}"
        assert figures["verdict"] == "PASS", f"{code}: {figures}"
    assert report["ok"] is True


def test_every_poison_record_is_dead_lettered_and_changes_nothing_else(report: dict[str, Any]) -> None:
    r8 = report["experiments"]["R8"]
    # undecodable, schema-invalid and unknown-type records on each of the three inputs
    assert r8["dead_lettered"] == 9 and r8["poison_vanished"] == 0, f"{r8}\n{report['stderr']}"
    assert _strict(r8) == CLEAN, r8.get("gap_examples")
