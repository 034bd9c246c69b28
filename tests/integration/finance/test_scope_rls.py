"""Row-level security on what the finance workspace reads (migration finance_0002), on the real database: under
lapas A's scope a raw query — no filter of ours — returns A's rows and none of lapas B's; no scope returns
nothing; ``'*'`` returns both, and alone an entry of no order and no inmate; the finance role never reads a raw
webhook body; the other roles are not scoped."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.exc import ProgrammingError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from infra.db.engine import make_engine
from infra.db.roles import RoleUrls
from services.finance.scope import StaticViewer, enter_scope
from services.ledger import settle
from services.ledger.adapters.journal_repo import post_entries
from services.ledger.domain import accounts
from services.ledger.domain.accounts import Side
from services.ledger.domain.corrections import CorrectionKind
from services.ledger.domain.journal import EntryKind, JournalEntry, Line
from services.ledger.domain.settlements import Settlement
from services.ledger.outbound import LedgerTopics
from tests.integration.finance_read_support import BUYER, LAPAS_A, LAPAS_B, TwoLapas, orderless_adjustment, two_lapas
from tests.integration.ledger_support import (
    Batch,
    completed,
    ledger_uow,
    new_inmate,
    new_order_key,
    new_processor,
    post,
    settled,
)

pytestmark = pytest.mark.integration

SCOPED = ("order_facts", "journal_entries", "journal_lines", "accounts", "account_balances", "split_policies")


@pytest.fixture(scope="module")
async def posted(database: RoleUrls, admin_db_url: str) -> TwoLapas:
    """Orders of two lapas on the session database."""
    return await two_lapas(database, admin_db_url)


@pytest.fixture
async def finance(database: RoleUrls) -> AsyncIterator[AsyncEngine]:
    """An engine connected as the finance workspace's role."""
    engine = make_engine(database.finance, pool_size=2)
    yield engine
    await engine.dispose()


async def _rows(conn: AsyncConnection) -> dict[str, set[str]]:
    """What a raw query of each scoped table returns: a text key per row."""
    keys = {
        "order_facts": "order_key || '@' || lapas_id",
        "journal_entries": "sequence::text",
        "journal_lines": "sequence::text",
        "accounts": "code",
        "account_balances": "account",
        "split_policies": "lapas_id",
    }
    out = {}
    for table in SCOPED:
        found = await conn.execute(text(f"SELECT {keys[table]} FROM ledger.{table}"))
        out[table] = {str(k) for k in found.scalars()}
    return out


async def _scoped_rows(engine: AsyncEngine, lapas: str | None) -> dict[str, set[str]]:
    async with engine.connect() as conn, conn.begin():
        await enter_scope(conn, StaticViewer("t", "auditor_lapas" if lapas else "auditor_pusat", lapas))
        return await _rows(conn)


async def test_a_raw_query_under_lapas_a_returns_no_row_of_lapas_b(posted: TwoLapas, finance: AsyncEngine) -> None:
    seen = await _scoped_rows(finance, LAPAS_A)

    assert f"{posted.order_a}@{LAPAS_A}" in seen["order_facts"]
    assert all(row.endswith(f"@{LAPAS_A}") for row in seen["order_facts"])
    assert {str(s) for s in posted.entries_a} <= seen["journal_entries"]
    assert not {str(s) for s in posted.entries_b} & seen["journal_entries"], "B's entries and B's payout"
    assert seen["journal_lines"] <= seen["journal_entries"], "a line shows only with its entry"
    assert not {str(s) for s in posted.entries_b} & seen["journal_lines"]
    assert accounts.inmate_savings(posted.inmate_a) in seen["accounts"]
    assert accounts.inmate_savings(posted.inmate_b) not in seen["accounts"]
    assert f"revenue:sales:{LAPAS_A}" in seen["accounts"] and f"revenue:sales:{LAPAS_B}" not in seen["accounts"]
    # Per-lapas accounts (finance_0007): A's bank, receivable and fees are A's, B's are not even listed.
    assert accounts.bank(LAPAS_A) in seen["accounts"] and accounts.bank(LAPAS_A) in seen["account_balances"]
    assert accounts.bank(LAPAS_B) not in seen["accounts"] and accounts.bank(LAPAS_B) not in seen["account_balances"]
    assert all(accounts.account_lapas(a) in (LAPAS_A, None) for a in seen["accounts"])
    assert f"revenue:sales:{LAPAS_A}" in seen["account_balances"]
    assert not any(LAPAS_B in a or posted.inmate_b in a for a in seen["account_balances"])
    assert seen["split_policies"] == {LAPAS_A}


async def test_an_entry_of_no_order_is_for_every_lapas_only(
    posted: TwoLapas, finance: AsyncEngine, database: RoleUrls
) -> None:
    _, sequence = await orderless_adjustment(database)
    lapas_a, everything = await _scoped_rows(finance, LAPAS_A), await _scoped_rows(finance, None)

    assert str(sequence) not in lapas_a["journal_entries"] and str(sequence) not in lapas_a["journal_lines"]
    assert {str(s) for s in posted.entries_a} <= lapas_a["journal_lines"], "the scope itself works"
    assert str(sequence) in everything["journal_entries"] and str(sequence) in everything["journal_lines"]
    # its legacy global codes (before per-lapas accounts) name no lapas: listed for everyone, totalled for '*' only
    assert "clearing:suspense" in lapas_a["accounts"] and "clearing:suspense" not in lapas_a["account_balances"]


async def test_no_scope_sees_nothing_and_every_lapas_sees_both(posted: TwoLapas, finance: AsyncEngine) -> None:
    async with finance.connect() as conn, conn.begin():
        unscoped = await _rows(conn)
    everything = await _scoped_rows(finance, None)

    assert all(not rows for table, rows in unscoped.items() if table != "accounts"), unscoped
    assert (
        accounts.bank(LAPAS_A) not in unscoped["accounts"]
        and accounts.inmate_savings(posted.inmate_a) not in unscoped["accounts"]
    )
    assert {str(s) for s in posted.entries_a + posted.entries_b} <= everything["journal_entries"]
    assert {f"{posted.order_a}@{LAPAS_A}", f"{posted.order_b}@{LAPAS_B}"} <= everything["order_facts"]


async def test_the_scope_ends_with_the_transaction(posted: TwoLapas, finance: AsyncEngine) -> None:
    async with finance.connect() as conn:
        async with conn.begin():
            await enter_scope(conn, StaticViewer("t", "auditor_pusat", None))
            assert (await conn.execute(text("SELECT count(*) FROM ledger.order_facts"))).scalar_one() >= 2
        async with conn.begin():
            assert (await conn.execute(text("SELECT count(*) FROM ledger.order_facts"))).scalar_one() == 0


async def test_the_finance_role_reads_deliveries_redacted_and_scoped_never_raw(
    posted: TwoLapas, finance: AsyncEngine
) -> None:
    async with finance.connect() as conn:
        with pytest.raises(ProgrammingError, match="permission denied"):
            async with conn.begin():
                await conn.execute(text("SELECT body FROM gateway.raw_deliveries LIMIT 1"))
        async with conn.begin():
            await enter_scope(conn, StaticViewer("t", "auditor_lapas", LAPAS_A))
            rows = (
                await conn.execute(text("SELECT order_key, body::text AS body FROM finance.deliveries_redacted"))
            ).all()
    assert posted.order_a in {r.order_key for r in rows}
    assert posted.order_b not in {r.order_key for r in rows}
    assert all(BUYER not in (r.body or "") for r in rows)
    assert any("[redacted]" in (r.body or "") for r in rows if r.order_key == posted.order_a)


async def test_the_service_and_the_auditor_are_not_scoped(posted: TwoLapas, database: RoleUrls) -> None:
    for url in (database.service, database.auditor):
        engine = make_engine(url, pool_size=1)
        try:
            async with engine.connect() as conn:
                keys = set((await conn.execute(text("SELECT order_key FROM ledger.order_facts"))).scalars())
        finally:
            await engine.dispose()
        assert {posted.order_a, posted.order_b} <= keys


async def _settle(urls: RoleUrls, settlement: Settlement) -> int:
    """Propose (ani) and approve (budi) ``settlement``; the sequence of its entry."""
    engine, at = make_engine(urls.service, pool_size=1), datetime.now(UTC)
    try:
        async with engine.begin() as conn:
            uow = ledger_uow(conn)
            proposed = await settle.propose(uow, settlement, reason=None, proposed_by="ani", at=at)
            done = await settle.approve(uow, LedgerTopics(), proposed.proposal.proposal_id, approved_by="budi", at=at)
    finally:
        await engine.dispose()
    return done.sequence


def _billing() -> str:
    return f"{uuid.uuid4().int % 10**15:015d}"


async def test_a_lapas_sees_its_settlements_and_materials_of_no_order_never_the_other_lapas(
    posted: TwoLapas, finance: AsyncEngine, database: RoleUrls
) -> None:
    """finance_0006: an entry of no order belongs to the one lapas whose accounts it moves (a PNBP deposit, a use
    of production capital, a payment to a supplier of that lapas alone, an adjustment of its unallocated
    clearing); one moving two lapas' accounts stays with '*'."""
    supplier, worker = f"sup-{uuid.uuid4().hex[:8]}", new_inmate()
    only_a = [Batch("B-CPN-WDW-1", "CPN-WDW-001", LAPAS_A, 1, 120_000, 40_000, supplier, ((worker, 1),))]
    key, at = new_order_key(), datetime(2026, 5, 4, 10, tzinfo=UTC)
    service = make_engine(database.service, pool_size=1)
    try:
        assert await post(service, new_processor(), [completed(key, only_a, at), settled(key, 120_000, at)]) == []
    finally:
        await service.dispose()
    deposit = {
        lapas: await _settle(database, Settlement(CorrectionKind.PNBP_DEPOSIT, lapas, 100, _billing(), "A" * 16))
        for lapas in (LAPAS_A, LAPAS_B)
    }
    capital = {
        lapas: await _settle(database, Settlement(CorrectionKind.CAPITAL_USE, lapas, 100, f"buy-{uuid.uuid4().hex}"))
        for lapas in (LAPAS_A, LAPAS_B)
    }
    paid = await _settle(database, Settlement(CorrectionKind.SUPPLIER_PAYMENT, supplier, 100, "trf-1", lapas=LAPAS_A))
    unallocated = {lapas: accounts.unallocated_proceeds(lapas) for lapas in (LAPAS_A, LAPAS_B)}
    _, own = await orderless_adjustment(database, unallocated[LAPAS_A], accounts.suspense(LAPAS_A))
    _, across = await orderless_adjustment(database, unallocated[LAPAS_A], unallocated[LAPAS_B])

    a, b, everything = [await _scoped_rows(finance, lapas) for lapas in (LAPAS_A, LAPAS_B, None)]
    mine = {str(s) for s in (deposit[LAPAS_A], capital[LAPAS_A], paid, own)}
    theirs = {str(s) for s in (deposit[LAPAS_B], capital[LAPAS_B])}
    assert mine <= a["journal_entries"] and mine <= a["journal_lines"]
    assert not theirs & a["journal_entries"] and not theirs & a["journal_lines"]
    assert theirs <= b["journal_entries"] and not mine & b["journal_entries"]
    assert str(across) not in a["journal_entries"] | b["journal_entries"], "two lapas' accounts: '*' only"
    assert mine | theirs | {str(across)} <= everything["journal_entries"]
    materials = {lapas: accounts.production_materials(lapas) for lapas in (LAPAS_A, LAPAS_B)}
    assert materials[LAPAS_A] in a["accounts"] and materials[LAPAS_A] in a["account_balances"]
    assert materials[LAPAS_B] not in a["accounts"] and materials[LAPAS_B] not in a["account_balances"]
    assert accounts.supplier_payable(LAPAS_A, supplier) in a["account_balances"], "what A owes a supplier"
    assert accounts.supplier_payable(LAPAS_A, supplier) not in b["account_balances"]


async def test_a_lapas_sees_its_own_tax_accounts_never_the_other_lapas(
    posted: TwoLapas, finance: AsyncEngine, database: RoleUrls
) -> None:
    """finance_0008: output and input PPN, PPh 22 to claim back or borne as a cost, income tax and its payable are
    the lapas' accounts — listed, totalled and itemised for it alone (an entry of no order moving them is its)."""
    entries = {lapas: await _tax_entry(database, lapas) for lapas in (LAPAS_A, LAPAS_B)}
    a, b = await _scoped_rows(finance, LAPAS_A), await _scoped_rows(finance, LAPAS_B)
    for code in _TAX_CODES:
        mine, theirs = code.format(LAPAS_A), code.format(LAPAS_B)
        assert mine in a["accounts"] and mine in a["account_balances"], mine
        assert theirs not in a["accounts"] and theirs not in a["account_balances"], theirs
        assert theirs in b["account_balances"] and mine not in b["accounts"], theirs
    assert str(entries[LAPAS_A]) in a["journal_lines"] and str(entries[LAPAS_B]) not in a["journal_entries"]
    assert str(entries[LAPAS_B]) in b["journal_lines"] and str(entries[LAPAS_A]) not in b["journal_entries"]


_TAX_CODES = (
    "liability:ppn_output:{}",
    "asset:ppn_input:{}",
    "asset:pph22_reclaimable:{}",
    "expense:pph22_withheld:{}",
    "expense:income_tax:{}",
    "liability:income_tax_payable:{}",
)


async def _tax_entry(database: RoleUrls, lapas: str) -> int:
    """An entry of no order on ``lapas``' tax accounts only (10 rupiah each side), posted as the ledger posts."""
    debits, credits = _TAX_CODES[1:5], (_TAX_CODES[0], _TAX_CODES[5])
    lines = [Line(c.format(lapas), Side.DEBIT, 10) for c in debits] + [
        Line(c.format(lapas), Side.CREDIT, 20) for c in credits
    ]
    entry = JournalEntry(
        f"tax-scope:{lapas}:{uuid.uuid4().hex}",
        "e" * 64,
        EntryKind.ADJUSTMENT,
        "tax accounts of one lapas",
        datetime.now(UTC),
        tuple(lines),
    )
    service = make_engine(database.service, pool_size=1)
    try:
        async with service.begin() as conn:
            [committed] = (await post_entries(ledger_uow(conn), [(entry, "test")])).posted
    finally:
        await service.dispose()
    return committed.sequence


async def test_the_databases_account_lapas_is_the_charts(posted: TwoLapas, finance: AsyncEngine) -> None:
    """finance.account_lapas (finance_0007, finance_0008) answers what services.ledger.domain.accounts.account_lapas
    does, for every per-lapas kind of the chart and the legacy global codes (an inmate's account is placed by its
    orders, as before)."""
    every_kind = [
        f"{k.prefix}:{LAPAS_A}:owner" if k.within_lapas else f"{k.prefix}:{LAPAS_B}"
        for k in accounts.KINDS.values()
        if k.per_lapas
    ]
    codes = [
        *every_kind,
        accounts.bank(LAPAS_A),
        accounts.bank(LAPAS_B, "bri-escrow"),
        accounts.marketplace_receivable(LAPAS_A, "shopee"),
        accounts.pph22_prepaid(LAPAS_A),
        accounts.suspense(accounts.UNKNOWN_LAPAS),
        accounts.fee_expense(LAPAS_B, "commission_fee"),
        accounts.supplier_payable(LAPAS_A, "sup-x"),
        accounts.deduction_payable(LAPAS_B, "koperasi"),
        accounts.sales_revenue(LAPAS_A),
        accounts.production_materials(LAPAS_B),
        accounts.split_deduction_expense(LAPAS_A),
        "asset:bank:main",
        "asset:pph22_prepaid",
        "clearing:suspense",
        "asset:marketplace_receivable:shopee",
        "expense:marketplace_fee:commission_fee",
        "liability:supplier_payable:sup-never-owed",
    ]
    async with finance.connect() as conn:
        for code in codes:
            found = (await conn.execute(text("SELECT finance.account_lapas(:c)"), {"c": code})).scalar_one()
            assert found == accounts.account_lapas(code), code
        savings = accounts.inmate_savings(posted.inmate_a)
        found = (await conn.execute(text("SELECT finance.account_lapas(:c)"), {"c": savings})).scalar_one()
        assert found == accounts.account_lapas(savings, {posted.inmate_a: LAPAS_A}) == LAPAS_A
