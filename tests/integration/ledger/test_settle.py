"""Settling what is owed on the real database, through the commands a bendahara runs (docs/accounting.md, "Settling
what is owed", scenario (S)): a PNBP deposit and a supplier payment with their exact journals, a use of production
capital; proposed by one person and posted only when another approves; never above what is owed (at proposal, and at
approval against the balance then); one entry per billing code; and typed inmate payouts whose payee the inmate
registry confirms, without the ledger reading the registry."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from infra.db.engine import make_engine
from tests.integration.ledger.test_corrections import karya, lines
from tests.integration.ledger_support import (
    Batch,
    LedgerDatabase,
    as_superuser,
    assert_journal_sound,
    balances,
    completed,
    new_inmate,
    new_order_key,
    new_processor,
    post,
    settled,
)

pytestmark = pytest.mark.integration

AT = datetime(2026, 11, 3, 10, 0, tzinfo=UTC)
BILLING = "820261203000123"
NTPN = "0A1B2C3D4E5F6G7H"
PNBP, SUPPLIER = "liability:pnbp_payable:tangerang", "liability:supplier_payable:tangerang:sup-pandan"
CAPITAL, MATERIALS, BANK = (
    "equity:production_capital:tangerang",
    "asset:production_materials:tangerang",
    "asset:bank:tangerang:main",
)


def proposal_of(output: str) -> str:
    """The id in ``… proposal N (key) …``."""
    words = output.split()
    return words[words.index("proposal") + 1]


async def entry(conn: AsyncConnection, posting_key: str) -> Any:
    query = text("SELECT kind, memo FROM ledger.journal_entries WHERE posting_key = :k")
    return (await conn.execute(query, {"k": posting_key})).one_or_none()


async def scenario_e(db: LedgerDatabase, inmate: str) -> None:
    """Scenario (E)'s sale: tangerang owes PNBP 110,500, sup-pandan 60,000, capital 77,350, the inmate 33,150."""
    engine = make_engine(db.urls.service, pool_size=1)
    batch = Batch("B-TNG-1", "TNG-MAT-001", "tangerang", 5, 60_000, 12_000, "sup-pandan", ((inmate, 1),))
    key = new_order_key()
    try:
        envelopes = [
            completed(key, [batch], AT),
            settled(key, 300_000, AT, fees={"commission_fee": 15_000}, net=281_000),
        ]
        assert await post(engine, new_processor(), envelopes) == []
    finally:
        await engine.dispose()


async def test_pnbp_deposit_supplier_payment_and_capital_use_settle_what_is_owed(own_database: LedgerDatabase) -> None:
    urls, inmate = own_database.urls, new_inmate()
    await scenario_e(own_database, inmate)
    engine = make_engine(urls.service, pool_size=1)
    try:
        async with engine.connect() as conn:
            owed = await balances(conn, [PNBP, SUPPLIER, CAPITAL])
        assert owed == {PNBP: 110_500, SUPPLIER: 60_000, CAPITAL: 77_350}

        # PNBP: formats, over-payment, four eyes, then the deposit with its exact journal
        pnbp = ("settle", "pnbp", "propose", "tangerang")
        bad = await karya(urls, "ani", *pnbp, "110500", "--billing-code", "8202612030001", "--ntpn", NTPN)
        assert bad.exit_code == 1 and "(billing_code_format)" in bad.output, bad.output
        bad = await karya(urls, "ani", *pnbp, "110500", "--billing-code", BILLING, "--ntpn", "0A1B-2C3D")
        assert bad.exit_code == 1 and "(ntpn_format)" in bad.output, bad.output
        over = await karya(urls, "ani", *pnbp, "110501", "--billing-code", BILLING, "--ntpn", NTPN)
        assert over.exit_code == 1 and "(within_balance): 110,501 exceeds the balance 110,500" in over.output
        proposed = await karya(urls, "ani", *pnbp, "110500", "--billing-code", BILLING, "--ntpn", NTPN.lower())
        assert proposed.exit_code == 0, proposed.output
        pid = proposal_of(proposed.output)
        again = await karya(urls, "ani", *pnbp, "110500", "--billing-code", BILLING, "--ntpn", NTPN)
        assert again.exit_code == 0 and f"was already proposed as proposal {pid}" in again.output, again.output
        pending = json.loads((await karya(urls, None, "settle", "pending", "--format", "json")).output)
        assert [(p["proposal_id"], p["ntpn"], p["state"]) for p in pending] == [(int(pid), NTPN, "open")]
        own = await karya(urls, "ani", "settle", "pnbp", "approve", pid)
        assert own.exit_code == 1 and "(four_eyes)" in own.output, own.output
        wrong_kind = await karya(urls, "budi", "settle", "supplier", "approve", pid)
        assert wrong_kind.exit_code == 1 and "not a supplier_payment" in wrong_kind.output
        async with engine.connect() as conn:
            assert await entry(conn, f"pnbp_deposit:tangerang:{BILLING}") is None  # proposed is not posted
        approved = await karya(urls, "budi", "settle", "pnbp", "approve", pid)
        assert approved.exit_code == 0 and f"posted pnbp_deposit:tangerang:{BILLING}" in approved.output
        async with engine.connect() as conn:
            key = f"pnbp_deposit:tangerang:{BILLING}"
            assert await lines(conn, key) == [(PNBP, "D", 110_500), (BANK, "C", 110_500)]
            posted = await entry(conn, key)
            assert posted.kind == "pnbp_deposit" and posted.memo == (
                f"pnbp deposit (billing code {BILLING}, NTPN {NTPN}), reference {NTPN}; reason: PNBP deposit of "
                f"tangerang; proposed by ani, approved by budi (proposal {pid})"
            )
            assert (await balances(conn, [PNBP]))[PNBP] == 0
        once = await karya(urls, "citra", *pnbp, "1", "--billing-code", BILLING, "--ntpn", NTPN)
        assert once.exit_code == 1 and "(settle_once)" in once.output and "already posted" in once.output

        # supplier: two proposals that each fit, not together; the second approval sees the first
        supplier = ("settle", "supplier", "propose", "sup-pandan")
        first = await karya(urls, "ani", *supplier, "40000", "--lapas", "tangerang", "--reference", "TRF-1")
        second = await karya(urls, "citra", *supplier, "30000", "--lapas", "tangerang", "--reference", "TRF-2")
        assert first.exit_code == second.exit_code == 0, (first.output, second.output)
        assert (await karya(urls, "budi", "settle", "supplier", "approve", proposal_of(first.output))).exit_code == 0
        late = await karya(urls, "budi", "settle", "supplier", "approve", proposal_of(second.output))
        assert late.exit_code == 1 and "(within_balance): 30,000 exceeds the balance 20,000" in late.output
        async with engine.connect() as conn:
            assert await lines(conn, "supplier_payment:tangerang:sup-pandan:TRF-1") == [
                (SUPPLIER, "D", 40_000),
                (BANK, "C", 40_000),
            ]
            assert await entry(conn, "supplier_payment:tangerang:sup-pandan:TRF-2") is None
        withdrawn = await karya(urls, "citra", "withdraw", proposal_of(second.output), "--reason", "too much")
        assert withdrawn.exit_code == 0, withdrawn.output
        rest = await karya(urls, "ani", *supplier, "20000", "--lapas", "tangerang", "--reference", "TRF-3")
        generic = await karya(urls, "budi", "approve", proposal_of(rest.output))  # the corrections' approve checks too
        assert generic.exit_code == 0 and "posted supplier_payment:tangerang:sup-pandan:TRF-3" in generic.output

        # production capital buys materials: an asset for cash; the appropriation stays
        capital = ("settle", "capital", "propose", "tangerang")
        bought = await karya(urls, "ani", *capital, "50000", "--reference", "PO-1", "--reason", "kain 100 m")
        assert (await karya(urls, "budi", "settle", "capital", "approve", proposal_of(bought.output))).exit_code == 0
        more = await karya(urls, "ani", *capital, "30000", "--reference", "PO-2")
        assert more.exit_code == 1 and "exceeds the production capital not yet spent 27,350" in more.output
        async with engine.connect() as conn:
            assert await lines(conn, "capital_use:tangerang:PO-1") == [(MATERIALS, "D", 50_000), (BANK, "C", 50_000)]
            after = await balances(conn, [PNBP, SUPPLIER, CAPITAL, MATERIALS])
            assert after == {PNBP: 0, SUPPLIER: 0, CAPITAL: 77_350, MATERIALS: 50_000}
            await assert_journal_sound(conn)
        every = json.loads((await karya(urls, None, "settle", "pending", "--all", "--format", "json")).output)
        assert [p["state"] for p in every] == ["approved", "approved", "withdrawn", "approved", "approved"]
        table = await karya(urls, None, "settle", "pending", "--all")
        assert table.exit_code == 0 and "sup-pandan" in table.output and "withdrawn" in table.output
    finally:
        await engine.dispose()


async def test_typed_payouts_are_checked_against_the_registry_without_reading_it(own_database: LedgerDatabase) -> None:
    urls, inmate = own_database.urls, new_inmate()
    await scenario_e(own_database, inmate)  # the inmate's savings: 33,150
    await as_superuser(
        own_database.admin_url,
        "INSERT INTO orders.lapas VALUES ('tangerang', 'Lapas Tangerang', 'Tangerang', 'Banten')",
        f"INSERT INTO orders.inmate_registry VALUES ('{inmate}', 'tangerang', 'Andi  Wijaya', 'REG 2024/0077', NULL)",
    )
    payout = ("payout", inmate)
    mismatch = await karya(urls, "ani", *payout, "1000", "--payout-id", "ALW-0", "--type", "allowance",
                           "--registration-no", "REG-2024/0078")  # fmt: skip
    assert mismatch.exit_code == 1 and "(payee_is_registered)" in mismatch.output
    assert "0078" not in mismatch.output and "Wijaya" not in mismatch.output  # no personal data in the refusal
    wrong_name = await karya(urls, "ani", *payout, "1000", "--payout-id", "ALW-0", "--type", "allowance",
                             "--registration-no", "reg 2024/0077", "--payee-name", "Andi Wijoyo")  # fmt: skip
    assert wrong_name.exit_code == 1 and "(payee_is_registered)" in wrong_name.output
    unknown = await karya(urls, "ani", "payout", new_inmate(), "1", "--payout-id", "X", "--registration-no", "R1")
    assert unknown.exit_code == 1 and "(payee_is_registered)" in unknown.output
    early = await karya(urls, "ani", *payout, "1000", "--payout-id", "REL-0", "--registration-no", "REG 2024/0077")
    assert early.exit_code == 1 and "(payout_type_fits_custody)" in early.output

    allowance = ("1000", "--payout-id", "ALW-1", "--type", "allowance", "--registration-no", "reg2024/0077",
                 "--payee-name", " andi wijaya ")  # fmt: skip
    paid = await karya(urls, "ani", *payout, *allowance)
    assert paid.exit_code == 0 and "savings now 32,150" in paid.output, paid.output
    retry = await karya(urls, "ani", *payout, *allowance)
    assert retry.exit_code == 0 and "already posted" in retry.output

    await as_superuser(
        own_database.admin_url,
        f"UPDATE orders.inmate_registry SET released_on = DATE '{date.today()}' WHERE inmate_id = '{inmate}'",
    )
    late_allowance = await karya(urls, "ani", *payout, "1", "--payout-id", "ALW-2", "--type", "allowance",
                                 "--registration-no", "REG 2024/0077")  # fmt: skip
    assert late_allowance.exit_code == 1 and "(payout_type_fits_custody)" in late_allowance.output
    release = await karya(urls, "budi", *payout, "32150", "--payout-id", "REL-1", "--registration-no", "REG 2024/0077")
    assert release.exit_code == 0 and "savings now 0" in release.output, release.output

    engine = make_engine(urls.service, pool_size=1)
    try:
        async with engine.connect() as conn:
            memos = {
                r.posting_key: r.memo
                for r in await conn.execute(
                    text("SELECT posting_key, memo FROM ledger.journal_entries WHERE kind = 'payout' ORDER BY sequence")
                )
            }
            assert memos == {
                f"payout:{inmate}:ALW-1": f"savings payout ALW-1 (allowance) to {inmate}: 1000; paid by ani; "
                "payee confirmed by the inmate registry",
                f"payout:{inmate}:REL-1": f"savings payout REL-1 (release) to {inmate}: 32150; paid by budi; "
                "payee confirmed by the inmate registry",
            }
            assert await lines(conn, f"payout:{inmate}:REL-1") == [
                (f"liability:inmate_savings:{inmate}", "D", 32_150),
                (BANK, "C", 32_150),
            ]
            await assert_journal_sound(conn)
            with pytest.raises(DBAPIError, match="permission denied"):
                await conn.execute(text("SELECT full_name FROM orders.inmate_registry"))
    finally:
        await engine.dispose()
    auditor = make_engine(urls.auditor, pool_size=1)
    try:
        async with auditor.connect() as conn:
            with pytest.raises(DBAPIError, match="permission denied"):
                await conn.execute(text("SELECT ledger.registry_payee('WBP-000000', 'x', NULL, CURRENT_DATE)"))
    finally:
        await auditor.dispose()
