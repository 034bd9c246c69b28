"""The workspace's ``/metrics``: requests by route template, method and status class, and how long they took, on
a registry of the app (so two apps in one test process do not share counters). Route templates, never paths:
``/entries/{sequence}`` is one series, whatever the sequence."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

_LABELS = ("route", "method", "status")


def instrument(app: FastAPI) -> APIRouter:
    """Count and time every request of ``app``; the returned router serves ``/metrics`` (include it in ``app``)."""
    registry = CollectorRegistry()
    requests = Counter(
        "karya_finance_requests", "Requests answered by the finance workspace.", _LABELS, registry=registry
    )
    seconds = Histogram(
        "karya_finance_request_seconds",
        "Time to answer a request of the finance workspace.",
        ("route",),
        registry=registry,
    )

    @app.middleware("http")
    async def measure(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        route = getattr(request.scope.get("route"), "path", "unmatched")
        if route != "/metrics":
            requests.labels(route, request.method, f"{response.status_code // 100}xx").inc()
            seconds.labels(route).observe(time.perf_counter() - started)
        return response

    router = APIRouter(include_in_schema=False)

    @router.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return router
