"""The inmate statement and the account register on the real database: the statement of an inmate's savings is
the register of that account with a header — the same lines and running balances on the pages and through the
API, whatever part of a period is asked for — and its SQL holds only the bounds a request gives (an
``:x IS NULL OR …`` per optional bound made PostgreSQL evaluate the lapas policies on every line)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from infra.db.roles import RoleUrls
from services.ledger.domain import accounts
from tests.integration.finance_auth_support import Workspace, workspace
from tests.integration.finance_read_support import TwoLapas, two_lapas

pytestmark = pytest.mark.integration

OPTIONAL_BOUND = re.compile(r"IS (NOT )?NULL (OR|AND)", re.IGNORECASE)


@pytest.fixture(scope="module")
async def posted(database: RoleUrls, admin_db_url: str) -> TwoLapas:
    """Orders of two lapas (lapas B's inmate earned on 4 May and was paid out on 6 May)."""
    return await two_lapas(database, admin_db_url)


@pytest.fixture
async def ws(database: RoleUrls) -> AsyncIterator[Workspace]:
    """The workspace connected as the finance role."""
    async with workspace(database.finance) as made:
        yield made


@contextmanager
def statements_of(engine: AsyncEngine) -> Iterator[list[str]]:
    """The SQL ``engine`` sends while the block runs."""
    sent: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        sent.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", seen)
    try:
        yield sent
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", seen)


async def _pusat(ws: Workspace) -> httpx.AsyncClient:
    user, password = await ws.account("auditor_pusat")
    return await ws.signed_in(user, password)


async def _statement(client: httpx.AsyncClient, inmate: str, **bounds: str) -> dict[str, Any]:
    response = await client.get(f"/api/v1/inmates/{inmate}/statement", params=bounds)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def _rows(html: str, table: str) -> list[str]:
    """The text of each row of the page's table ``table`` (tags dropped)."""
    body = html.split(f'<table id="{table}">', 1)[1].split("</table>", 1)[0]
    return [re.sub(r"<[^>]+>", "|", row) for row in body.split("<tr>")[2:]]


async def test_the_statement_sends_only_the_bounds_given(posted: TwoLapas, ws: Workspace) -> None:
    client = await _pusat(ws)
    with statements_of(ws.db.engine) as sent:
        await _statement(client, posted.inmate_b)
        await _statement(client, posted.inmate_b, **{"from": "2026-05-05T00:00:00Z"})
        await _statement(client, posted.inmate_b, to="2026-05-05T00:00:00Z")
    ledger = [s for s in sent if "journal_lines" in s]
    assert ledger and not [s for s in ledger if OPTIONAL_BOUND.search(s)], ledger


async def test_a_statement_over_part_of_its_time_opens_and_closes_at_the_running_balance(
    posted: TwoLapas, ws: Workspace
) -> None:
    client = await _pusat(ws)
    whole = await _statement(client, posted.inmate_b)
    earned = [p for p in whole["postings"] if p["credit"]]
    assert earned and whole["postings"][-1]["debit"] == 1_000, "earned on 4 May, 1,000 paid out on 6 May"
    total = sum(p["credit"] for p in earned)

    before = await _statement(client, posted.inmate_b, to="2026-05-05T00:00:00Z")
    after = await _statement(client, posted.inmate_b, **{"from": "2026-05-05T00:00:00Z"})
    later = await _statement(client, posted.inmate_b, **{"from": "2026-05-07T00:00:00Z"})

    assert whole["opening_balance"] == 0 and whole["closing_balance"] == total - 1_000
    assert before["postings"] == whole["postings"][:-1] and before["closing_balance"] == total
    assert after["opening_balance"] == total and after["postings"] == whole["postings"][-1:]
    assert after["closing_balance"] == total - 1_000
    assert later["opening_balance"] == later["closing_balance"] == total - 1_000 and later["postings"] == []


async def test_the_statement_page_shows_the_lines_of_the_savings_register(posted: TwoLapas, ws: Workspace) -> None:
    client = await _pusat(ws)
    statement = (await client.get(f"/inmates/{posted.inmate_b}")).text
    register = (await client.get(f"/accounts/{accounts.inmate_savings(posted.inmate_b)}")).text

    lines, registered = _rows(statement, "statement"), _rows(register, "register")
    assert len(lines) == len(registered) >= 3, "opening, each posting, closing"
    assert [_last_amount(r) for r in lines] == [_last_amount(r) for r in registered]


def _last_amount(row: str) -> str:
    """The digits of a row's last cell (the balance; the register adds its side, D or K)."""
    cells = [c for c in row.split("|") if c.strip()]
    return re.sub(r"\D", "", cells[-1])
