"""The demo stops its gateway while the simulated marketplaces still answer (issue 18, item 7).

The simulator used to stop when the pipeline drained while the gateway went on polling it (Blibli every 2 s per
store, the backstop, the token refresher): refused connections and a warning each, for as long as the demo ran,
with /readyz at 200. Now the simulator serves until the services are stopped. Run as an operator runs it
(`karya demo`, held until SIGTERM) on the real broker and a database of its own; the gateway's log is then read
whole: the only warnings are the day's two deliberately bad webhooks.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from infra.db.roles import PASSWORD_ENV, ROLES, role_urls
from infra.environment import local_passwords
from infra.messaging.admin import delete_topics_with_prefix
from tests.conftest import Services

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def _wait_for_line(output: Path, demo: subprocess.Popen[bytes], text: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if text in output.read_text(errors="replace"):
            return
        assert demo.poll() is None, output.read_text(errors="replace")[-3000:]
        time.sleep(1)
    raise AssertionError(f"{text!r} never came: {output.read_text(errors='replace')[-3000:]}")


def test_the_gateway_stops_before_its_simulated_marketplaces(services: Services, tmp_path: Path) -> None:
    database = "karya_it_demo_quiet"
    passwords = local_passwords()
    urls = role_urls(services.admin_url, passwords, database)
    env = {
        **os.environ,
        "COLUMNS": "400",
        "KARYA_STATE_DIR": str(tmp_path),  # the run's logs and demo.env land here, not in the shared .local
        "KAFKA_BOOTSTRAP_SERVERS": services.kafka_bootstrap,
        "KARYA_DB_ADMIN_URL": make_url(services.admin_url).set(database=database).render_as_string(False),
        "DATABASE_URL": urls.service,
        "KARYA_MIGRATOR_URL": urls.migrator,
        "KARYA_AUDITOR_URL": urls.auditor,
        **{PASSWORD_ENV[r]: passwords[r] for r in ROLES},
    }
    output = tmp_path / "demo.out"
    with output.open("wb") as sink:
        demo = subprocess.Popen(
            [sys.executable, "-m", "karya.cli", "demo", "--orders", "20", "--timeout", "300"],
            env=env,
            cwd=ROOT,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_for_line(output, demo, "running; Ctrl-C to stop", 420)
        demo.send_signal(signal.SIGTERM)
        assert demo.wait(timeout=120) == 0, output.read_text(errors="replace")[-3000:]
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
    (log,) = (tmp_path / "demo").glob("demo*/gateway.log")
    asyncio.run(asyncio.wait_for(delete_topics_with_prefix(services.kafka_bootstrap, log.parent.name + "."), 60))
    records = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    assert records[-1]["event"] == "service_stopped"
    warnings = [r["event"] for r in records if r["level"] in ("warning", "error", "critical")]
    assert warnings == ["webhook_signature_rejected"] * 2, warnings
    assert "stopping" in output.read_text()
