"""The marketplace simulator as one object: state, seller APIs, traffic generator and an HTTP server.

In-process use (the demo)::

    simulator = Simulator(load_catalogue(Path("deploy/demo/catalogue.yaml")), SimSettings.from_env())
    async with simulator.serve("127.0.0.1", 8090):
        summary = await simulator.run_day(orders=2000, seed=7, on_progress=lambda done, total: ...)
        ...  # keep serving while the gateway's normaliser and pollers read the APIs

As a separate process: ``python -m sim --port 8090`` and drive it over HTTP: ``POST /_sim/traffic``
``{"orders": 2000, "seed": 7}`` starts a day (202; 409 while one runs), ``GET /_sim/traffic`` reports
``{"status": "idle|running|done|failed", "done", "total", "summary", "error"}``, ``GET /_sim/health``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Generator, Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import Request
from fastapi.responses import JSONResponse

from services.orders.catalogue import Catalogue, load_catalogue
from sim.api import create_app
from sim.plan import FaultRates, Plan, plan_day
from sim.settings import SimSettings, require_loopback
from sim.state import SimState
from sim.tokens import SimTokens
from sim.traffic import Progress, ProgressCallback, TrafficRunner, TrafficSummary

__all__ = ["DEFAULT_CATALOGUE", "Simulator", "run_simulator"]

DEFAULT_CATALOGUE = Path("deploy/demo/catalogue.yaml")


class _EmbeddedServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to the host program."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class Simulator:
    """Simulated Shopee, TikTok Shop, Tokopedia and Blibli over one in-memory state."""

    def __init__(
        self,
        catalogue: Catalogue,
        settings: SimSettings,
        *,
        gateway_transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.time,
        concurrency: int = 16,
    ) -> None:
        self.catalogue = catalogue
        self.settings = settings
        self.state = SimState()
        self.app = create_app(self.state, settings, clock)
        self.tokens: SimTokens = self.app.state.tokens
        self.runner = TrafficRunner(
            self.state, settings, transport=gateway_transport, clock=clock, concurrency=concurrency
        )
        self.last_summary: TrafficSummary | None = None
        self.last_error: str | None = None
        self._day: asyncio.Task[TrafficSummary] | None = None
        self._add_control_routes()

    @property
    def progress(self) -> Progress:
        """Steps done / total of the current (or last) day."""
        return self.runner.progress

    def plan(
        self,
        orders: int,
        seed: int,
        mix: Mapping[str, float] | None = None,
        faults: FaultRates | None = None,
        day: date | None = None,
    ) -> Plan:
        """The deterministic plan of a day (``day`` defaults to today, UTC; it only shapes ids)."""
        return plan_day(self.catalogue, orders, seed, mix, faults, day or datetime.now(UTC).date())

    async def run_day(
        self,
        orders: int = 2000,
        seed: int = 1,
        *,
        mix: Mapping[str, float] | None = None,
        faults: FaultRates | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> TrafficSummary:
        """Plan and replay a marketplace day; returns when every webhook has its final answer.

        Use a new seed for each day against the same gateway database: the same seed gives the same order ids.
        """
        plan = self.plan(orders, seed, mix, faults)
        summary = await self.runner.run(plan, on_progress)
        self.last_summary = summary
        return summary

    def start_day(self, orders: int, seed: int, faults: FaultRates | None = None) -> None:
        """Start :meth:`run_day` in the background (the ``POST /_sim/traffic`` endpoint)."""
        if self._day is not None and not self._day.done():
            raise RuntimeError("a marketplace day is already running")
        self.last_error = None
        self.runner.progress = Progress(running=True)
        self._day = asyncio.create_task(self.run_day(orders, seed, faults=faults))
        self._day.add_done_callback(self._day_done)

    def _day_done(self, task: asyncio.Task[TrafficSummary]) -> None:
        if task.cancelled():
            self.last_error = "cancelled"
        elif task.exception() is not None:
            self.last_error = f"{type(task.exception()).__name__}: {task.exception()}"

    def traffic_status(self) -> dict[str, Any]:
        """What ``GET /_sim/traffic`` answers."""
        if self._day is None:
            status = "idle"
        elif not self._day.done():
            status = "running"
        else:
            status = "failed" if self.last_error else "done"
        return {
            "status": status,
            "done": self.progress.done,
            "total": self.progress.total,
            "summary": self.last_summary.as_dict() if self.last_summary and status == "done" else None,
            "error": self.last_error,
        }

    def _add_control_routes(self) -> None:
        app = self.app

        @app.get("/_sim/health")
        async def health() -> dict[str, Any]:
            return {"status": "ok", "orders": dict(self.state.counts())}

        @app.get("/_sim/traffic")
        async def traffic() -> dict[str, Any]:
            return self.traffic_status()

        @app.post("/_sim/traffic")
        async def start(request: Request) -> JSONResponse:
            try:
                body = await request.json()
                orders, seed = int(body.get("orders", 2000)), int(body.get("seed", 1))
                faults = FaultRates(
                    tampered=int(body.get("tampered", 0)), wrong_secret=int(body.get("wrong_secret", 0))
                )
            except (ValueError, TypeError, AttributeError) as exc:
                return JSONResponse({"error": f"bad request: {exc}"}, status_code=400)
            try:
                self.start_day(orders, seed, faults)
            except RuntimeError as exc:
                return JSONResponse({"error": str(exc)}, status_code=409)
            return JSONResponse(self.traffic_status(), status_code=202)

    @contextlib.asynccontextmanager
    async def serve(self, host: str = "127.0.0.1", port: int = 8090) -> AsyncIterator[uvicorn.Server]:
        """Serve the APIs on ``host:port`` (loopback only) for the duration of the block."""
        require_loopback(f"http://{host}:{port}")
        config = uvicorn.Config(self.app, host=host, port=port, log_level="warning", lifespan="off")
        server = _EmbeddedServer(config)
        task = asyncio.create_task(server.serve())
        await _until_started(server, task, host, port)
        try:
            yield server
        finally:
            server.should_exit = True
            with contextlib.suppress(BaseException):
                await task
            if self._day is not None and not self._day.done():
                self._day.cancel()


async def _until_started(server: uvicorn.Server, task: asyncio.Task[None], host: str, port: int) -> None:
    """Wait until uvicorn listens; raise if it gave up (e.g. the port is taken)."""
    while not server.started:
        if task.done():
            raise RuntimeError(f"the simulator could not listen on {host}:{port}") from _failure(task)
        await asyncio.sleep(0.02)


def _failure(task: asyncio.Task[None]) -> BaseException | None:
    if task.cancelled():
        return None
    try:
        return task.exception()
    except BaseException as exc:  # uvicorn exits with SystemExit when it cannot bind
        return exc


def run_simulator(
    host: str = "127.0.0.1",
    port: int = 8090,
    *,
    catalogue_path: Path = DEFAULT_CATALOGUE,
    settings: SimSettings | None = None,
    orders: int = 0,
    seed: int = 1,
) -> None:
    """Serve the simulator until interrupted; with ``orders`` > 0, start a day of that many orders at once."""
    simulator = Simulator(load_catalogue(catalogue_path), settings or SimSettings.from_env())
    require_loopback(f"http://{host}:{port}")

    async def main() -> None:
        config = uvicorn.Config(simulator.app, host=host, port=port, log_level="info", lifespan="off")
        server = uvicorn.Server(config)
        serving = asyncio.create_task(server.serve())
        if orders > 0:
            await _until_started(server, serving, host, port)
            simulator.start_day(orders, seed)  # only once the APIs answer: the gateway calls back at once
        await serving

    asyncio.run(main())
