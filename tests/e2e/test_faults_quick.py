"""`make faults --quick` as a test: one cycle of R1 (duplicates), R3 (kill -9 of the consumers), R4 (PostgreSQL
immediate stop) and R8 (poison on every input), each compared with a fault-free control run of the same seed.

The suite starts a PostgreSQL and a Kafka of its own (state in ``.local/faults-quick``, ports 17442/17102/17103),
because it stops and kills them; the shared stack the other tests use is never touched. Its last stdout line is
one JSON object of figures per experiment.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1200)]
ROOT = Path(__file__).resolve().parents[2]


PRIVATE = ["--state-dir", str(ROOT / ".local" / "faults-quick"), "--pg-port", "17442", "--kafka-port", "17102"]


def test_quick_fault_experiments_lose_and_double_nothing() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "faults", "--quick", *PRIVATE, "--controller-port", "17103"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1100,
    )
    assert done.stdout.strip(), done.stderr[-4000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    experiments = report["experiments"]
    assert sorted(experiments) == ["R1", "R3", "R4", "R8"], done.stderr[-4000:]
    control = report["control"]
    assert control["orders"] == 200 and control["postings"] > 0
    # the faults really happened
    assert experiments["R1"]["events_in"] > 3 * experiments["R3"]["events_in"]
    assert experiments["R3"]["faults"]["kills"] == 2
    assert experiments["R4"]["faults"]["immediate_stops"] == 1
    assert experiments["R8"]["dead_lettered"] >= 1
    # and nothing was lost, doubled or skipped
    failures = {
        code: {k: f[k] for k in ("lost", "doubled", "completeness_gaps", "stock_batches_differ", "drained")}
        for code, f in experiments.items()
        if f["verdict"] != "PASS"
    }
    assert not failures, f"{failures}\n{done.stderr[-4000:]}"
    assert done.returncode == 0
