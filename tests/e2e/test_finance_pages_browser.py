"""Every page of the finance workspace in a real browser (Debian's chromium through Playwright), and its two PDFs.

Each role that reads — ``auditor_pusat``, ``auditor_lapas`` and ``bendahara`` of lapas A — opens every page route
the app serves (the list is taken from the app, so a new page fails this test until it is visited here), each page
answers 200, logs no console error and is screenshotted under ``.local/test-artifacts/finance/every_page/``. The
auditor of lapas A then downloads, by clicking their links, the inmate statement PDF and the monthly lapas report
PDF (kept in ``…/pdfs/``); their text carries the closing balance and every figure the read API gives, next to its
label, and the chain head hash.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from pypdf import PdfReader

from infra.db.engine import make_engine
from infra.db.roles import RoleUrls
from services.finance.app import create_app
from services.ledger.domain import accounts
from services.presentation.messages import message
from services.presentation.money import rupiah
from tests.e2e.finance_serving import Browser, artifacts, chromium, new_account, serving
from tests.integration.finance_auth_support import finance_settings
from tests.integration.finance_batch_support import BATCH_A, catalogue_batches
from tests.integration.finance_read_support import LAPAS_A, TwoLapas, two_lapas

pytestmark = pytest.mark.integration
MONTH = "2026-05"  # two_lapas posts on 4 May 2026
ROLES = {"pusat": ("auditor_pusat", None), "lapas_a": ("auditor_lapas", LAPAS_A), "bendahara_a": ("bendahara", LAPAS_A)}
# GET routes that answer a file, not a page: the PDF test below clicks their links.
FILES = {"/inmates/{inmate_id}/statement.pdf"}


@pytest.fixture(scope="module")
def posted(database: RoleUrls, admin_db_url: str) -> TwoLapas:
    """Two lapas' orders, their batches in the catalogue."""
    made = asyncio.run(two_lapas(database, admin_db_url))
    asyncio.run(catalogue_batches(admin_db_url, made))
    return made


@pytest.fixture(scope="module")
def logins(database: RoleUrls) -> dict[str, tuple[str, str]]:
    """One account per role of :data:`ROLES`."""

    async def made() -> dict[str, tuple[str, str]]:
        return {who: await new_account(database.finance, role, lapas) for who, (role, lapas) in ROLES.items()}

    return asyncio.run(made())


@pytest.fixture(scope="module")
def app(database: RoleUrls) -> FastAPI:
    """The workspace as ``karya serve finance`` builds it (its engine disposed when it stops)."""
    engine = make_engine(database.finance, pool_size=2)
    return create_app(engine, finance_settings(), schemas={"ledger": "ledger"}, after_stop=engine.dispose)


@pytest.fixture(scope="module")
def served(app: FastAPI) -> Iterator[str]:
    """The workspace served by uvicorn in a thread of this test."""
    with serving(app) as url:
        yield url


@pytest.fixture(scope="module")
def shots() -> Path:
    """Where the screenshots and PDFs stay after the run."""
    return artifacts("every_page")


@pytest.fixture
def browser() -> Iterator[Any]:
    """Debian's chromium (last among a test's fixtures: the others run asyncio before Playwright holds the loop)."""
    with chromium() as launched:
        yield launched


def page_routes(app: FastAPI) -> set[str]:
    """The app's GET routes that are pages: not the read API, a file, a health probe or the metrics. FastAPI 0.165
    keeps an included router as one route that holds it (``original_router``); older versions copy its routes."""
    found: set[str] = set()

    def walk(routes: list[Any], prefix: str) -> None:
        for route in routes:
            inner = getattr(route, "original_router", None)
            if inner is not None:
                walk(inner.routes, prefix + route.include_context.prefix)
            elif isinstance(route, APIRoute) and "GET" in (route.methods or ()):
                found.add(prefix + route.path)

    walk(app.routes, "")
    return {p for p in found if not p.startswith("/api/") and p not in FILES | {"/healthz", "/readyz", "/metrics"}}


def _pages(posted: TwoLapas, delivery_id: int) -> dict[str, str]:
    """Each page route with a path of lapas A's data."""
    return {
        "/login": "/login",
        "/": "/",
        "/dashboard": "/dashboard",
        "/trial-balance": "/trial-balance",
        "/journal": "/journal",
        "/journal/{sequence}": f"/journal/{posted.entries_a[0]}",
        "/orders/{order_key}": f"/orders/{posted.order_a}",
        "/orders/{order_key}/deliveries/{delivery_id}": f"/orders/{posted.order_a}/deliveries/{delivery_id}",
        "/accounts/{account}": f"/accounts/{accounts.inmate_savings(posted.inmate_a)}",
        "/inmates/{inmate_id}": f"/inmates/{posted.inmate_a}",
        "/batches/{batch_id}": f"/batches/{BATCH_A.batch_id}",
        "/chain": "/chain",
        "/reconciliation": "/reconciliation",
        "/reports/lapas/{lapas}/{month}": f"/reports/lapas/{LAPAS_A}/{MONTH}",
        "/queues": "/queues",
        "/payouts": "/payouts",
        "/withholding": "/withholding",
    }


def _shot_name(route: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in route).strip("_") or "home"


def test_every_page_renders_for_every_role_without_console_errors(
    posted: TwoLapas,
    logins: dict[str, tuple[str, str]],
    app: FastAPI,
    served: str,
    shots: Path,
    browser: Any,
) -> None:
    login_page = browser.new_context().new_page()
    errors: list[str] = []
    login_page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    assert login_page.goto(f"{served}/login").status == 200
    login_page.screenshot(path=str(shots / "signed_out-login.png"), full_page=True)
    visited: dict[str, list[str]] = {}
    for who, login in logins.items():
        web = Browser(browser.new_context(), served, login, shots, who)
        order = web.api(f"/api/v1/orders/{posted.order_a}")
        pages = _pages(posted, order["deliveries"][0]["delivery_id"])
        assert set(pages) == page_routes(app), "a page route this test does not visit (or one gone)"
        for route, path in pages.items():
            web.visit(path, _shot_name(route))
            visited.setdefault(who, []).append(route)
        errors += web.errors
    assert errors == [], errors
    assert all(len(routes) == len(page_routes(app)) for routes in visited.values())
    assert len(list(shots.glob("*.png"))) == 1 + len(ROLES) * len(page_routes(app))


def _pdf_text(path: Path) -> str:
    """The PDF's text without whitespace (the stamp wraps the 64-character hash; cells wrap)."""
    return "".join("".join(p.extract_text() for p in PdfReader(io.BytesIO(path.read_bytes())).pages).split())


def _squashed(*parts: str) -> str:
    return "".join("".join(parts).split())


def test_the_statement_and_monthly_report_pdfs_hold_the_apis_numbers_and_the_chain_head(
    posted: TwoLapas, logins: dict[str, tuple[str, str]], served: str, browser: Any
) -> None:
    name, saved = logins["lapas_a"][0], artifacts("pdfs")
    web = Browser(browser.new_context(accept_downloads=True), served, logins["lapas_a"], saved, "lapas_a")
    statement = web.api(f"/api/v1/inmates/{posted.inmate_a}/statement")
    report = web.api(f"/api/v1/reports/lapas/{LAPAS_A}/{MONTH}")
    head = report["head"]["hash"]

    web.visit(f"/inmates/{posted.inmate_a}", "statement")
    statement_pdf = web.download("#statement-pdf")
    web.visit(f"/reports/lapas/{LAPAS_A}/{MONTH}", "report")
    report_pdf = web.download("#pdf")
    assert web.errors == [], web.errors
    assert web.api(f"/api/v1/reports/lapas/{LAPAS_A}/{MONTH}")["head"] == report["head"], "nothing posted meanwhile"

    assert statement_pdf.suffix == report_pdf.suffix == ".pdf"
    text = _pdf_text(statement_pdf)
    assert statement["closing_balance"] > 0
    assert _squashed(message("savings_balance"), rupiah(statement["closing_balance"])) in text
    assert posted.inmate_a in text and name in text and head in text
    text = _pdf_text(report_pdf)
    assert report["figures"] and any(f["amount"] for f in report["figures"])
    for figure in report["figures"]:
        assert _squashed(message(figure["key"]), rupiah(figure["amount"])) in text, figure
    assert name in text and head in text
