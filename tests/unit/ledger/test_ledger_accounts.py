"""Chart of accounts: codes, types, normal sides."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.ledger.domain import accounts as acc
from services.ledger.domain.accounts import AccountType, Side, account_info, normal_delta
from services.ledger.domain.errors import AccountCodeError

CASES: list[tuple[Callable[..., str], tuple[str, ...], str, AccountType, Side]] = [
    (acc.bank, ("cipinang",), "asset:bank:cipinang:main", AccountType.ASSET, Side.DEBIT),
    (acc.bank, ("cipinang", "bri-escrow"), "asset:bank:cipinang:bri-escrow", AccountType.ASSET, Side.DEBIT),
    (
        acc.marketplace_receivable,
        ("cipinang", "shopee"),
        "asset:marketplace_receivable:cipinang:shopee",
        AccountType.ASSET,
        Side.DEBIT,
    ),
    (acc.pph22_prepaid, ("cipinang",), "asset:pph22_prepaid:cipinang", AccountType.ASSET, Side.DEBIT),
    (acc.pph22_reclaimable, ("cipinang",), "asset:pph22_reclaimable:cipinang", AccountType.ASSET, Side.DEBIT),
    (acc.ppn_input, ("cipinang",), "asset:ppn_input:cipinang", AccountType.ASSET, Side.DEBIT),
    (acc.ppn_output, ("cipinang",), "liability:ppn_output:cipinang", AccountType.LIABILITY, Side.CREDIT),
    (
        acc.income_tax_payable,
        ("cipinang",),
        "liability:income_tax_payable:cipinang",
        AccountType.LIABILITY,
        Side.CREDIT,
    ),
    (acc.income_tax_expense, ("cipinang",), "expense:income_tax:cipinang", AccountType.EXPENSE, Side.DEBIT),
    (acc.pph22_expense, ("cipinang",), "expense:pph22_withheld:cipinang", AccountType.EXPENSE, Side.DEBIT),
    (
        acc.inmate_receivable,
        ("WBP-7F3K2Q",),
        "asset:inmate_receivable:WBP-7F3K2Q",
        AccountType.ASSET,
        Side.DEBIT,
    ),
    (
        acc.production_materials,
        ("cipinang",),
        "asset:production_materials:cipinang",
        AccountType.ASSET,
        Side.DEBIT,
    ),
    (
        acc.inmate_savings,
        ("WBP-7F3K2Q",),
        "liability:inmate_savings:WBP-7F3K2Q",
        AccountType.LIABILITY,
        Side.CREDIT,
    ),
    (acc.pnbp_payable, ("cipinang",), "liability:pnbp_payable:cipinang", AccountType.LIABILITY, Side.CREDIT),
    (
        acc.supplier_payable,
        ("cipinang", "sup-1"),
        "liability:supplier_payable:cipinang:sup-1",
        AccountType.LIABILITY,
        Side.CREDIT,
    ),
    (
        acc.production_capital,
        ("cipinang",),
        "equity:production_capital:cipinang",
        AccountType.EQUITY,
        Side.CREDIT,
    ),
    (acc.sales_revenue, ("cipinang",), "revenue:sales:cipinang", AccountType.REVENUE, Side.CREDIT),
    (
        acc.fee_expense,
        ("cipinang", "commission_fee"),
        "expense:marketplace_fee:cipinang:commission_fee",
        AccountType.EXPENSE,
        Side.DEBIT,
    ),
    (
        acc.material_cost_expense,
        ("kerobokan",),
        "expense:material_cost:kerobokan",
        AccountType.EXPENSE,
        Side.DEBIT,
    ),
    (acc.pnbp_share_expense, ("kerobokan",), "expense:pnbp_share:kerobokan", AccountType.EXPENSE, Side.DEBIT),
    (
        acc.inmate_premi_expense,
        ("kerobokan",),
        "expense:inmate_premi:kerobokan",
        AccountType.EXPENSE,
        Side.DEBIT,
    ),
    (
        acc.capital_allocation_expense,
        ("kerobokan",),
        "expense:capital_allocation:kerobokan",
        AccountType.EXPENSE,
        Side.DEBIT,
    ),
    (
        acc.undistributed_proceeds,
        ("tangerang",),
        "clearing:undistributed_proceeds:tangerang",
        AccountType.CLEARING,
        Side.CREDIT,
    ),
    (
        acc.unallocated_proceeds,
        ("unknown",),
        "clearing:unallocated_proceeds:unknown",
        AccountType.CLEARING,
        Side.CREDIT,
    ),
    (acc.suspense, ("unknown",), "clearing:suspense:unknown", AccountType.CLEARING, Side.DEBIT),
    (
        acc.deduction_payable,
        ("cipinang", "koperasi-cipinang"),
        "liability:deduction_payable:cipinang:koperasi-cipinang",
        AccountType.LIABILITY,
        Side.CREDIT,
    ),
    (
        acc.split_deduction_expense,
        ("cipinang",),
        "expense:split_deduction:cipinang",
        AccountType.EXPENSE,
        Side.DEBIT,
    ),
]


@pytest.mark.parametrize(("builder", "args", "code", "account_type", "normal"), CASES)
def test_builders_and_parsing_agree(
    builder: Callable[..., str], args: tuple[str, ...], code: str, account_type: AccountType, normal: Side
) -> None:
    assert builder(*args) == code
    info = account_info(code)
    assert (info.type, info.normal_side, info.code) == (account_type, normal, code)
    assert info.owner == code.split(":")[-1] and not info.legacy
    inmate = info.kind.owner == "inmate"
    assert info.lapas == (None if inmate else code.split(":")[2])
    assert acc.account_lapas(code) == info.lapas
    assert acc.account_lapas(code, {"WBP-7F3K2Q": "tangerang"}) == ("tangerang" if inmate else code.split(":")[2])


def test_every_kind_has_a_builder_case() -> None:
    assert {(account_info(c[2]).kind.type, account_info(c[2]).kind.name) for c in CASES} == set(acc.KINDS)


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("bank", "is not <type>:<kind>"),
        ("asset:bank:cipinang:main:extra", "is not <type>:<kind>"),
        ("assets:bank:main", "unknown account type 'assets'"),
        ("asset:savings:WBP-7F3K2Q", "unknown asset account 'savings'"),
        ("asset:bank", "asset:bank is asset:bank:<lapas>:<bank account>"),
        ("asset:pph22_prepaid:cipinang:x", "asset:pph22_prepaid is asset:pph22_prepaid:<lapas>"),
        ("revenue:sales", "revenue:sales is revenue:sales:<lapas>"),
        ("revenue:sales:cipinang:x", "revenue:sales is revenue:sales:<lapas>"),
        ("asset:bank:cipinang:a b", "needs a bank account id"),
        ("asset:bank:cipi nang:main", "needs a lapas id"),
        ("liability:inmate_savings:", "needs an inmate id"),
        ("liability:inmate_savings:WBP 7F3K2Q", "needs an inmate id"),
    ],
)
def test_bad_codes_are_rejected(code: str, message: str) -> None:
    with pytest.raises(AccountCodeError, match=message):
        account_info(code)


@pytest.mark.parametrize("owner", ["", "a:b", "-leading", "with space", "x" * 101])
def test_owner_ids_are_checked_when_building(owner: str) -> None:
    with pytest.raises(AccountCodeError):
        acc.inmate_savings(owner)


@given(st.integers(min_value=1, max_value=10**12))
def test_normal_delta(amount: int) -> None:
    savings = acc.inmate_savings("WBP-7F3K2Q")
    assert normal_delta(savings, Side.CREDIT, amount) == amount
    assert normal_delta(savings, Side.DEBIT, amount) == -amount
    assert normal_delta(acc.bank("cipinang"), Side.DEBIT, amount) == amount
    assert normal_delta(acc.suspense("cipinang"), Side.CREDIT, amount) == -amount


LEGACY = [
    ("asset:bank:main", "main"),
    ("asset:marketplace_receivable:shopee", "shopee"),
    ("asset:pph22_prepaid", None),
    ("expense:marketplace_fee:commission_fee", "commission_fee"),
    ("clearing:suspense", None),
    ("liability:supplier_payable:sup-1", "sup-1"),
    ("liability:deduction_payable:koperasi", "koperasi"),
]


@pytest.mark.parametrize(("code", "owner"), LEGACY)
def test_legacy_global_codes_still_parse_as_accounts_of_no_lapas(code: str, owner: str | None) -> None:
    info = account_info(code)
    assert (info.legacy, info.lapas, info.owner) == (True, None, owner)
    assert acc.account_lapas(code, {"sup-1": "cipinang"}) is None
    moved = acc.in_lapas(code, "cipinang")
    assert account_info(moved).kind == info.kind and acc.account_lapas(moved) == "cipinang"
    assert acc.in_lapas(moved, "tangerang") == moved  # a per-lapas code stays where it is


def test_an_inmate_account_is_in_no_lapas_until_the_inmate_is_placed() -> None:
    savings = acc.inmate_savings("WBP-7F3K2Q")
    assert acc.account_lapas(savings) is None and acc.account_lapas(savings, {}) is None
    assert acc.account_lapas(savings, {"WBP-7F3K2Q": "kerobokan"}) == "kerobokan"
