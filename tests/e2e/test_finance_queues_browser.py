"""The work queues in a real browser (Debian's chromium through Playwright), served by uvicorn on a free loopback
port as ``karya serve finance`` builds it: the finance role's engine for reads, the service role's for the ledger
writer. A bendahara of lapas A allocates an order of A from its row's form, proposes the revert of the distribution
that posted, and is told by the page (not a 500) that approving their own proposal breaks ``four_eyes``; no page
logs a console error; each step is screenshotted.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import sync_playwright

from infra.db.engine import make_engine
from infra.db.roles import RoleUrls
from infra.db.unit_of_work import Database
from services.finance.app import SCHEMA, create_app
from services.finance.auth.passwords import generate_password, hash_password
from services.finance.auth.users import add_user
from services.finance.web.queues import install_ledger_writer
from services.ledger.outbound import LedgerTopics
from tests.e2e.finance_serving import serving
from tests.integration.finance.test_queues import LAPAS_A, Waiting, waiting_orders
from tests.integration.finance_auth_support import finance_settings

pytestmark = pytest.mark.integration


async def _treasurer(url: str) -> tuple[str, str]:
    engine = make_engine(url, pool_size=1)
    password = generate_password()
    try:
        async with Database(engine, SCHEMA).begin() as uow:
            user = await add_user(uow, f"web-bendahara-{password[:6]}", "bendahara", LAPAS_A, hash_password(password))
    finally:
        await engine.dispose()
    return user.name, password


@pytest.fixture(scope="module")
def served(database: RoleUrls) -> Iterator[str]:
    """The workspace with its ledger writer, served by uvicorn in a thread of this test (stopped at the end)."""
    engine, writer = make_engine(database.finance, pool_size=2), make_engine(database.service, pool_size=2)

    async def stop() -> None:
        await engine.dispose()
        await writer.dispose()

    schemas = {"ledger": "ledger", "orders": "orders"}
    app = create_app(engine, finance_settings(), schemas=schemas, after_stop=stop)
    install_ledger_writer(app, writer, LedgerTopics(), schemas)
    with serving(app) as url:
        yield url


def test_a_bendahara_allocates_and_cannot_approve_their_own_revert(
    database: RoleUrls, served: str, tmp_path: Path
) -> None:
    waiting: Waiting = asyncio.run(waiting_orders(database))
    name, password = asyncio.run(_treasurer(database.finance))
    executable = shutil.which("chromium")
    assert executable, "Debian's chromium is not installed: run `make browser` (a prerequisite of `make test`)"
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            page: Any = browser.new_context().new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(f"{served}/login")
            page.fill("input[name=username]", name)
            page.fill("input[name=password]", password)
            with page.expect_navigation():
                page.click("button[type=submit]")
            page.goto(f"{served}/queues?lang=en")
            row = page.locator("#unallocated tr", has_text=waiting.order_a)
            row.locator("input[name=batches]").fill(f"{waiting.batch_a}:2")
            with page.expect_navigation():
                row.locator("button[type=submit]").click()
            page.screenshot(path=str(tmp_path / "queues-allocated.png"), full_page=True)
            assert f"allocated {waiting.order_a}: posted" in page.locator("#message").inner_text()

            page.fill("#revert input[name=posting_key]", f"{waiting.order_a}:distribution:{waiting.batch_a}")
            page.fill("#revert input[name=reason]", "wrong batch")
            with page.expect_navigation():
                page.click("#revert button[type=submit]")
            proposal = page.locator("#proposals tr", has_text=name).last
            with page.expect_navigation():
                proposal.locator("form[action$='/approve'] button").click()
            page.screenshot(path=str(tmp_path / "queues-four-eyes.png"), full_page=True)
            assert "four_eyes" in page.locator("#message.error").inner_text()
        finally:
            browser.close()
    assert errors == []
