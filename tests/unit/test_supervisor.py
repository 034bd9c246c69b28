"""The background-task supervisor and the log limiter with fake tasks: pure asyncio, no I/O.

Delays are made tiny (or the jitter fixed) so the tests wait on events, never on wall-clock assertions.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

from infra.logging import LogLimiter, RepeatFilter
from infra.supervision import Supervisor, backoff_delay


def _supervisor(registry: CollectorRegistry | None = None, **kwargs: Any) -> Supervisor:
    return Supervisor(registry=registry or CollectorRegistry(), process="test", base_delay_s=0.001, **kwargs)


def _restarts(sup: Supervisor, task: str) -> float:
    """The task's ``karya_task_restarts_total``: what an operator (and an alert) sees."""
    samples = [s for metric in sup.restarts.collect() for s in metric.samples]
    return next(s.value for s in samples if s.name == "karya_task_restarts_total" and s.labels == {"task": task})


async def _until(predicate: Any, what: str) -> None:
    for _ in range(5000):
        if predicate():
            return
        await asyncio.sleep(0.001)
    raise AssertionError(f"never happened: {what}")


def test_backoff_doubles_and_is_capped_with_jitter_inside_half_to_full() -> None:
    low = [backoff_delay(n, base_s=0.5, cap_s=30.0, rand=lambda: 0.0) for n in range(1, 10)]
    high = [backoff_delay(n, base_s=0.5, cap_s=30.0, rand=lambda: 1.0) for n in range(1, 10)]
    assert high[:6] == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0]
    assert high[6:] == [30.0, 30.0, 30.0], "capped"
    assert low == [h / 2 for h in high], "jitter draws between half the delay and the delay"
    assert backoff_delay(1000, base_s=0.5, cap_s=30.0) <= 30.0, "no overflow for long outages"


async def test_a_failing_task_is_restarted_and_counted_and_logged_without_its_text() -> None:
    registry = CollectorRegistry()
    sup = _supervisor(registry)
    runs = 0

    async def flaky(stop: asyncio.Event) -> None:
        nonlocal runs
        runs += 1
        if runs <= 3:
            raise RuntimeError("buyer Siti Rahayu +6281234567890")
        await stop.wait()

    sup.add("flaky", flaky)
    stop = asyncio.Event()
    with capture_logs() as logs:
        sup.start(stop)
        await _until(lambda: runs == 4, "the fourth run")
        stop.set()
        await sup.wait_stopped(timeout_s=5)
    assert _restarts(sup, "flaky") == 3
    failed = [e for e in logs if e["event"] == "task_failed"]
    assert failed and all(e["task"] == "flaky" and e["error"] == "RuntimeError" for e in failed)
    assert "Siti" not in repr(logs) and "6281234567890" not in repr(logs)


async def test_a_task_that_returns_before_stop_is_restarted_but_not_after_stop() -> None:
    sup = _supervisor()
    runs = 0

    async def quits(stop: asyncio.Event) -> None:
        nonlocal runs
        runs += 1

    sup.add("quits", quits)
    stop = asyncio.Event()
    with capture_logs() as logs:
        sup.start(stop)
        await _until(lambda: runs >= 3, "three runs")
        stop.set()
        await sup.wait_stopped(timeout_s=5)
    assert _restarts(sup, "quits") >= 2
    assert any(e["event"] == "task_ended" for e in logs)

    sup2 = _supervisor()

    async def until_stop(stop: asyncio.Event) -> None:
        await stop.wait()

    sup2.add("normal", until_stop)
    stop2 = asyncio.Event()
    sup2.start(stop2)
    await asyncio.sleep(0)
    stop2.set()
    await sup2.wait_stopped(timeout_s=5)
    assert _restarts(sup2, "normal") == 0, "ending because stop was set is no failure"


async def test_readiness_lists_required_tasks_while_they_wait_to_restart() -> None:
    sup = Supervisor(registry=CollectorRegistry(), process="test", base_delay_s=3600.0, max_delay_s=3600.0)
    failing = asyncio.Event()

    async def relay(stop: asyncio.Event) -> None:
        await failing.wait()
        raise ConnectionError("database went away")

    async def optional(stop: asyncio.Event) -> None:
        raise ConnectionError("metrics source away")

    sup.add("relay", relay)
    sup.add("lag", optional, required=False)
    stop = asyncio.Event()
    with capture_logs():
        sup.start(stop)
        await asyncio.sleep(0.01)
        assert sup.down() == [], "an optional task that is down does not count"
        failing.set()
        await _until(lambda: sup.down() == ["relay"], "the relay reported down")
        stop.set()  # the pending restart is abandoned when the process stops
        await sup.wait_stopped(timeout_s=5)
    assert _restarts(sup, "relay") == 0


async def test_backoff_grows_with_consecutive_failures_and_stays_under_the_cap() -> None:
    delays: list[float] = []
    sup = Supervisor(registry=CollectorRegistry(), process="test", base_delay_s=0.001, max_delay_s=0.004)
    runs = 0

    async def always_fails(stop: asyncio.Event) -> None:
        nonlocal runs
        runs += 1
        raise OSError("refused")

    sup.add("doomed", always_fails)
    stop = asyncio.Event()
    with capture_logs() as logs:
        sup.start(stop)
        await _until(lambda: runs >= 6, "six runs")
        stop.set()
        await sup.wait_stopped(timeout_s=5)
    delays = [float(e["restart_in_s"]) for e in logs if e["event"] == "task_failed"]
    assert delays, "the first failure is logged"
    assert all(d <= 0.004 for d in delays)


def test_registering_a_task_name_twice_is_refused() -> None:
    sup = _supervisor()

    async def task(stop: asyncio.Event) -> None:
        await stop.wait()

    sup.add("relay", task)
    with pytest.raises(ValueError):
        sup.add("relay", task)


def test_limiter_writes_the_first_line_counts_repeats_and_summarises() -> None:
    now = [0.0]
    limiter = LogLimiter(interval_s=60.0, clock=lambda: now[0])
    lines: list[tuple[str, dict[str, object]]] = []

    def write(event: str, **fields: object) -> None:
        lines.append((event, fields))

    for _ in range(1000):
        limiter.log(write, "outbox_publish_failed", error="KafkaConnectionError", schema="orders")
    limiter.log(write, "outbox_publish_failed", error="OperationalError", sqlstate="57P03")
    assert [f.get("error") for _, f in lines] == ["KafkaConnectionError", "OperationalError"]
    now[0] = 61.0
    limiter.log(write, "outbox_publish_failed", error="KafkaConnectionError", schema="orders")
    assert lines[-1][1]["repeated"] == 999, "the line after the interval carries the count"
    limiter.log(write, "outbox_publish_failed", error="KafkaConnectionError", schema="orders")
    limiter.resolved()
    assert lines[-1] == (
        "outbox_publish_failed",
        {"repeated": 1, "resolved": True, "error": "KafkaConnectionError", "schema": "orders"},
    )
    before = len(lines)
    limiter.log(write, "outbox_publish_failed", error="KafkaConnectionError", schema="orders")
    assert len(lines) == before + 1, "after resolution the next failure is written at once"


def test_limiter_keeps_different_keys_apart() -> None:
    limiter = LogLimiter()
    lines: list[str] = []
    for store in ("a", "b", "a", "b"):
        limiter.log(lambda event, **f: lines.append(str(f["store"])), "blibli_poll_failed", key=store, store=store)
    assert lines == ["a", "b"]


def test_stdlib_repeat_filter_passes_one_record_per_template_and_interval() -> None:
    import logging

    now = [0.0]
    flt = RepeatFilter(interval_s=60.0, clock=lambda: now[0])

    def record(msg: str, *args: object) -> logging.LogRecord:
        return logging.LogRecord("aiokafka", logging.ERROR, __file__, 1, msg, args, None)

    passed = [flt.filter(record("Unable connect to node with id %s: %s", n, "refused")) for n in range(500)]
    assert passed.count(True) == 1
    now[0] = 60.5
    again = record("Unable connect to node with id %s: %s", 1, "refused")
    assert flt.filter(again) and getattr(again, "repeated", None) == 499


async def test_task_up_gauge_reads_0_while_a_task_waits_for_its_restart_and_1_while_it_runs() -> None:
    registry = CollectorRegistry()
    sup = Supervisor(registry=registry, process="test", base_delay_s=3600.0, max_delay_s=3600.0)
    failing = asyncio.Event()

    async def relay(stop: asyncio.Event) -> None:
        await failing.wait()
        raise ConnectionError("database went away")

    async def lag(stop: asyncio.Event) -> None:
        await stop.wait()

    def up(task: str, required: str) -> float | None:
        return registry.get_sample_value("karya_task_up", {"task": task, "required": required})

    sup.add("relay", relay)
    sup.add("lag", lag, required=False)
    assert up("relay", "true") == 0.0 and up("lag", "false") == 0.0, "exported from registration, 0 until started"
    stop = asyncio.Event()
    with capture_logs():
        sup.start(stop)
        assert up("relay", "true") == 1.0 and up("lag", "false") == 1.0
        failing.set()
        await _until(lambda: up("relay", "true") == 0.0, "the relay's gauge at 0 while it waits to restart")
        assert sup.down() == ["relay"] and up("lag", "false") == 1.0
        stop.set()
        await sup.wait_stopped(timeout_s=5)
    assert up("relay", "true") == 0.0 and up("lag", "false") == 0.0, "0 once stopped"
