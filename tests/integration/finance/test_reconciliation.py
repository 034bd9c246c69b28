"""The reconciliation page and its queries (``services/finance/queries/reconciliation.py``) on a database of the
test's own: an order completed and settled is matched, one completed and never settled is unmatched (after the
overdue days), an order of another lapas is not shown, and a settlement whose completion never arrived is an
unmatched item only an every-lapas viewer sees (its lapas is not known)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from infra.db.engine import make_engine
from services.finance.queries import reconciliation
from services.finance.scope import ReadSchemas, StaticViewer, scoped_read
from tests.conftest import Services
from tests.integration import ledger_support as ledger
from tests.integration.finance_auth_support import Workspace, workspace

pytestmark = pytest.mark.integration

T = datetime(2026, 5, 4, 10, tzinfo=UTC)
NOW = datetime(2026, 6, 1, tzinfo=UTC)


def _batch(lapas: str) -> ledger.Batch:
    return ledger.Batch(
        f"B-{lapas}-1", "CPN-GLV-001", lapas, 2, 30_000, 8_000, "sup-benang", ((ledger.new_inmate(), 2),)
    )


@pytest.fixture
async def orders(services: Services) -> AsyncIterator[tuple[ledger.LedgerDatabase, dict[str, str]]]:
    """A database of its own with: settled and unsettled orders of cipinang, an unsettled order of kerobokan,
    and a settlement of an order never completed."""
    async with ledger.fresh_database(services.admin_url) as db:
        keys = {name: ledger.new_order_key() for name in ("settled", "unsettled", "other_lapas", "no_completion")}
        engine = make_engine(db.urls.service, pool_size=1)
        try:
            processor = ledger.new_processor()
            events = [
                ledger.completed(keys["settled"], [_batch("cipinang")], T),
                ledger.settled(keys["settled"], 60_000, T),
                ledger.completed(keys["unsettled"], [_batch("cipinang")], T),
                ledger.completed(keys["other_lapas"], [_batch("kerobokan")], T),
                ledger.settled(keys["no_completion"], 60_000, T),
            ]
            assert await ledger.post(engine, processor, events) == []
        finally:
            await engine.dispose()
        yield db, keys


@pytest.fixture
async def ws(orders: tuple[ledger.LedgerDatabase, dict[str, str]]) -> AsyncIterator[Workspace]:
    """The workspace on that database (the finance role)."""
    async with workspace(orders[0].urls.finance) as made:
        yield made


async def test_unsettled_completion_is_unmatched_and_settled_one_matched(
    orders: tuple[ledger.LedgerDatabase, dict[str, str]],
) -> None:
    db, keys = orders
    engine = make_engine(db.urls.finance, pool_size=1)
    period = reconciliation.Period("2026-05", "shopee", "Asia/Jakarta", NOW, overdue_days=14)
    try:
        viewer = StaticViewer("a", "auditor_lapas", "cipinang")
        async for reads in scoped_read(engine, viewer, ReadSchemas()):
            every = {o["order_key"]: o for o in await reconciliation.orders(reads, period, every=True)}
            unmatched = [o["order_key"] for o in await reconciliation.orders(reads, period)]
            [row] = await reconciliation.summary(reads, period)
            orphans = await reconciliation.settlements_without_completion(reads, period)
        async for reads in scoped_read(engine, StaticViewer("p", "auditor_pusat", None), ReadSchemas()):
            orphans_all = [s["order_key"] for s in await reconciliation.settlements_without_completion(reads, period)]
        early = reconciliation.Period("2026-05", None, "Asia/Jakarta", T, overdue_days=14)
        async for reads in scoped_read(engine, viewer, ReadSchemas()):
            not_late = {o["order_key"]: o["state"] for o in await reconciliation.orders(reads, early, every=True)}
    finally:
        await engine.dispose()

    assert set(every) == {keys["settled"], keys["unsettled"]}, "the other lapas' order is not visible"
    assert every[keys["settled"]]["state"] == "matched" and every[keys["settled"]]["open"] == 0
    assert every[keys["settled"]]["booked"] == every[keys["settled"]]["settled"] == 60_000
    assert every[keys["unsettled"]]["state"] == "unsettled" and every[keys["unsettled"]]["open"] == 60_000
    assert unmatched == [keys["unsettled"]]
    assert (row["channel"], row["month"], row["orders"], row["matched"], row["unmatched"]) == (
        "shopee",
        "2026-05",
        2,
        1,
        1,
    )
    assert (row["booked"], row["settled"], row["open"]) == (120_000, 60_000, 60_000)
    assert orphans == [], "a settlement without a completion has no lapas yet"
    assert orphans_all == [keys["no_completion"]]
    assert not_late[keys["unsettled"]] == "awaiting", "not unmatched before the overdue days have passed"


async def test_the_page_lists_the_unmatched_items_of_the_viewers_lapas(
    orders: tuple[ledger.LedgerDatabase, dict[str, str]], ws: Workspace
) -> None:
    _, keys = orders
    client = await ws.signed_in(*await ws.account("auditor_lapas", "cipinang"))
    page = await client.get("/reconciliation", params={"month": "2026-05", "lang": "en"})
    assert page.status_code == 200, page.text
    unmatched = page.text.split('id="unmatched"', 1)[1].split("</table>", 1)[0]
    assert keys["unsettled"] in unmatched and keys["settled"] not in unmatched
    assert keys["other_lapas"] not in page.text and keys["no_completion"] not in page.text
    pusat = await ws.signed_in(*await ws.account("auditor_pusat"))
    everything = (await pusat.get("/reconciliation", params={"month": "2026-05"})).text
    assert keys["other_lapas"] in everything and keys["no_completion"] in everything
    assert (await client.get("/reconciliation", params={"month": "2026-13"})).status_code == 422
