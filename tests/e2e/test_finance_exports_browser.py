"""The journal's downloads in a real browser (Debian's chromium through Playwright), served by uvicorn on a free
loopback port: an auditor of lapas A filters the journal to one order, clicks its "CSV" and "XLSX" links, and the
files the browser saves hold the entries and integer amounts the read API gives for the same filter; no page logs
a console error."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.db.engine import make_engine
from infra.db.roles import RoleUrls
from services.finance.app import create_app
from services.finance.web.pages import ENTRY_COLUMNS
from tests.e2e.finance_serving import chromium, new_account, serving, signed_in_page
from tests.integration.finance_auth_support import finance_settings
from tests.integration.finance_export_support import number, rows_of
from tests.integration.finance_read_support import LAPAS_A, TwoLapas, two_lapas

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def served(database: RoleUrls) -> Iterator[str]:
    """The workspace served by uvicorn in a thread of this test (stopped at the end)."""
    engine = make_engine(database.finance, pool_size=2)
    app = create_app(engine, finance_settings(), schemas={"ledger": "ledger"}, after_stop=engine.dispose)
    with serving(app) as url:
        yield url


def test_the_journals_csv_and_xlsx_downloads_hold_the_apis_entries(
    database: RoleUrls, admin_db_url: str, served: str, tmp_path: Path
) -> None:
    posted: TwoLapas = asyncio.run(two_lapas(database, admin_db_url))
    name, password = asyncio.run(new_account(database.finance, "auditor_lapas", LAPAS_A))
    errors: list[str] = []
    with chromium() as browser:
        context = browser.new_context(accept_downloads=True)
        page = signed_in_page(context, served, name, password, errors)
        page.goto(f"{served}/journal?lang=en")
        page.fill("input[name=order_key]", posted.order_a)
        with page.expect_navigation():
            page.click("form[action='/journal'] button[type=submit]")
        shown = page.locator("#entries a[href^='/journal/']").all_inner_texts()
        saved = {}
        for fmt in ("csv", "xlsx"):
            with page.expect_download() as caught:
                page.click(f"#{fmt}")
            target = tmp_path / caught.value.suggested_filename
            caught.value.save_as(target)
            saved[fmt] = target
        page.screenshot(path=str(tmp_path / "journal.png"))
        api = context.request.get(f"{served}/api/v1/entries", params={"order_key": posted.order_a}).json()
    assert errors == [], errors
    expected = [(e["sequence"], e["amount"]) for e in api["entries"]]
    assert expected and [int(s) for s in shown] == [s for s, _ in expected]
    assert {e["sequence"] for e in api["entries"]} <= set(posted.entries_a)
    for fmt, path in saved.items():
        assert path.suffix == f".{fmt}"
        rows = rows_of(path.read_bytes(), fmt, ENTRY_COLUMNS)
        assert [(number(r["sequence"], fmt), number(r["amount"], fmt)) for r in rows] == expected, fmt
