"""The payouts page over HTTP on the real database: a bendahara of lapas A sees A's inmates with savings (not B's),
pays out part of one (the payout use case posts the entry, the balance drops), is refused above the savings with
the rule named on the page, gets 404 for an inmate of lapas B; an auditor gets 403, a form without its CSRF token
403; the payout and the refusal are in the audit log, and so is a payout that fails or whose outcome row is lost
(its attempt is on the log before the ledger's transaction starts). Only a bendahara's navigation links the page."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from infra.db.engine import make_engine
from infra.db.roles import RoleUrls
from services.finance.auth import audit
from services.finance.web.queues import install_ledger_writer
from services.ledger.adapters.journal_repo import normal_balances
from services.ledger.domain import accounts
from services.ledger.domain.postings import payout_key
from services.ledger.outbound import LedgerTopics
from services.ledger.payouts import pay_out
from tests.integration.finance_auth_support import Workspace, csrf_of, workspace
from tests.integration.finance_read_support import LAPAS_A, TwoLapas, two_lapas
from tests.integration.ledger_support import ledger_uow

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def posted(database: RoleUrls, admin_db_url: str) -> TwoLapas:
    """Orders of two lapas (each inmate with savings) on the session database."""
    return await two_lapas(database, admin_db_url)


@dataclass(frozen=True)
class Site:
    """The workspace with its ledger writer installed, and the service-role engine the writer uses."""

    ws: Workspace
    service: AsyncEngine


@pytest.fixture
async def site(database: RoleUrls) -> AsyncIterator[Site]:
    """The workspace as the finance role, writing the ledger as the composition root installs it."""
    engine = make_engine(database.service, pool_size=2)
    try:
        async with workspace(database.finance) as ws:
            install_ledger_writer(ws.app, engine, LedgerTopics(), {"ledger": "ledger", "orders": "orders"})
            yield Site(ws, engine)
    finally:
        await engine.dispose()


async def _client(ws: Workspace, role: str) -> tuple[httpx.AsyncClient, str, str]:
    """A signed-in client of a new ``role`` account of lapas A, its name and the payouts page's CSRF token."""
    user, password = await ws.account(role, LAPAS_A)
    client = await ws.signed_in(user, password)
    page = await client.get("/payouts")
    assert page.status_code == 200, page.text
    return client, user.name, csrf_of(page.text)


async def _savings(engine: AsyncEngine, inmate: str) -> int:
    account = accounts.inmate_savings(inmate)
    async with engine.connect() as conn:
        return (await normal_balances(ledger_uow(conn), [account]))[account]


async def _lines(engine: AsyncEngine, posting_key: str) -> set[tuple[str, str, int]]:
    """The lines (account, side, amount) of the journal entry posted under ``posting_key``."""
    sql = (
        "SELECT l.account, l.side, l.amount FROM ledger.journal_lines l JOIN ledger.journal_entries e "
        "USING (sequence) WHERE e.posting_key = :k"
    )
    async with engine.connect() as conn:
        return {(r.account, r.side, int(r.amount)) for r in await conn.execute(text(sql), {"k": posting_key})}


def _message(response: httpx.Response, kind: str) -> str:
    """The page's message of ``kind`` (``done`` or ``error``); the page itself answers 200."""
    assert response.status_code == 200, response.text
    found = re.search(rf'<p id="message" class="{kind}"[^>]*>([^<]*)</p>', response.text)
    assert found is not None, response.text
    return found.group(1)


async def test_a_bendahara_pays_out_part_of_the_savings_of_an_inmate_of_their_lapas(
    posted: TwoLapas, site: Site
) -> None:
    ws, service = site.ws, site.service
    client, name, token = await _client(ws, "bendahara")
    listed = (await client.get("/payouts")).text
    assert f'id="inmate-{posted.inmate_a}"' in listed and posted.inmate_b not in listed
    before = await _savings(service, posted.inmate_a)
    assert before > 1_000

    form = {"csrf_token": token, "inmate_id": posted.inmate_a, "payout_id": "REL-WEB-1", "amount": "1000"}
    done = _message(await client.post("/payouts", data=form), "done")
    assert f"paid 1,000 to {posted.inmate_a}" in done and f"savings now {before - 1_000:,}" in done
    assert await _savings(service, posted.inmate_a) == before - 1_000
    key = payout_key(posted.inmate_a, "REL-WEB-1")
    assert await _lines(service, key) == {(accounts.inmate_savings(posted.inmate_a), "D", 1_000),
                                          (accounts.bank(LAPAS_A), "C", 1_000)}  # fmt: skip
    again = _message(await client.post("/payouts", data=form), "done")
    assert "already posted" in again and await _savings(service, posted.inmate_a) == before - 1_000

    over = form | {"payout_id": "REL-WEB-2", "amount": str(before)}
    assert "savings_never_negative" in _message(await client.post("/payouts", data=over), "error")
    assert await _savings(service, posted.inmate_a) == before - 1_000, "a refused payout writes nothing"
    unknown = form | {"inmate_id": "not an inmate"}
    assert "unknown inmate" in _message(await client.post("/payouts", data=unknown), "error")

    outside = form | {"inmate_id": posted.inmate_b, "payout_id": "REL-WEB-3"}
    assert (await client.post("/payouts", data=outside)).status_code == 404
    async with ws.db.read() as uow:
        seen = [(r.action, r.subject) for r in await audit.recent(uow, actor=name)]
    assert ("payout", key) in seen and ("payout_refused", payout_key(posted.inmate_a, "REL-WEB-2")) in seen
    assert not any(posted.inmate_b in s for _, s in seen), "a 404 writes nothing"


async def test_only_a_bendahara_with_the_token_pays_out(posted: TwoLapas, site: Site) -> None:
    ws, service = site.ws, site.service
    before = await _savings(service, posted.inmate_a)
    auditor, _, token = await _client(ws, "auditor_lapas")
    page = (await auditor.get("/payouts")).text
    assert posted.inmate_a in page and 'action="/payouts"' not in page
    form = {"csrf_token": token, "inmate_id": posted.inmate_a, "payout_id": "REL-AUD", "amount": "10"}
    assert (await auditor.post("/payouts", data=form)).status_code == 403

    treasurer, _, _ = await _client(ws, "bendahara")
    no_token = {k: v for k, v in form.items() if k != "csrf_token"}
    assert (await treasurer.post("/payouts", data=no_token)).status_code == 403
    assert await _savings(service, posted.inmate_a) == before


async def test_the_navigation_links_the_payouts_page_for_a_bendahara_only(posted: TwoLapas, site: Site) -> None:
    treasurer, _, _ = await _client(site.ws, "bendahara")
    auditor, _, _ = await _client(site.ws, "auditor_lapas")

    for url in ("/dashboard", "/queues", "/payouts"):
        assert '<a href="/payouts">' in (await treasurer.get(url)).text, url
        assert '<a href="/payouts">' not in (await auditor.get(url)).text, url


async def _audited(ws: Workspace, actor: str) -> list[tuple[str, str]]:
    async with ws.db.read() as uow:
        return [(r.action, r.subject) for r in await audit.recent(uow, actor=actor)]


async def test_a_payout_that_fails_in_the_ledger_is_on_the_audit_log(
    posted: TwoLapas, site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def crashing(*args: Any, **kwargs: Any) -> Any:
        await pay_out(*args, **kwargs)  # the entry is written, then the transaction fails
        raise RuntimeError("the ledger's connection was lost")

    monkeypatch.setattr("services.finance.web.payouts.pay_out", crashing)
    client, name, token = await _client(site.ws, "bendahara")
    before = await _savings(site.service, posted.inmate_a)
    form = {"csrf_token": token, "inmate_id": posted.inmate_a, "payout_id": "REL-FAIL", "amount": "10"}

    with pytest.raises(RuntimeError, match="connection was lost"):
        await client.post("/payouts", data=form)

    key = payout_key(posted.inmate_a, "REL-FAIL")
    assert await _savings(site.service, posted.inmate_a) == before and await _lines(site.service, key) == set()
    assert (await _audited(site.ws, name))[:2] == [("payout_failed", key), ("payout_attempt", key)]


async def test_a_payout_is_on_the_audit_log_before_the_ledger_commits(
    posted: TwoLapas, site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def finance_gone_after_the_ledger(conn: Any, user: Any, action: str, subject: str, **kw: Any) -> None:
        if action == "payout":  # the workspace stops between the ledger's commit and the outcome's row
            raise ConnectionError("the finance database went away")
        await real(conn, user, action, subject, **kw)

    real = audit.record
    monkeypatch.setattr(audit, "record", finance_gone_after_the_ledger)
    client, name, token = await _client(site.ws, "bendahara")
    form = {"csrf_token": token, "inmate_id": posted.inmate_a, "payout_id": "REL-CRASH", "amount": "10"}

    with pytest.raises(ConnectionError):
        await client.post("/payouts", data=form)

    key = payout_key(posted.inmate_a, "REL-CRASH")
    assert await _lines(site.service, key), "the ledger committed the payout"
    assert ("payout_attempt", key) in await _audited(site.ws, name), "and the log names who made it"
