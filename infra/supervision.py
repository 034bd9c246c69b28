"""One supervisor for the background tasks of a process (outbox relay, sweeper, pollers, metrics loops).

Each task is a coroutine factory given the process's stop event. The supervisor runs it as a named asyncio task;
when it raises, or returns while the stop event is not set, the supervisor logs a value-free description
(:func:`infra.errors.describe_error`, rate-limited), counts ``karya_task_restarts_total{task}`` and starts it
again after a capped exponential backoff with jitter. A task that ran for ``healthy_after_s`` before failing starts
again from the shortest delay.

Readiness: a *required* task counts as down from the moment it fails until it has been started again; ``/readyz``
answers 503 meanwhile (see :meth:`Supervisor.down`) and ``karya_task_up{task,required}`` reads 0 (1 while it
runs), so an alert can see it. Which tasks are required is the caller's choice (``ServiceRuntime.add_background``):
the outbox relay, the sweeper and the pollers are (without them events stay unpublished or state goes stale while
the process looks healthy); metric loops are not.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

from infra.errors import describe_error
from infra.logging import LogLimiter, get_logger

log = get_logger(__name__)

TaskFactory = Callable[[asyncio.Event], Coroutine[Any, Any, None]]


def backoff_delay(attempt: int, *, base_s: float, cap_s: float, rand: Callable[[], float] = random.random) -> float:
    """Delay before retry number ``attempt`` (1, 2, …): ``base_s · 2^(attempt-1)`` capped at ``cap_s``, with
    "equal jitter" (a uniformly drawn value between half the delay and the delay), so processes that lost the
    same dependency at once do not come back in step."""
    ceiling = min(cap_s, base_s * 2.0 ** max(0, attempt - 1))
    return ceiling / 2 + rand() * ceiling / 2


@dataclass
class _Task:
    name: str
    factory: TaskFactory
    required: bool
    up: bool = False
    handle: asyncio.Task[None] | None = None


class Supervisor:
    """Runs, restarts and reports on the background tasks of one process."""

    def __init__(
        self,
        *,
        registry: CollectorRegistry,
        process: str,
        base_delay_s: float = 0.5,
        max_delay_s: float = 30.0,
        healthy_after_s: float = 60.0,
        rand: Callable[[], float] = random.random,
        clock: Callable[[], float] | None = None,
    ) -> None:
        """``registry``: where ``karya_task_restarts_total`` is registered (the process's metrics registry);
        ``process``: prefixes the asyncio task names."""
        self._process = process
        self._tasks: dict[str, _Task] = {}
        self._base = base_delay_s
        self._cap = max_delay_s
        self._healthy_after = healthy_after_s
        self._rand = rand
        self._clock = clock
        self._limiter = LogLimiter()
        self.restarts = Counter(
            "karya_task_restarts_total",
            "Background tasks restarted after failing or ending",
            ["task"],
            registry=registry,
        )
        self.task_up = Gauge(
            "karya_task_up",
            "1 while a background task runs, 0 while it waits to be restarted (or before start, after stop)",
            ["task", "required"],
            registry=registry,
        )

    def _mark(self, task: _Task, up: bool) -> None:
        task.up = up
        self.task_up.labels(task.name, "true" if task.required else "false").set(1 if up else 0)

    def add(self, name: str, factory: TaskFactory, *, required: bool = True) -> None:
        """Register a task (before :meth:`start`); names are unique within a process."""
        if name in self._tasks:
            raise ValueError(f"background task {name!r} is registered twice")
        self._tasks[name] = _Task(name, factory, required)
        self.restarts.labels(name)  # the series exists (at 0) from the start, so alerts can use increase()
        self._mark(self._tasks[name], False)

    @property
    def names(self) -> list[str]:
        """Registered task names, in registration order."""
        return list(self._tasks)

    def start(self, stop: asyncio.Event) -> None:
        """Start every registered task; each runs until ``stop`` is set."""
        for task in self._tasks.values():
            self._mark(task, True)
            task.handle = asyncio.create_task(self._supervise(task, stop), name=f"{self._process}-{task.name}")

    def down(self) -> list[str]:
        """The required tasks that are not running now (failed and waiting to be restarted)."""
        return [t.name for t in self._tasks.values() if t.required and not t.up]

    async def wait_stopped(self, timeout_s: float = 10.0) -> None:
        """After the stop event is set: wait for the tasks to end, cancelling those that take longer."""
        handles = [t.handle for t in self._tasks.values() if t.handle is not None]
        if not handles:
            return
        _, pending = await asyncio.wait(handles, timeout=timeout_s)
        for handle in pending:
            handle.cancel()
        for handle in pending:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await handle

    async def _supervise(self, task: _Task, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        now = self._clock or loop.time
        failures = 0
        while not stop.is_set():
            self._mark(task, True)
            started = now()
            try:
                await task.factory(stop)
            except asyncio.CancelledError:
                self._mark(task, False)
                raise
            except Exception as exc:  # described, not dumped: an error's text can quote personal data
                facts: dict[str, object] = describe_error(exc)
                outcome = "task_failed"
            else:
                if stop.is_set():
                    break
                facts, outcome = {}, "task_ended"
            self._mark(task, False)
            failures = 1 if now() - started >= self._healthy_after else failures + 1
            delay = backoff_delay(failures, base_s=self._base, cap_s=self._cap, rand=self._rand)
            self._limiter.log(log.error, outcome, key=task.name, task=task.name, restart_in_s=round(delay, 2), **facts)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)
            if stop.is_set():
                break
            self.restarts.labels(task.name).inc()
        self._mark(task, False)


async def every(
    interval_s: float,
    stop: asyncio.Event,
    step: Callable[[], Coroutine[Any, Any, object]],
    *,
    failed: str,
    **log_fields: object,
) -> None:
    """Run ``step`` now and then every ``interval_s`` until ``stop`` is set: the body of a periodic background
    task. A failed step is logged as ``failed`` (described, never its text: a database error can quote a value;
    repeats rate-limited) and tried again at the next tick."""
    limiter = LogLimiter()
    while not stop.is_set():
        try:
            await step()
            limiter.resolved()
        except Exception as exc:
            limiter.log(log.warning, failed, **log_fields, **describe_error(exc))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval_s)
