"""An entry of no order and no inmate (an adjustment of no order) is for every-lapas viewers only (the entries'
policy of migration finance_0002): an auditor of one lapas gets a 404 for it through the API and the journal page,
finds it in no list, and a raw query under their scope returns neither it nor its lines; ``'*'`` sees it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import text

from infra.db.engine import make_engine
from infra.db.roles import RoleUrls
from services.finance.scope import StaticViewer, enter_scope
from services.ledger import corrections
from services.ledger.outbound import LedgerTopics
from tests.integration.finance_auth_support import Workspace, workspace
from tests.integration.finance_read_support import LAPAS_A, TwoLapas, two_lapas
from tests.integration.ledger_support import ledger_uow

pytestmark = pytest.mark.integration

ADJUSTMENT = {
    "memo": "a fee of no order",
    "lines": [
        {"account": "expense:marketplace_fee:unitemised", "debit": 700},
        {"account": "clearing:suspense", "credit": 700},
    ],
}


@pytest.fixture(scope="module")
async def orderless(database: RoleUrls, admin_db_url: str) -> tuple[TwoLapas, str, int]:
    """Orders of two lapas and an approved adjustment of no order: its posting key and sequence."""
    posted = await two_lapas(database, admin_db_url)
    engine, at = make_engine(database.service, pool_size=1), datetime.now(UTC)
    try:
        async with engine.begin() as conn:
            uow = ledger_uow(conn)
            proposal = await corrections.propose_adjustment(
                uow, ADJUSTMENT, "test", reason="no order", proposed_by="ani", at=at
            )
            done = await corrections.approve(uow, LedgerTopics(), proposal.proposal_id, approved_by="budi", at=at)
    finally:
        await engine.dispose()
    assert done.proposal.draft.order_key is None
    return posted, done.posting_key, done.sequence


@pytest.fixture
async def ws(database: RoleUrls) -> AsyncIterator[Workspace]:
    """The workspace connected as the finance role."""
    async with workspace(database.finance) as made:
        yield made


async def _client(ws: Workspace, role: str, lapas: str | None = None) -> httpx.AsyncClient:
    user, password = await ws.account(role, lapas)
    return await ws.signed_in(user, password)


async def test_an_auditor_of_one_lapas_cannot_see_an_entry_of_no_order(
    orderless: tuple[TwoLapas, str, int], ws: Workspace
) -> None:
    _, key, sequence = orderless
    client = await _client(ws, "auditor_lapas", LAPAS_A)

    assert (await client.get(f"/api/v1/entries/{sequence}")).status_code == 404
    listed = await client.get("/api/v1/entries", params={"posting_key": key})
    assert listed.status_code == 200 and listed.json()["entries"] == []
    on_suspense = await client.get("/api/v1/entries", params={"account": "clearing:suspense", "limit": 500})
    assert sequence not in {e["sequence"] for e in on_suspense.json()["entries"]}
    assert (await client.get(f"/journal/{sequence}")).status_code == 404
    journal = await client.get("/journal", params={"posting_key": key})
    assert journal.status_code == 200 and f'href="/journal/{sequence}"' not in journal.text

    everyone = await _client(ws, "auditor_pusat")
    assert (await everyone.get(f"/api/v1/entries/{sequence}")).json()["posting_key"] == key
    assert f'href="/journal/{sequence}"' in (await everyone.get("/journal", params={"posting_key": key})).text


async def test_a_raw_query_under_one_lapas_returns_no_entry_of_no_order(
    orderless: tuple[TwoLapas, str, int], database: RoleUrls
) -> None:
    posted, _, sequence = orderless
    engine = make_engine(database.finance, pool_size=1)
    query = {
        "entries": "SELECT sequence FROM ledger.journal_entries WHERE order_key IS NULL",
        "lines": "SELECT sequence FROM ledger.journal_lines",
    }
    try:
        seen: dict[str | None, dict[str, set[int]]] = {}
        for lapas in (LAPAS_A, None):
            async with engine.connect() as conn, conn.begin():
                await enter_scope(conn, StaticViewer("t", "auditor_lapas" if lapas else "auditor_pusat", lapas))
                seen[lapas] = {name: set((await conn.execute(text(sql))).scalars()) for name, sql in query.items()}
    finally:
        await engine.dispose()

    assert sequence not in seen[LAPAS_A]["entries"] and sequence not in seen[LAPAS_A]["lines"]
    assert set(posted.entries_a) <= seen[LAPAS_A]["lines"], "the scope itself works"
    assert sequence in seen[None]["entries"] and sequence in seen[None]["lines"]
