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
    (acc.bank, (), "asset:bank:main", AccountType.ASSET, Side.DEBIT),
    (acc.bank, ("bri-escrow",), "asset:bank:bri-escrow", AccountType.ASSET, Side.DEBIT),
    (
        acc.marketplace_receivable,
        ("shopee",),
        "asset:marketplace_receivable:shopee",
        AccountType.ASSET,
        Side.DEBIT,
    ),
    (acc.pph22_prepaid, (), "asset:pph22_prepaid", AccountType.ASSET, Side.DEBIT),
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
        ("sup-1",),
        "liability:supplier_payable:sup-1",
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
        ("commission_fee",),
        "expense:marketplace_fee:commission_fee",
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
    (acc.suspense, (), "clearing:suspense", AccountType.CLEARING, Side.DEBIT),
    (
        acc.deduction_payable,
        ("koperasi-cipinang",),
        "liability:deduction_payable:koperasi-cipinang",
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
    assert info.owner == (code.split(":")[2] if code.count(":") == 2 else None)


def test_every_kind_has_a_builder_case() -> None:
    assert {(account_info(c[2]).kind.type, account_info(c[2]).kind.name) for c in CASES} == set(acc.KINDS)


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("bank", "is not <type>:<kind>"),
        ("asset:bank:main:extra", "is not <type>:<kind>"),
        ("assets:bank:main", "unknown account type 'assets'"),
        ("asset:savings:WBP-7F3K2Q", "unknown asset account 'savings'"),
        ("asset:bank", "asset:bank needs a bank account id"),
        ("asset:pph22_prepaid:cipinang", "takes no owner"),
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
    assert normal_delta(acc.bank(), Side.DEBIT, amount) == amount
    assert normal_delta(acc.suspense(), Side.CREDIT, amount) == -amount
