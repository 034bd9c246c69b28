"""`make observe`: a local Prometheus (Debian's ``prometheus`` package) scraping the running Karya services with
every rule file of deploy/prometheus/rules loaded; listens on loopback only, keeps its state under ``.local/observe``
and is stopped by the pid it recorded there (`make observe-stop`).

    python deploy/prometheus/observe.py start [--port 9090] [--target orders=127.0.0.1:8081 ...] [--state-dir DIR]
    python deploy/prometheus/observe.py stop [--state-dir DIR]

Targets default to each service's default port (``karya serve NAME``); the demo prints the ports its services got
(pass them as ``--target``). The scrape job is ``karya`` with a ``service`` label per target, as in deploy/compose,
so the Grafana dashboards' queries run unchanged against it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "rules"
DEFAULT_TARGETS = {"orders": 8081, "ledger": 8082, "gateway": 8083}  # karya/services.py SERVICES


def rule_files() -> list[Path]:
    """The rule files (not their promtool tests)."""
    return sorted(p for p in RULES.glob("*.yml") if not p.name.endswith(".test.yml"))


def config(targets: dict[str, str], interval_s: float) -> dict[str, object]:
    """The Prometheus configuration (JSON is YAML) for ``targets`` (service → host:port)."""
    return {
        "global": {"scrape_interval": f"{interval_s:g}s", "evaluation_interval": f"{interval_s:g}s"},
        "rule_files": [str(p) for p in rule_files()],
        "scrape_configs": [
            {
                "job_name": "karya",
                "static_configs": [{"targets": [a], "labels": {"service": s}} for s, a in sorted(targets.items())],
            }
        ],
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _alive(pid: int, state: Path) -> bool:
    """Whether ``pid`` is the Prometheus started with this state directory (not a reused pid)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False
    return "prometheus" in cmdline and str(state / "prometheus.yml") in cmdline


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as answer:  # noqa: S310 (http://127.0.0.1)
            return bool(answer.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def start(state: Path, port: int, targets: dict[str, str], interval_s: float, timeout_s: float) -> int:
    """Start Prometheus unless this state directory's one runs; print its URL."""
    pid_file = state / "prometheus.pid"
    if pid_file.exists() and _alive(int(pid_file.read_text()), state):
        print(f"Prometheus already runs (pid {pid_file.read_text().strip()}): {(state / 'url').read_text().strip()}")
        return 0
    binary = shutil.which("prometheus")
    if binary is None:
        print("prometheus is not on PATH: `make observe` installs Debian's prometheus package", file=sys.stderr)
        return 2
    state.mkdir(parents=True, exist_ok=True)
    (state / "prometheus.yml").write_text(json.dumps(config(targets, interval_s), indent=2) + "\n")
    port = port or _free_port()
    url = f"http://127.0.0.1:{port}"
    with (state / "prometheus.log").open("ab") as log:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={state / 'prometheus.yml'}",
                f"--storage.tsdb.path={state / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--storage.tsdb.retention.time=2d",
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # not stopped by the terminal's Ctrl-C; `make observe-stop` stops it
        )
    pid_file.write_text(f"{process.pid}\n")
    (state / "url").write_text(url + "\n")
    deadline = time.monotonic() + timeout_s
    while not _ready(url):
        if process.poll() is not None or time.monotonic() > deadline:
            stop(state)
            tail = (state / "prometheus.log").read_text(errors="replace")[-2000:]
            print(f"Prometheus did not become ready:\n{tail}", file=sys.stderr)
            return 1
        time.sleep(0.2)
    print(f"Prometheus (pid {process.pid}) scraping {', '.join(f'{s} {a}' for s, a in sorted(targets.items()))}")
    print(f"rules: {', '.join(p.name for p in rule_files())}; stop with `make observe-stop`")
    print(url)
    return 0


def stop(state: Path, grace_s: float = 15.0) -> int:
    """Stop the Prometheus recorded in ``state`` by its pid."""
    pid_file = state / "prometheus.pid"
    if not pid_file.exists():
        print("no Prometheus recorded")
        return 0
    pid = int(pid_file.read_text())
    if _alive(pid, state):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while _alive(pid, state) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _alive(pid, state):
            os.kill(pid, signal.SIGKILL)
        print(f"Prometheus (pid {pid}) stopped")
    pid_file.unlink(missing_ok=True)
    return 0


def _targets(values: list[str]) -> dict[str, str]:
    if not values:
        return {s: f"127.0.0.1:{p}" for s, p in DEFAULT_TARGETS.items()}
    out = {}
    for value in values:
        service, _, address = value.partition("=")
        if not service or ":" not in address:
            raise SystemExit(f"--target {value!r}: expected NAME=HOST:PORT")
        out[service] = address
    return out


def main(argv: list[str] | None = None) -> int:
    """Command line: start | stop."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["start", "stop"])
    parser.add_argument("--state-dir", type=Path, default=ROOT / ".local" / "observe")
    parser.add_argument("--port", type=int, default=9090, help="0: a free port")
    parser.add_argument("--target", action="append", default=[], help="SERVICE=HOST:PORT (repeat)")
    parser.add_argument("--scrape-interval", type=float, default=5.0, help="seconds")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for readiness")
    args = parser.parse_args(argv)
    state = args.state_dir.resolve()
    if args.command == "stop":
        return stop(state)
    return start(state, args.port, _targets(args.target), args.scrape_interval, args.timeout)


if __name__ == "__main__":
    sys.exit(main())
