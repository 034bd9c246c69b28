"""``configure_logging`` in a fresh interpreter (it changes process-wide logging, so never in the test process):
JSON lines on stderr only, ``service`` on each, the level from ``KARYA_LOG_LEVEL``, libraries at WARNING and up
through the same renderer with repeats rate-limited, and exceptions described, never their text."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent(
    """
    import logging
    from infra.logging import configure_logging, get_logger, bind_event_context

    configure_logging("ledger")
    log = get_logger("probe")
    log.debug("probe_debug")
    log.info("probe_info")
    log.warning("probe_warning", n=1)
    with bind_event_context(event_id="e-1", subject="tokopedia:s:o", topic="t", partition=2, offset=7):
        log.error("probe_in_event")
    try:
        raise ValueError("buyer Siti Rahayu +6281234567890")
    except ValueError:
        log.error("probe_failed", exc_info=True)
        logging.getLogger("uvicorn.error").error("Exception in ASGI application", exc_info=True)
    for node in range(500):
        logging.getLogger("aiokafka").error("Unable connect to node with id %s: %s", node, "refused")
    logging.getLogger("aiokafka").info("Discovered coordinator")
    logging.getLogger("uvicorn.access").warning("GET /metrics 200")
    """
)


def _run(level: str) -> tuple[str, list[dict[str, Any]]]:
    env = {**os.environ, "KARYA_LOG_LEVEL": level}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    return done.stdout, [json.loads(line) for line in done.stderr.splitlines() if line.strip()]


def test_json_on_stderr_with_service_level_context_and_quiet_libraries() -> None:
    stdout, lines = _run("warning")
    assert stdout == ""
    assert all(line["service"] == "ledger" and "timestamp" in line for line in lines)
    events = [line["event"] for line in lines]
    assert "probe_info" not in events and "probe_debug" not in events, "KARYA_LOG_LEVEL=warning"
    assert "probe_warning" in events
    in_event = next(line for line in lines if line["event"] == "probe_in_event")
    assert (in_event["event_id"], in_event["subject"], in_event["partition"], in_event["offset"]) == (
        "e-1",
        "tokopedia:s:o",
        2,
        7,
    )
    assert events.count("Unable connect to node with id 0: refused") == 1
    assert not any(e.startswith("Unable connect to node with id 1") for e in events), "repeats are held back"
    assert "Discovered coordinator" not in events, "libraries log at WARNING and up"
    assert "GET /metrics 200" not in events, "no access log"
    failed = next(line for line in lines if line["event"] == "probe_failed")
    assert failed["error"] == "ValueError" and "exception" not in failed
    asgi = next(line for line in lines if line["event"] == "Exception in ASGI application")
    assert asgi["error"] == "ValueError" and asgi["logger"] == "uvicorn.error"
    assert "Siti" not in json.dumps(lines) and "6281234567890" not in json.dumps(lines)


def test_debug_level_and_an_unknown_level_falls_back_to_info() -> None:
    _, lines = _run("debug")
    assert {"probe_debug", "probe_info"} <= {line["event"] for line in lines}
    _, lines = _run("loud")
    events = [line["event"] for line in lines]
    assert "log_level_unknown" in events and "probe_info" in events and "probe_debug" not in events
