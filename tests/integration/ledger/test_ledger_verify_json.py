"""``karya ledger verify --json`` on a journal long enough for progress (a line every 5,000 entries), run as a real
process on a database of the test's own: stdout is the JSON document alone, so a script can parse it; the progress
lines go to stderr."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from infra.db.engine import make_engine
from tests.integration import ledger_support as ledger

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
T = datetime(2026, 4, 1, 10, tzinfo=UTC)
ORDERS = 1_700  # three entries each (completed, settled, distribution): 5,100, one progress line
BATCH = 250


async def _sell(db: ledger.LedgerDatabase, orders: int) -> None:
    """``orders`` orders completed and settled, posted by the ledger's handler in batches."""
    engine = make_engine(db.urls.service, pool_size=1)
    processor = ledger.new_processor()
    try:
        for start in range(0, orders, BATCH):
            envelopes = []
            for _ in range(start, min(start + BATCH, orders)):
                key = ledger.new_order_key()
                inmates = ((ledger.new_inmate(), 2),)
                batch = ledger.Batch(
                    f"B-{key[-8:]}", "CPN-GLV-001", "cipinang", 2, 30_000, 8_000, "sup-benang", inmates
                )
                envelopes += [ledger.completed(key, [batch], T), ledger.settled(key, 60_000, T)]
            assert await ledger.post(engine, processor, envelopes) == []
    finally:
        await engine.dispose()


async def test_verify_json_prints_only_json_on_stdout_while_progress_goes_to_stderr(
    own_database: ledger.LedgerDatabase,
) -> None:
    await _sell(own_database, ORDERS)
    ran = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "karya.cli", "ledger", "verify", "--json"],
        env=ledger.cli_env(own_database.urls),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    result = json.loads(ran.stdout)
    assert (result["entries"], result["first_broken"], result["intact"]) == (3 * ORDERS, None, True)
    assert f"verified 5,000 of {3 * ORDERS:,} entries" in ran.stderr.splitlines()
