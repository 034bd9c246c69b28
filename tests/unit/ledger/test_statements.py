"""The shaping of the reports per lapas (services/ledger/domain/statements.py, summaries.py) and the BAS mapping
file, pure.

Properties over random balanced journals across several lapas: each lapas' balance sheet balances (assets =
liabilities + equity + result of the period), its income statement's unappropriated result is the balance sheet's
result of the period, and its distribution statement's legs sum to its sales."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from services.ledger.domain import accounts
from services.ledger.domain.bas import BasMappingError, parse_bas
from services.ledger.domain.statements import (
    Movement,
    balance_sheet,
    books,
    distribution_statement,
    income_statement,
    lapas_of_account,
    pnbp_statement,
    premi_register,
)
from services.ledger.domain.summaries import lapas_totals, tax_statement
from services.ledger.statements import BAS_FILE, bas_mapping

BAS = bas_mapping()
LAPAS = ("cipinang", "kerobokan", "tangerang")


def _accounts(lapas: str) -> list[str]:
    """Accounts an entry of ``lapas`` may touch: its own ones and an inmate's (in the entry's lapas)."""
    return [
        accounts.bank(lapas),
        accounts.marketplace_receivable(lapas, "shopee"),
        accounts.pph22_prepaid(lapas),
        accounts.suspense(lapas),
        accounts.fee_expense(lapas, "commission_fee"),
        accounts.inmate_savings("WBP-A1B2C3"),
        accounts.supplier_payable(lapas, "sup-kayu"),
        accounts.pnbp_payable(lapas),
        accounts.production_capital(lapas),
        accounts.production_materials(lapas),
        accounts.sales_revenue(lapas),
        accounts.material_cost_expense(lapas),
        accounts.pnbp_share_expense(lapas),
        accounts.inmate_premi_expense(lapas),
        accounts.capital_allocation_expense(lapas),
        accounts.undistributed_proceeds(lapas),
        accounts.ppn_output(lapas),
        accounts.ppn_input(lapas),
        accounts.pph22_reclaimable(lapas),
        accounts.pph22_expense(lapas),
        accounts.income_tax_expense(lapas),
        accounts.income_tax_payable(lapas),
    ]


@st.composite
def journals(draw: st.DrawFn) -> list[Movement]:
    """Balanced entries of random lapas, kinds and amounts, each before the period or inside it, as movements."""
    moves = []
    for _ in range(draw(st.integers(1, 25))):
        lapas = draw(st.sampled_from(LAPAS))
        kind = draw(st.sampled_from(["settlement", "distribution", "refund", "payout", "pnbp_deposit"]))
        before = draw(st.booleans())
        names = draw(st.lists(st.sampled_from(_accounts(lapas)), min_size=2, max_size=5, unique=True))
        amounts = draw(st.lists(st.integers(1, 10_000_000), min_size=len(names) - 1, max_size=len(names) - 1))
        debits = draw(st.integers(1, len(names) - 1))
        lines = list(zip(names, amounts, strict=False))
        # the first `debits` lines are debits, the rest credits; the last line closes the entry
        total = sum(a for _, a in lines[:debits]) - sum(a for _, a in lines[debits:])
        side_of_last = "C" if total >= 0 else "D"
        lines.append((names[-1], abs(total)))
        for i, (account, amount) in enumerate(lines):
            debit = i < debits or (i == len(lines) - 1 and side_of_last == "D")
            moves.append(Movement(account, lapas, kind, before, amount if debit else 0, 0 if debit else amount))
    return moves


@settings(max_examples=200, deadline=None)
@given(journals())
def test_each_lapas_balance_sheet_balances_and_the_distribution_legs_sum_to_sales(moves: list[Movement]) -> None:
    for lapas in LAPAS:
        book = books(moves, lapas)
        sheet = balance_sheet(book, BAS)
        assert sheet["assets"] == sheet["liabilities"] + sheet["equity"] + sheet["period_result"]
        assert sheet["balanced"] is True
        income = income_statement(book, BAS)
        assert income["unappropriated"] == sheet["period_result"]
        dist = distribution_statement(book, BAS)
        assert dist["legs_total"] == dist["sales"] == sum(r["amount"] for r in dist["rows"] if r["section"] == "sales")
        assert all(r["bas_code"] for r in sheet["rows"] if r["account"])


def test_a_line_belongs_to_its_accounts_lapas_else_to_its_entrys() -> None:
    assert lapas_of_account("liability:pnbp_payable:kerobokan", "cipinang") == "kerobokan"
    assert lapas_of_account("asset:bank:main", "cipinang") == "cipinang"  # a legacy global code
    assert lapas_of_account("asset:bank:kerobokan:main", "cipinang") == "kerobokan"
    assert lapas_of_account("liability:inmate_savings:WBP-A1B2C3", None) is None


def _sale(lapas: str, before: bool = False) -> list[Movement]:
    """Scenario (E) of tests/integration/ledger/test_settle.py as movements: a 300,000 sale, fees 15,000, PPh 22
    1,500, 2,500 in suspense, distributed 281,000; and a PNBP deposit of 110,500 and a payout of 10,000."""
    m = [
        (f"asset:marketplace_receivable:{lapas}:shopee", "sale_completed", 300_000, 0),
        (f"clearing:undistributed_proceeds:{lapas}", "sale_completed", 0, 300_000),
        (f"asset:bank:{lapas}:main", "settlement", 281_000, 0),
        (f"expense:marketplace_fee:{lapas}:commission_fee", "settlement", 15_000, 0),
        (f"asset:pph22_prepaid:{lapas}", "settlement", 1_500, 0),
        (f"clearing:suspense:{lapas}", "settlement", 2_500, 0),
        (f"asset:marketplace_receivable:{lapas}:shopee", "settlement", 0, 300_000),
        (f"clearing:undistributed_proceeds:{lapas}", "settlement", 300_000, 0),
        (f"revenue:sales:{lapas}", "settlement", 0, 300_000),
        (f"expense:material_cost:{lapas}", "distribution", 60_000, 0),
        (f"liability:supplier_payable:{lapas}:sup-pandan", "distribution", 0, 60_000),
        (f"expense:pnbp_share:{lapas}", "distribution", 110_500, 0),
        (f"liability:pnbp_payable:{lapas}", "distribution", 0, 110_500),
        (f"expense:inmate_premi:{lapas}", "distribution", 33_150, 0),
        ("liability:inmate_savings:WBP-A1B2C3", "distribution", 0, 33_150),
        (f"expense:capital_allocation:{lapas}", "distribution", 77_350, 0),
        (f"equity:production_capital:{lapas}", "distribution", 0, 77_350),
        (f"liability:pnbp_payable:{lapas}", "pnbp_deposit", 110_500, 0),
        (f"asset:bank:{lapas}:main", "pnbp_deposit", 0, 110_500),
        ("liability:inmate_savings:WBP-A1B2C3", "payout", 10_000, 0),
        (f"asset:bank:{lapas}:main", "payout", 0, 10_000),
    ]
    return [Movement(a, lapas, k, before, d, c) for a, k, d, c in m]


def test_the_statements_of_one_sale_to_the_rupiah() -> None:
    book = books(_sale("tangerang") + _sale("cipinang"), "tangerang")
    income = income_statement(book, BAS)
    assert (income["revenue"], income["expenses"], income["pnbp_share"]) == (300_000, 15_000 + 60_000 + 33_150, 110_500)
    assert (income["result"], income["appropriated"], income["unappropriated"]) == (81_350, 77_350, 4_000)
    sheet = balance_sheet(book, BAS)
    # bank 281,000 − 110,500 − 10,000; PPh 22 1,500; receivable 0
    assert sheet["assets"] == 160_500 + 1_500
    # supplier 60,000 + savings 23,150 + PNBP 0 + suspense −2,500 + undistributed 0; capital 77,350; result 4,000
    assert (sheet["liabilities"], sheet["equity"], sheet["period_result"]) == (80_650, 77_350, 4_000)
    dist = {r["line"]: r["amount"] for r in distribution_statement(book, BAS)["rows"]}
    assert dist == {
        "sales": 300_000,
        "marketplace fees": 15_000,
        "PPh 22 withheld": 1_500,
        "material cost": 60_000,
        "PNBP share": 110_500,
        "premi share": 33_150,
        "production capital": 77_350,
        "held or awaiting reconciliation": 2_500,
    }
    [pnbp] = pnbp_statement(book, BAS)
    assert (pnbp["opening"], pnbp["accrued"], pnbp["deposited"], pnbp["balance"]) == (0, 110_500, 110_500, 0)
    [premi] = premi_register(book, BAS)
    assert premi["inmate_id"] == "WBP-A1B2C3"
    assert (premi["accrued"], premi["clawed_back"], premi["paid_out"], premi["balance"]) == (33_150, 0, 10_000, 23_150)
    assert lapas_totals(book, BAS) == {
        "sales": 300_000,
        "pnbp_accrued": 110_500,
        "pnbp_deposited": 110_500,
        "premi_accrued": 33_150,
        "ppn_output": 0,
        "ppn_input": 0,
        "pph22_creditable": 1_500,
        "pph22_expense": 0,
        "pph22_exempt": 0,
    }


def _pkp_sale(lapas: str, pph22_account: str, *, pkp: bool = True) -> list[Movement]:
    """A 300,000 sale of a PKP lapas (output PPN 29,730 in the price, so revenue 270,270; fees 15,000 of which input
    PPN 1,486; PPh 22 1,500 on ``pph22_account``, with the income tax it prepays when creditable; net 283,500),
    distributed whole: 60,000 material, PNBP 100,000, premi 30,000, capital what is left (with the PPh 22 when it is
    claimed back: the posting path splits an exempt lapas' withholding with the proceeds)."""
    ppn, ppn_in = (29_730, 1_486) if pkp else (0, 0)
    creditable = pph22_account.startswith("asset:pph22_prepaid")
    exempt = pph22_account.startswith("asset:pph22_reclaimable")
    capital = 300_000 - ppn - (15_000 - ppn_in) - (0 if exempt else 1_500) - 60_000 - 100_000 - 30_000
    m = [
        (f"asset:marketplace_receivable:{lapas}:shopee", "sale_completed", 300_000, 0),
        (f"clearing:undistributed_proceeds:{lapas}", "sale_completed", 0, 300_000),
        (f"asset:bank:{lapas}:main", "settlement", 283_500, 0),
        (f"expense:marketplace_fee:{lapas}:commission_fee", "settlement", 15_000 - ppn_in, 0),
        (f"asset:ppn_input:{lapas}", "settlement", ppn_in, 0),
        (pph22_account, "settlement", 1_500, 0),
        (f"asset:marketplace_receivable:{lapas}:shopee", "settlement", 0, 300_000),
        (f"clearing:undistributed_proceeds:{lapas}", "settlement", 300_000, 0),
        (f"revenue:sales:{lapas}", "settlement", 0, 300_000 - ppn),
        (f"liability:ppn_output:{lapas}", "settlement", 0, ppn),
        (f"expense:income_tax:{lapas}", "settlement", 1_500 if creditable else 0, 0),
        (f"liability:income_tax_payable:{lapas}", "settlement", 0, 1_500 if creditable else 0),
        (f"expense:material_cost:{lapas}", "distribution", 60_000, 0),
        (f"liability:supplier_payable:{lapas}:sup-pandan", "distribution", 0, 60_000),
        (f"expense:pnbp_share:{lapas}", "distribution", 100_000, 0),
        (f"liability:pnbp_payable:{lapas}", "distribution", 0, 100_000),
        (f"expense:inmate_premi:{lapas}", "distribution", 30_000, 0),
        ("liability:inmate_savings:WBP-A1B2C3", "distribution", 0, 30_000),
        (f"expense:capital_allocation:{lapas}", "distribution", capital, 0),
        (f"equity:production_capital:{lapas}", "distribution", 0, capital),
    ]
    return [Movement(a, lapas, k, False, d, c) for a, k, d, c in m if d or c]


def test_a_pkp_lapas_with_creditable_pph22_to_the_rupiah() -> None:
    """Revenue is net of output PPN, fees net of input PPN; the income tax the PPh 22 prepays is an expense, so the
    sale leaves no residual; the distribution starts from the sales with their PPN and its legs close on them."""
    book = books(_pkp_sale("cipinang", "asset:pph22_prepaid:cipinang"), "cipinang")
    income = income_statement(book, BAS)
    assert (income["revenue"], income["expenses"]) == (270_270, 13_514 + 1_500 + 60_000 + 30_000)
    assert (income["pnbp_share"], income["appropriated"], income["unappropriated"]) == (100_000, 65_256, 0)
    assert ("expenses", "income_tax", 1_500, "529111") in {
        (r["section"], r["line"], r["amount"], r["bas_code"]) for r in income["rows"]
    }
    sheet = balance_sheet(book, BAS)
    lines = {r["account"]: (r["section"], r["amount"]) for r in sheet["rows"] if r["account"]}
    assert lines["liability:ppn_output:cipinang"] == ("liabilities", 29_730)
    assert lines["liability:income_tax_payable:cipinang"] == ("liabilities", 1_500)
    assert lines["asset:ppn_input:cipinang"] == ("assets", 1_486)
    assert lines["asset:pph22_prepaid:cipinang"] == ("assets", 1_500)
    assert sheet["balanced"] and sheet["period_result"] == 0
    dist = distribution_statement(book, BAS)
    assert [(r["section"], r["line"], r["amount"]) for r in dist["rows"]] == [
        ("sales", "sales", 270_270),
        ("sales", "output PPN in the price", 29_730),
        ("deductions", "output PPN", 29_730),
        ("deductions", "marketplace fees", 13_514),
        ("deductions", "PPh 22 withheld", 1_500),
        ("suppliers", "material cost", 60_000),
        ("PNBP", "PNBP share", 100_000),
        ("premi", "premi share", 30_000),
        ("capital", "production capital", 65_256),
        ("not distributed", "held or awaiting reconciliation", 0),
    ]
    assert (dist["sales"], dist["revenue"], dist["held"]) == (300_000, 270_270, 0)
    tax = tax_statement(book, BAS)
    assert (tax["ppn_output"], tax["ppn_input"], tax["ppn_net_payable"]) == (29_730, 1_486, 28_244)
    assert tax["pph22"] == {"creditable": 1_500, "expense": 0, "exempt": 0} and tax["income_tax"] == 1_500
    ends = {r["line"]: (r["account"], r["amount"]) for r in tax["rows"] if r["section"] == "at the end"}
    assert ends == {
        "output PPN owed": ("liability:ppn_output:cipinang", 29_730),
        "input PPN to credit": ("asset:ppn_input:cipinang", 1_486),
        "PPh 22 prepaid": ("asset:pph22_prepaid:cipinang", 1_500),
        "PPh 22 to claim back": ("", 0),
        "income tax payable": ("liability:income_tax_payable:cipinang", 1_500),
    }
    totals = lapas_totals(book, BAS)
    assert {k: totals[k] for k in ("sales", "ppn_output", "ppn_input", "pph22_creditable")} == {
        "sales": 270_270,
        "ppn_output": 29_730,
        "ppn_input": 1_486,
        "pph22_creditable": 1_500,
    }


@pytest.mark.parametrize(
    ("account", "treatment", "line"),
    [
        ("expense:pph22_withheld:kerobokan", "expense", "PPh 22 withheld, borne as a cost"),
        ("asset:pph22_reclaimable:kerobokan", "exempt", None),
    ],
)
def test_pph22_borne_as_a_cost_or_to_claim_back_by_a_non_pkp_lapas(
    account: str, treatment: str, line: str | None
) -> None:
    moves = _pkp_sale("kerobokan", account, pkp=False)
    claim = [  # the exemption's claim-back received: not a leg of the sale
        Movement("asset:bank:kerobokan:main", "kerobokan", "adjustment", False, 1_500, 0),
        Movement(account, "kerobokan", "adjustment", False, 0, 1_500),
    ]
    book = books(moves + (claim if treatment == "exempt" else []), "kerobokan")
    tax = tax_statement(book, BAS)
    assert tax["pph22"] == {"creditable": 0, "expense": 0, "exempt": 0} | {treatment: 1_500}
    assert (tax["ppn_output"], tax["ppn_net_payable"], tax["income_tax"]) == (0, 0, 0)
    dist = distribution_statement(book, BAS)
    # borne as a cost it is a deduction; to claim back it is no deduction: it was split with the proceeds
    deductions = {r["line"] for r in dist["rows"] if r["section"] == "deductions" and r["amount"]}
    assert deductions == {"marketplace fees"} | ({line} if line else set()) and dist["held"] == 0
    assert dist["sales"] == dist["revenue"] == 300_000
    income = income_statement(book, BAS)
    borne = 1_500 if treatment == "expense" else 0
    assert income["expenses"] == 15_000 + borne + 60_000 + 30_000
    assert income["unappropriated"] == 0  # either way the sale leaves no residual
    assert balance_sheet(book, BAS)["balanced"]
    assert lapas_totals(book, BAS)[f"pph22_{treatment}"] == 1_500


def test_an_earlier_period_is_the_opening_and_its_result_is_equity() -> None:
    book = books(_sale("tangerang", before=True), "tangerang")
    sheet = balance_sheet(book, BAS)
    assert sheet["period_result"] == 0 and sheet["balanced"]
    assert {r["line"]: r["amount"] for r in sheet["rows"]}["result of earlier periods"] == 4_000
    [pnbp] = pnbp_statement(book, BAS)
    assert (pnbp["opening"], pnbp["accrued"], pnbp["balance"]) == (0, 0, 0)


def test_the_shipped_bas_file_maps_every_kind_and_a_bad_file_is_named() -> None:
    data = yaml.safe_load(Path(BAS_FILE).read_text())
    assert set(parse_bas(data, "f").codes) == {f"{k.type}:{k.name}" for k in accounts.KINDS.values()}
    missing = {"kinds": {k: v for k, v in data["kinds"].items() if k != "asset:bank"}}
    with pytest.raises(BasMappingError, match=r"f: account kinds without a BAS code: \['asset:bank'\]"):
        parse_bas(missing, "f")
    bad = {"kinds": data["kinds"] | {"asset:bank": {"code": "11121", "name": "Kas", "status": "to_confirm"}}}
    with pytest.raises(BasMappingError, match="kind 'asset:bank': field 'code': a BAS account code is 6 digits"):
        parse_bas(bad, "f")
    unknown = {"kinds": data["kinds"] | {"asset:gold": {"code": "111111", "name": "x", "status": "confirmed"}}}
    with pytest.raises(BasMappingError, match=r"unknown account kinds \['asset:gold'\]"):
        parse_bas(unknown, "f")
    status = {"kinds": data["kinds"] | {"asset:bank": {"code": "111211", "name": "Kas", "status": "maybe"}}}
    with pytest.raises(BasMappingError, match="field 'status'"):
        parse_bas(status, "f")
