"""`make observe` end to end: a real Prometheus (Debian's package) scraping the demo's real services.

The demo runs (its own database, its own topic prefix; 60 orders of signed webhooks through gateway → orders →
ledger) and keeps its services up once drained. Prometheus is started as `make observe` starts it
(deploy/prometheus/observe.py, a free loopback port, a state directory of the test's own) with every rule file
loaded, scraping the three services and the finance workspace from the moment they start. Once the demo has
drained and Prometheus has scraped again, every target is up, every rule evaluates without error, and every
Grafana dashboard query (deploy/grafana/dashboards) returns data. Then one undecodable record is published to
the orders input: it is dead-lettered and the KaryaDeadLettersGrowing alert fires. Everything started here is
stopped by its pid; the run's topics are deleted.
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from infra.db.roles import PASSWORD_ENV, ROLES, role_urls
from infra.environment import local_passwords
from infra.messaging.admin import delete_topics_with_prefix
from infra.messaging.relay import make_producer
from karya.services import SERVICES, WORKSPACES
from tests.conftest import Services
from tests.unit.test_deploy_dashboards import expressions

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]
ROOT = Path(__file__).resolve().parents[2]
OBSERVE = ROOT / "deploy" / "prometheus" / "observe.py"
_STARTED = re.compile(r"services started: (.*); logs in (\S+)")


def _free_port() -> int:
    """A loopback port nobody listens on, outside the ephemeral range (32768-60999)."""
    for port in random.sample(range(20000, 30000), 200):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free loopback port in 20000-30000")


def _api(url: str, path: str, **params: str) -> Any:
    query = f"?{urllib.parse.urlencode(params)}" if params else ""
    with urllib.request.urlopen(f"{url}/api/v1/{path}{query}", timeout=10) as answer:  # noqa: S310 (loopback)
        body = json.loads(answer.read())
    assert body["status"] == "success", body
    return body["data"]


def _lines(stream: Any) -> queue.Queue[str]:
    """The lines of ``stream`` as they come, read by a daemon thread (so waiting for one can time out)."""
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in stream:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    return lines


def _wait_for(
    demo: subprocess.Popen[str],
    lines: queue.Queue[str],
    pattern: re.Pattern[str] | str,
    timeout_s: float,
    seen: list[str],
) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=1)
        except queue.Empty:
            if demo.poll() is not None and lines.empty():
                break  # the demo ended without printing it
            continue
        seen.append(line)
        if re.search(pattern, line):
            return line
    raise AssertionError(f"no line matching {pattern!r} (demo exit code {demo.poll()}):\n{''.join(seen[-40:])}")


def _scrapes_after(url: str, moment: float, timeout_s: float) -> list[dict[str, Any]]:
    """The active targets once each was scraped after ``moment`` (epoch seconds)."""
    deadline = time.monotonic() + timeout_s
    while True:
        targets: list[dict[str, Any]] = _api(url, "targets")["activeTargets"]
        stamps = [t["lastScrape"] for t in targets]
        if targets and all(s and _epoch(s) > moment for s in stamps):
            return targets
        assert time.monotonic() < deadline, f"not scraped after the drain: {targets}"
        time.sleep(1)


def _epoch(rfc3339: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(re.sub(r"(\.\d{6})\d*", r"\1", rfc3339.replace("Z", "+00:00"))).timestamp()


async def _poison(bootstrap: str, topic: str) -> None:
    """One record no consumer can decode."""
    producer = make_producer(bootstrap, "e2e-observe-poison")
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"\xff not an event", key=b"poison")
    finally:
        await producer.stop()


def _firing(url: str, alert: str, timeout_s: float) -> dict[str, Any]:
    """The first firing instance of ``alert`` (polled every half second)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for instance in _api(url, "alerts")["alerts"]:
            if instance["labels"]["alertname"] == alert and instance["state"] == "firing":
                return dict(instance)
        time.sleep(0.5)
    raise AssertionError(f"{alert} did not fire within {timeout_s:.0f} s: {_api(url, 'alerts')}")


async def _delete_topics(bootstrap: str, prefix: str) -> None:
    try:
        await asyncio.wait_for(delete_topics_with_prefix(bootstrap, prefix), 60)
    except Exception as exc:  # hygiene only
        print(f"demo topics not deleted: {type(exc).__name__}: {exc}", file=sys.stderr)


def test_prometheus_scrapes_the_demo_services_and_every_dashboard_query_returns_data(
    services: Services, tmp_path: Path
) -> None:
    database = "karya_e2e_observe"
    passwords = local_passwords()
    urls = role_urls(services.admin_url, passwords, database)
    env = {
        **os.environ,
        "COLUMNS": "400",  # rich must not wrap the line naming the services' ports
        "KAFKA_BOOTSTRAP_SERVERS": services.kafka_bootstrap,
        "KARYA_DB_ADMIN_URL": make_url(services.admin_url).set(database=database).render_as_string(False),
        "DATABASE_URL": urls.service,
        "KARYA_MIGRATOR_URL": urls.migrator,
        "KARYA_AUDITOR_URL": urls.auditor,
        **{PASSWORD_ENV[r]: passwords[r] for r in ROLES},
    }
    demo = subprocess.Popen(
        [sys.executable, "-m", "karya.cli", "demo", "--orders", "60", "--timeout", "300"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    state = tmp_path / "observe"
    prefix = ""
    seen: list[str] = []
    try:
        lines = _lines(demo.stdout)
        started = _STARTED.search(_wait_for(demo, lines, _STARTED, 240, seen))
        assert started
        prefix = Path(started.group(2)).name + "."
        ports = dict(re.findall(r"(\w+) \(pid \d+, :(\d+)\)", started.group(1)))
        scraped = [*SERVICES, *WORKSPACES]  # the finance workspace has /metrics too (requests by route)
        assert set(ports) == set(scraped), ports
        port = _free_port()
        targets = [f"--target={s}=127.0.0.1:{p}" for s, p in ports.items()]
        observe = [sys.executable, str(OBSERVE)]
        started_prometheus = subprocess.run(
            [*observe, "start", f"--state-dir={state}", f"--port={port}", "--scrape-interval=1", *targets],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert started_prometheus.returncode == 0, started_prometheus.stdout + started_prometheus.stderr
        url = started_prometheus.stdout.strip().splitlines()[-1]
        assert url == f"http://127.0.0.1:{port}"

        _wait_for(demo, lines, r"running; Ctrl-C to stop", 420, seen)
        targets_up = _scrapes_after(url, time.time(), 60)
        assert {t["labels"]["service"]: t["health"] for t in targets_up} == dict.fromkeys(scraped, "up")

        rules = [r for g in _api(url, "rules")["groups"] for r in g["rules"]]
        assert rules and all(r["health"] == "ok" for r in rules), [(r["name"], r.get("lastError")) for r in rules]

        empty = []
        for dashboard, title, expr in expressions():
            result = _api(url, "query", query=expr)["result"]
            if not result:
                empty.append(f"{dashboard} {title}: {expr}")
        assert not empty, empty

        # A poison record: dead-lettered by orders, KaryaDeadLettersGrowing fires (it has no `for`, so it has no
        # pending phase: a new dead letter pages at the next evaluation).
        active = {a["labels"]["alertname"] for a in _api(url, "alerts")["alerts"]}
        assert "KaryaDeadLettersGrowing" not in active, "the demo dead-letters nothing"
        topic = f"{prefix}marketplace.order-events"
        asyncio.run(_poison(services.kafka_bootstrap, topic))
        alert = _firing(url, "KaryaDeadLettersGrowing", 120)
        assert alert["labels"]["topic"] == topic and alert["labels"]["consumer"] == "orders"
    finally:
        subprocess.run([sys.executable, str(OBSERVE), "stop", f"--state-dir={state}"], timeout=60, check=False)
        if demo.poll() is None:
            demo.send_signal(signal.SIGTERM)  # the demo stops its services on SIGTERM
            try:
                demo.wait(timeout=60)
            except subprocess.TimeoutExpired:
                demo.kill()
                demo.wait()
        if prefix:
            asyncio.run(_delete_topics(services.kafka_bootstrap, prefix))
