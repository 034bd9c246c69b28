"""Reports per lapas and period on the real database (docs/accounting.md, "Reports per lapas", worked example).

Scenario (E) of test_settle.py — tangerang sells five mats for 300,000 on 3 November 2026 (fees 15,000, PPh 22
1,500, net 281,000, so 2,500 waits in suspense; material 60,000 to sup-pandan; PNBP 110,500, premi 33,150, capital
77,350) — then, this month, a PNBP deposit of 60,000 (proposed by ani, approved by budi) and a savings payout of
10,000. Every report of ``karya ledger report`` for November and for this month, to the rupiah."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.integration.ledger.test_corrections import karya
from tests.integration.ledger.test_settle import proposal_of, scenario_e
from tests.integration.ledger_support import LedgerDatabase, as_superuser, new_inmate, run_payout

pytestmark = pytest.mark.integration

BILLING, NTPN = "820261203000777", "9Z8Y7X6W5V4U3T2S"


async def report(db: LedgerDatabase, name: str, period: str, fmt: str = "json", *more: str) -> Any:
    result = await karya(
        db.urls, None, "report", name, "--lapas", "tangerang", "--period", period, "--format", fmt, *more
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.output) if fmt == "json" else result.output


def amounts(data: dict[str, Any]) -> dict[str, int]:
    return {(r["account"] or r["line"]): r["amount"] for r in data["rows"]}


async def test_reports_of_tangerang_for_november_and_this_month(own_database: LedgerDatabase) -> None:
    db, inmate = own_database, new_inmate()
    await as_superuser(
        db.admin_url,
        "INSERT INTO orders.lapas VALUES ('tangerang', 'tangerang', 'Kota', 'Banten') ON CONFLICT DO NOTHING",
    )
    await scenario_e(db, inmate)
    pnbp = ("settle", "pnbp", "propose", "tangerang", "60000", "--billing-code", BILLING, "--ntpn", NTPN)
    proposed = await karya(db.urls, "ani", *pnbp)
    assert proposed.exit_code == 0, proposed.output
    assert (await karya(db.urls, "budi", "settle", "pnbp", "approve", proposal_of(proposed.output))).exit_code == 0
    assert (await run_payout(db.urls, inmate, 10_000, "p-stmt-1")).exit_code == 0
    now = datetime.now(ZoneInfo("Asia/Jakarta")).strftime("%Y-%m")  # tangerang (Banten) counts in WIB
    assert now > "2026-11"

    income = await report(db, "income", "2026-11")
    assert income["zone"] == "Asia/Jakarta" and income["starts_at"] == "2026-11-01T00:00:00+07:00"
    assert income["as_of"] == "2026-11-30T23:59:59.999999+07:00" and income["closed_by"] is None
    data = income["data"]
    assert (data["revenue"], data["expenses"], data["pnbp_share"]) == (300_000, 108_150, 110_500)
    assert (data["result"], data["appropriated"], data["unappropriated"]) == (81_350, 77_350, 4_000)
    assert [(r["section"], r["account"], r["bas_code"]) for r in data["rows"] if r["section"] == "appropriation"] == [
        ("appropriation", "expense:capital_allocation:tangerang", "311211")
    ]

    sheet = (await report(db, "balance-sheet", "2026-11"))["data"]
    assert amounts(sheet) == {
        "asset:bank:tangerang:main": 281_000,
        "asset:marketplace_receivable:tangerang:shopee": 0,
        "asset:pph22_prepaid:tangerang": 1_500,
        "liability:inmate_savings:" + inmate: 33_150,
        "liability:pnbp_payable:tangerang": 110_500,
        "liability:supplier_payable:tangerang:sup-pandan": 60_000,
        "clearing:suspense:tangerang": -2_500,
        "clearing:undistributed_proceeds:tangerang": 0,
        "equity:production_capital:tangerang": 77_350,
        "result of earlier periods": 0,
        "result of the period": 4_000,
    }
    assert (sheet["assets"], sheet["liabilities"], sheet["equity"], sheet["period_result"]) == (
        282_500,
        201_150,
        77_350,
        4_000,
    )
    assert sheet["balanced"] is True

    dist = (await report(db, "distribution", "2026-11"))["data"]
    assert [(r["section"], r["amount"]) for r in dist["rows"]] == [
        ("sales", 300_000),
        ("deductions", 15_000),
        ("deductions", 1_500),
        ("suppliers", 60_000),
        ("PNBP", 110_500),
        ("premi", 33_150),
        ("capital", 77_350),
        ("not distributed", 2_500),
    ]

    # this month: the deposit and the payout, against what November left
    [owed] = (await report(db, "pnbp", now))["data"]
    assert {k: owed[k] for k in ("opening", "accrued", "reversed", "deposited", "balance")} == {
        "opening": 110_500,
        "accrued": 0,
        "reversed": 0,
        "deposited": 60_000,
        "balance": 50_500,
    }
    [premi] = (await report(db, "premi", now))["data"]
    assert (premi["inmate_id"], premi["opening"], premi["paid_out"], premi["balance"]) == (
        inmate,
        33_150,
        10_000,
        23_150,
    )
    [supplier] = (await report(db, "suppliers", "2026-11"))["data"]
    assert (supplier["supplier_id"], supplier["accrued"], supplier["paid"], supplier["balance"]) == (
        "sup-pandan",
        60_000,
        0,
        60_000,
    )
    december = (await report(db, "balance-sheet", now))["data"]
    assert december["balanced"] is True and december["period_result"] == 0
    assert amounts(december)["asset:bank:tangerang:main"] == 281_000 - 60_000 - 10_000
    assert amounts(december)["result of earlier periods"] == 4_000

    # CSV: one row per line, each with the lapas, the period and its BAS code, to re-key
    rows = list(csv.DictReader(io.StringIO(await report(db, "balance-sheet", "2026-11", "csv"))))
    bank = next(r for r in rows if r["Account"] == "asset:bank:tangerang:main")
    assert bank == {
        "Lapas": "tangerang",
        "Period": "2026-11",
        "Section": "assets",
        "Line": "bank",
        "Account": "asset:bank:tangerang:main",
        "BAS code": "111211",
        "BAS status": "to_confirm",
        "Amount": "281000",
    }
    table = await report(db, "balance-sheet", "2026-11", "table")
    assert "balanced" in table and "NOT BALANCED" not in table
    for name, shown in (
        ("income", "Rp 77.350"),
        ("distribution", "Rp 2.500"),
        ("premi", inmate),
        ("suppliers", "sup-"),
    ):
        printed = await report(db, name, "2026-11", "table")
        assert f"{name} of tangerang, 2026-11 (Asia/Jakarta, open)" in printed and shown in printed, printed
    assert "Rp 50.500" in await report(db, "pnbp", now, "table")

    unknown = await karya(db.urls, None, "report", "income", "--lapas", "nowhere", "--period", "2026-11")
    assert unknown.exit_code == 1 and "the catalogue has no lapas 'nowhere'" in unknown.output
    bad = await karya(db.urls, None, "report", "income", "--lapas", "tangerang", "--period", "2026-13")
    assert bad.exit_code == 2
