"""The work queues in a real browser (Debian's chromium through Playwright), served by uvicorn on a free loopback
port as ``karya serve finance`` builds it: the finance role's engine for reads, the service role's for the ledger
writer. A bendahara of lapas A allocates an order of A from its row's form, proposes the revert of the distribution
that posted, and is told by the page (not a 500) that approving their own proposal breaks ``four_eyes``; no page
logs a console error; each step is screenshotted.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.db.engine import make_engine
from infra.db.roles import RoleUrls
from services.finance.app import create_app
from services.finance.web.queues import install_ledger_writer
from services.ledger.outbound import LedgerTopics
from tests.e2e.finance_serving import chromium, new_account, serving, signed_in_page
from tests.integration.finance.test_queues import LAPAS_A, Waiting, waiting_orders
from tests.integration.finance_auth_support import finance_settings

pytestmark = pytest.mark.integration


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
    name, password = asyncio.run(new_account(database.finance, "bendahara", LAPAS_A))
    errors: list[str] = []
    with chromium() as browser:
        page = signed_in_page(browser.new_context(), served, name, password, errors)
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
    assert errors == []
