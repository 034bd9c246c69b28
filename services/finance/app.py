"""The finance workspace's FastAPI app: :func:`create_app`, called by the composition root.

It names the schema (:data:`SCHEMA`), keeps the database and settings on ``app.state`` for the dependencies of
:mod:`services.finance.auth`, and includes the session pages and every ``router`` of the modules of
``services/finance/api/`` (the read API and pages; a module without a ``router`` is skipped).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI, Request, Response
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from infra.db.unit_of_work import Database
from services.finance.auth.deps import CurrentUser
from services.finance.auth.web import router as session_router
from services.finance.metrics import instrument
from services.finance.settings import FinanceSettings
from services.finance.templating import render
from services.finance.web import router as web_router
from services.finance.web.chain import router as chain_router
from services.finance.web.drilldown import router as drilldown_router
from services.finance.web.queues import router as queues_router
from services.finance.web.reconciliation import router as reconciliation_router

SCHEMA = "finance"
"""The workspace's own tables (accounts, sessions, audit log): named here, handed to everything that writes SQL."""
API_PACKAGE = "services.finance.api"
SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
"""Headers on every response: no page of the workspace may be framed by another site (clickjacking of its
forms), no type sniffing, no URL (with its ids) sent to other sites."""


def api_routers() -> list[APIRouter]:
    """The ``router`` of every module of ``services/finance/api/``, by module name (none while it does not exist)."""
    try:
        package = importlib.import_module(API_PACKAGE)
    except ModuleNotFoundError:
        return []
    modules = sorted(m.name for m in pkgutil.iter_modules(package.__path__))
    found = [getattr(importlib.import_module(f"{API_PACKAGE}.{name}"), "router", None) for name in modules]
    return [r for r in found if isinstance(r, APIRouter)]


def create_app(
    engine: AsyncEngine,
    settings: FinanceSettings,
    *,
    schemas: Mapping[str, str] | None = None,
    after_stop: Callable[[], Awaitable[None]] | None = None,
) -> FastAPI:
    """The workspace on ``engine`` (the caller's; ``after_stop`` disposes it when the app shuts down);
    ``schemas``: where each service keeps its data (``{"ledger": "ledger", …}``, from the composition root's
    topology), kept as ``app.state.schemas`` for the read API."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        if (jobs := getattr(app.state, "chain_jobs", None)) is not None:
            await jobs.stop()  # a running chain verification stays without a result: interrupted
        if after_stop is not None:
            await after_stop()

    app = FastAPI(title="Karya finance workspace", version="1", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.db = Database(engine, SCHEMA)
    app.state.engine = engine
    app.state.settings = settings
    app.state.schemas = dict(schemas or {})

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    app.include_router(session_router)
    # the read API, then the pages (services/finance/web)
    routers = [*api_routers(), web_router, chain_router, reconciliation_router, queues_router, drilldown_router]
    for router in routers:
        app.include_router(router)
    home = not any(getattr(route, "path", None) == "/" for router in routers for route in router.routes)
    app.include_router(_ops_router(app, with_home=home))
    app.include_router(instrument(app))
    return app


def _ops_router(app: FastAPI, *, with_home: bool) -> APIRouter:
    """``/healthz``, ``/readyz`` and, unless a router of the API has one, a plain home page."""
    ops = APIRouter(include_in_schema=False)

    @ops.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @ops.get("/readyz")
    async def readyz(response: Response) -> dict[str, bool]:
        try:
            async with app.state.db.read() as uow:
                await uow.conn.execute(text("SELECT 1"))
        except Exception:
            response.status_code = 503
            return {"database": False}
        return {"database": True}

    if with_home:

        @ops.get("/")
        async def home(request: Request, user: CurrentUser) -> Response:
            return await render(request, "home.html", {"title": "Karya"})

    return ops
