"""The finance workspace's pages in a real browser (Debian's chromium through Playwright), served by uvicorn on a
free loopback port against the session's PostgreSQL, with two lapas' orders posted through the ledger's use cases.

Signed in as ``auditor_pusat`` and as an ``auditor_lapas`` of lapas A, the test visits every page, checks its key
numbers against the database (the trial balance against ``karya ledger trial-balance --json``, the rest against
the read API), downloads the trial balance's CSV and compares it, checks that no page logs a console error,
screenshots each page, and crafts URLs of lapas B's entry, order, inmate and batch: 404 for the auditor of lapas A.
The auditor of lapas A walks the savings drill-down: statement → entry → order → batch and work group → the
order's settlement entry → a webhook delivery, redacted.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from playwright.sync_api import Page, sync_playwright
from typer.testing import CliRunner

from infra.db.engine import make_engine
from infra.db.roles import RoleUrls
from infra.db.unit_of_work import Database
from services.finance.app import SCHEMA, create_app
from services.finance.auth.passwords import generate_password, hash_password
from services.finance.auth.users import add_user
from services.finance.presentation.money import parse_rupiah
from services.ledger.cli import ledger_app
from services.ledger.domain import accounts
from tests.e2e.finance_serving import serving
from tests.integration.finance_auth_support import finance_settings
from tests.integration.finance_batch_support import BATCH_A, BATCH_B, catalogue_batches
from tests.integration.finance_read_support import BUYER, LAPAS_A, LAPAS_B, TwoLapas, two_lapas
from tests.integration.ledger_support import cli_env

pytestmark = pytest.mark.integration
Login = tuple[str, str]


@pytest.fixture(scope="module")
def posted(database: RoleUrls, admin_db_url: str) -> TwoLapas:
    """Orders of two lapas on the session database, posted through the ledger's processor, with their batches in
    the catalogue."""
    made = asyncio.run(two_lapas(database, admin_db_url))
    asyncio.run(catalogue_batches(admin_db_url, made))
    return made


async def _accounts(url: str) -> dict[str, Login]:
    engine = make_engine(url, pool_size=1)
    made: dict[str, Login] = {}
    try:
        async with Database(engine, SCHEMA).begin() as uow:
            for role, lapas in (("auditor_pusat", None), ("auditor_lapas", LAPAS_A)):
                password = generate_password()
                name = f"web-{role}-{generate_password()[:6]}"
                user = await add_user(uow, name, role, lapas, hash_password(password))
                made[role] = (user.name, password)
    finally:
        await engine.dispose()
    return made


@pytest.fixture(scope="module")
def logins(database: RoleUrls) -> dict[str, Login]:
    """An auditor_pusat and an auditor_lapas of lapas A with their passwords."""
    return asyncio.run(_accounts(database.finance))


@pytest.fixture(scope="module")
def served(database: RoleUrls) -> Iterator[str]:
    """The workspace as ``karya serve finance`` builds it (the finance role's engine), served by uvicorn on a free
    loopback port in a thread of this test; stopped, and its engine disposed, at the end."""
    engine = make_engine(database.finance, pool_size=2)
    app = create_app(engine, finance_settings(), schemas={"ledger": "ledger"}, after_stop=engine.dispose)
    with serving(app) as url:
        yield url


def _cli_trial_balance(urls: RoleUrls) -> dict[str, Any]:
    """``karya ledger trial-balance --json`` (in a thread: Playwright's sync API holds this thread's event loop)."""
    with ThreadPoolExecutor(1) as pool:
        result = pool.submit(CliRunner().invoke, ledger_app, ["trial-balance", "--json"], env=cli_env(urls)).result()
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.stdout)
    return data


class Browser:
    """A signed-in page that records console errors and screenshots every page it visits."""

    def __init__(self, page: Page, base: str, shots: Path, who: str) -> None:
        self.page, self.base, self.shots, self.who = page, base, shots, who
        self.errors: list[str] = []
        page.on("console", lambda m: self.errors.append(f"{page.url}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"{page.url}: {e}"))

    def login(self, name: str, password: str) -> None:
        """Sign in through the login form."""
        self.page.goto(f"{self.base}/login")
        self.page.fill("input[name=username]", name)
        self.page.fill("input[name=password]", password)
        with self.page.expect_navigation():
            self.page.click("button[type=submit]")
        assert self.page.url == f"{self.base}/", self.page.content()

    def visit(self, path: str, shot: str) -> Page:
        """Open ``path`` (200 expected) and screenshot it as ``<who>-<shot>.png``."""
        response = self.page.goto(f"{self.base}{path}")
        assert response is not None and response.status == 200, (path, response and response.text())
        return self.shoot(shot)

    def shoot(self, shot: str) -> Page:
        """Screenshot the current page."""
        self.page.screenshot(path=str(self.shots / f"{self.who}-{shot}.png"), full_page=True)
        return self.page

    def text(self, selector: str) -> str:
        """The text of one element of the current page."""
        return self.page.locator(selector).inner_text().strip()

    def api(self, path: str) -> Any:
        """A read API answer with this browser's session."""
        response = self.page.request.get(f"{self.base}{path}")
        assert response.status == 200, (path, response.text())
        return response.json()

    def status(self, path: str) -> int:
        """The status of ``path`` with this browser's session (no navigation, so no console noise)."""
        return self.page.request.get(f"{self.base}{path}").status


@pytest.fixture
def chromium() -> Iterator[Any]:
    """Debian's chromium through Playwright (``make browser`` installs it)."""
    executable = shutil.which("chromium")
    assert executable, "Debian's chromium is not installed: run `make browser` (a prerequisite of `make test`)"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


def _open(chromium: Any, served: str, tmp_path: Path, who: str, login: Login) -> Browser:
    browser = Browser(chromium.new_context(accept_downloads=True).new_page(), served, tmp_path, who)
    browser.login(*login)
    return browser


def _sequences(web: Browser) -> list[int]:
    return [int(t) for t in web.page.locator("#entries a[href^='/journal/']").all_inner_texts()]


def test_auditor_pusat_pages_match_the_ledger(
    posted: TwoLapas, logins: dict[str, Login], served: str, chromium: Any, tmp_path: Path, database: RoleUrls
) -> None:
    web = _open(chromium, served, tmp_path, "pusat", logins["auditor_pusat"])
    cli = _cli_trial_balance(database)

    web.visit("/dashboard", "dashboard")
    suspense = sum(i["amount"] for i in web.api("/api/v1/items/suspense?limit=500")["items"])
    assert parse_rupiah(web.text("#fig-suspense")) == suspense > 0

    web.visit("/trial-balance", "trial_balance")
    assert parse_rupiah(web.text("#total-debit")) == cli["total_debit"] == parse_rupiah(web.text("#total-credit"))
    with web.page.expect_download() as download:
        web.page.click("#csv")
    rows = list(csv.reader(io.StringIO(Path(download.value.path()).read_bytes().decode("utf-8-sig"))))
    assert rows[0] == ["Akun", "Jenis", "Debet", "Kredit", "Saldo"]
    want = [[a["account"], a["type"], str(a["debit"]), str(a["credit"]), str(a["balance"])] for a in cli["accounts"]]
    assert rows[1:] == want
    web.page.click("header .lang a")
    assert web.shoot("trial_balance_en").locator("h1").inner_text() == "Trial balance"
    assert parse_rupiah(web.text("#total-debit")) == cli["total_debit"]

    with web.page.expect_download() as download:
        web.page.click("#xlsx")
    assert download.value.suggested_filename == "trial_balance_all.xlsx"
    sheet = load_workbook(io.BytesIO(Path(download.value.path()).read_bytes())).active
    assert sheet is not None
    cells = [list(r) for r in sheet.iter_rows(min_row=2, values_only=True)]
    assert cells == [[a["account"], a["type"], a["debit"], a["credit"], a["balance"]] for a in cli["accounts"]]

    web.visit(f"/journal?order_key={posted.order_b}&limit=1", "journal")
    walked = _sequences(web)
    while web.page.locator("#next").count():
        web.page.click("#next")
        walked += _sequences(web)
    assert walked == [e["sequence"] for e in web.api(f"/api/v1/entries?order_key={posted.order_b}")["entries"]]
    assert len(walked) > 1, "the cursor was walked"
    web.visit(f"/journal/{posted.entries_b[0]}", "entry")
    assert web.text("#chain-hash") == web.api(f"/api/v1/entries/{posted.entries_b[0]}")["chain"]["chain_hash"]
    assert web.errors == []


def test_auditor_lapas_walks_the_drill_down_and_never_sees_lapas_b(
    posted: TwoLapas, logins: dict[str, Login], served: str, chromium: Any, tmp_path: Path
) -> None:
    web = _open(chromium, served, tmp_path, "lapas_a", logins["auditor_lapas"])

    web.visit("/dashboard", "dashboard")
    unallocated = sum(i["amount"] for i in web.api("/api/v1/items/unallocated?limit=500")["items"])
    assert parse_rupiah(web.text("#fig-unallocated")) == unallocated >= 100_000
    assert parse_rupiah(web.text("#fig-suspense")) == 0, "lapas B's suspense is not A's"

    tb = web.api("/api/v1/trial-balance")
    web.visit("/trial-balance", "trial_balance")
    assert parse_rupiah(web.text("#total-debit")) == tb["total_debit"]

    statement = web.api(f"/api/v1/inmates/{posted.inmate_a}/statement")
    web.visit(f"/inmates/{posted.inmate_a}", "statement")
    assert parse_rupiah(web.text("#closing")) == statement["closing_balance"] > 0
    web.page.locator("#statement a.entry").first.click()
    web.shoot("entry")
    web.page.click("#order")
    assert posted.order_a in web.shoot("order").locator("h1").inner_text()
    web.page.locator("#entries a.batch").first.click()  # the batch the savings were earned on, its work group
    assert BATCH_A.batch_id in web.shoot("batch").locator("h1").inner_text()
    assert posted.inmate_a in web.page.locator("#work-group a.inmate").all_inner_texts()
    web.page.go_back()
    web.page.locator("#settlements a.settlement").first.click()
    entry = web.shoot("settlement").locator("h1").inner_text()
    assert "settlement" in entry and posted.order_a in web.text("#order")
    web.page.go_back()
    web.page.locator("#deliveries a.delivery").first.click()
    body = web.shoot("delivery").locator("#body").inner_text()
    assert "[redacted]" in body and BUYER not in body, "the webhook as received, without the buyer's data"
    web.visit(f"/accounts/{accounts.inmate_savings(posted.inmate_a)}", "register")
    assert parse_rupiah(web.text("#closing"), normal_side="C") == statement["closing_balance"], "savings are Cr"
    web.visit(f"/journal?order_key={posted.order_a}", "journal")
    assert web.page.locator("#entries a[href^='/journal/']").count() > 0

    for sequence in posted.entries_b:
        assert web.status(f"/journal/{sequence}") == 404
    assert web.status(f"/orders/{posted.order_b}") == 404
    missing = web.page.request.get(f"{web.base}/orders/{posted.order_b}").text()
    assert "Tidak ditemukan" in missing and LAPAS_B not in missing, "nothing of B but the id the viewer typed"
    assert web.status(f"/inmates/{posted.inmate_b}") == 404
    assert web.status(f"/batches/{BATCH_B.batch_id}") == 404
    assert web.status(f"/accounts/{accounts.inmate_savings(posted.inmate_b)}") == 404
    web.visit(f"/journal?order_key={posted.order_b}", "journal_b")
    assert web.page.locator("#entries a[href^='/journal/']").count() == 0
    assert web.errors == []
