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
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from typer.testing import CliRunner

from infra.db.engine import make_engine
from infra.db.roles import RoleUrls
from services.finance.app import create_app
from services.ledger.cli import ledger_app
from services.ledger.domain import accounts
from services.presentation.money import parse_rupiah
from tests.e2e.finance_serving import Browser, artifacts, chromium, new_account, serving
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
    return {
        role: await new_account(url, role, lapas)
        for role, lapas in (("auditor_pusat", None), ("auditor_lapas", LAPAS_A))
    }


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


@pytest.fixture(scope="module")
def shots() -> Path:
    """Where this module's screenshots and downloads stay after the run."""
    return artifacts("pages_and_drilldown")


def _cli_trial_balance(urls: RoleUrls) -> dict[str, Any]:
    """``karya ledger trial-balance --json`` (in a thread: Playwright's sync API holds this thread's event loop)."""
    with ThreadPoolExecutor(1) as pool:
        result = pool.submit(CliRunner().invoke, ledger_app, ["trial-balance", "--json"], env=cli_env(urls)).result()
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.stdout)
    return data


@pytest.fixture
def browser() -> Iterator[Any]:
    """Debian's chromium (last among a test's fixtures: the others run asyncio before Playwright holds the loop)."""
    with chromium() as launched:
        yield launched


def _open(browser: Any, served: str, shots: Path, who: str, login: Login) -> Browser:
    return Browser(browser.new_context(accept_downloads=True), served, login, shots, who)


def _sequences(web: Browser) -> list[int]:
    return [int(t) for t in web.page.locator("#entries a[href^='/journal/']").all_inner_texts()]


def test_auditor_pusat_pages_match_the_ledger(
    posted: TwoLapas, logins: dict[str, Login], served: str, shots: Path, database: RoleUrls, browser: Any
) -> None:
    web = _open(browser, served, shots, "pusat", logins["auditor_pusat"])
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
    posted: TwoLapas, logins: dict[str, Login], served: str, shots: Path, browser: Any
) -> None:
    web = _open(browser, served, shots, "lapas_a", logins["auditor_lapas"])

    web.visit("/dashboard", "dashboard")
    unallocated = sum(i["amount"] for i in web.api("/api/v1/items/unallocated?limit=500")["items"])
    assert parse_rupiah(web.text("#fig-unallocated")) == unallocated >= 100_000
    suspense = web.api("/api/v1/items/suspense?limit=500")["items"]
    assert parse_rupiah(web.text("#fig-suspense")) == sum(i["amount"] for i in suspense)
    assert posted.suspense_b not in {i["order_key"] for i in suspense}, "lapas B's suspense is not A's"

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
