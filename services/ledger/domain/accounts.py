"""Chart of accounts: account kinds, their type and normal balance side, and account codes.

Accounts are opened on demand: a code is a readable string ``<type>:<kind>[:<owner>]`` and the first
posting to a new code opens it. Owners are pseudonymous inmate ids, lapas ids, supplier ids, channels or fee
types (letters, digits, ``.``, ``_``, ``-``; never a colon).

code                                     type       normal  meaning
asset:bank:<account>                     asset      D       cash at the bank (default account ``main``)
asset:marketplace_receivable:<channel>   asset      D       owed by a marketplace for completed orders
asset:pph22_prepaid                      asset      D       PPh 22 withheld by marketplaces (a tax credit)
asset:inmate_receivable:<wbp>            asset      D       clawed-back premi an inmate was already paid
asset:production_materials:<lapas>       asset      D       materials bought with production capital, at cost
liability:inmate_savings:<wbp>           liability  C       premi held for an inmate until release
liability:pnbp_payable:<lapas>           liability  C       the state's share (PNBP), owed via the lapas
liability:supplier_payable:<supplier>    liability  C       material cost owed to a supplier
liability:deduction_payable:<payee>      liability  C       a policy's fixed deduction owed to a named payee
equity:production_capital:<lapas>        equity     C       the workshop's production capital
revenue:sales:<lapas>                    revenue    C       settled sales, net of refunds
expense:marketplace_fee:<fee type>       expense    D       fees by marketplace fee type
expense:material_cost:<lapas>            expense    D       material cost of goods sold
expense:pnbp_share:<lapas>               expense    D       PNBP share of distributed proceeds
expense:inmate_premi:<lapas>             expense    D       premi share of distributed proceeds
expense:capital_allocation:<lapas>       expense    D       capital share of distributed proceeds
expense:split_deduction:<lapas>          expense    D       a policy's fixed deductions, taken before the split
clearing:undistributed_proceeds:<lapas>  clearing   C       completed sales not yet settled
clearing:unallocated_proceeds:<lapas>    clearing   C       proceeds whose distribution waits (no batch known,
                                                            or a distribution that cannot be made); ``unknown``
                                                            when not even the lapas is known
clearing:suspense                        clearing   D       differences awaiting reconciliation

Balances in this package are "normal-side" balances: debits minus credits for debit-normal accounts,
credits minus debits for credit-normal ones, so a healthy savings or payable balance is positive.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

from services.ledger.domain.errors import AccountCodeError

__all__ = [
    "KINDS",
    "OWNER_PATTERN",
    "AccountInfo",
    "AccountKind",
    "AccountType",
    "Side",
    "account_info",
    "bank",
    "capital_allocation_expense",
    "deduction_payable",
    "fee_expense",
    "inmate_premi_expense",
    "inmate_receivable",
    "inmate_savings",
    "marketplace_receivable",
    "material_cost_expense",
    "normal_delta",
    "pnbp_payable",
    "pnbp_share_expense",
    "pph22_prepaid",
    "production_capital",
    "production_materials",
    "sales_revenue",
    "split_deduction_expense",
    "supplier_payable",
    "suspense",
    "unallocated_proceeds",
    "undistributed_proceeds",
]

OWNER_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


class Side(StrEnum):
    """Side of a journal line."""

    DEBIT = "D"
    CREDIT = "C"


class AccountType(StrEnum):
    """Account types; the code of an account starts with its type."""

    ASSET = "asset"
    LIABILITY = "liability"
    EQUITY = "equity"
    REVENUE = "revenue"
    EXPENSE = "expense"
    CLEARING = "clearing"


@dataclass(frozen=True, slots=True)
class AccountKind:
    """A kind of account: ``owner`` names what it is opened per (``None``: a single account)."""

    type: AccountType
    name: str
    normal_side: Side
    owner: str | None


_D, _C = Side.DEBIT, Side.CREDIT
_KINDS: tuple[AccountKind, ...] = (
    AccountKind(AccountType.ASSET, "bank", _D, "bank account"),
    AccountKind(AccountType.ASSET, "marketplace_receivable", _D, "channel"),
    AccountKind(AccountType.ASSET, "pph22_prepaid", _D, None),
    AccountKind(AccountType.ASSET, "inmate_receivable", _D, "inmate"),
    AccountKind(AccountType.ASSET, "production_materials", _D, "lapas"),
    AccountKind(AccountType.LIABILITY, "inmate_savings", _C, "inmate"),
    AccountKind(AccountType.LIABILITY, "pnbp_payable", _C, "lapas"),
    AccountKind(AccountType.LIABILITY, "supplier_payable", _C, "supplier"),
    AccountKind(AccountType.LIABILITY, "deduction_payable", _C, "payee"),
    AccountKind(AccountType.EQUITY, "production_capital", _C, "lapas"),
    AccountKind(AccountType.REVENUE, "sales", _C, "lapas"),
    AccountKind(AccountType.EXPENSE, "marketplace_fee", _D, "fee type"),
    AccountKind(AccountType.EXPENSE, "material_cost", _D, "lapas"),
    AccountKind(AccountType.EXPENSE, "pnbp_share", _D, "lapas"),
    AccountKind(AccountType.EXPENSE, "inmate_premi", _D, "lapas"),
    AccountKind(AccountType.EXPENSE, "capital_allocation", _D, "lapas"),
    AccountKind(AccountType.EXPENSE, "split_deduction", _D, "lapas"),
    AccountKind(AccountType.CLEARING, "undistributed_proceeds", _C, "lapas"),
    AccountKind(AccountType.CLEARING, "unallocated_proceeds", _C, "lapas"),
    AccountKind(AccountType.CLEARING, "suspense", _D, None),
)
KINDS: dict[tuple[AccountType, str], AccountKind] = {(k.type, k.name): k for k in _KINDS}


@dataclass(frozen=True, slots=True)
class AccountInfo:
    """What an account code means."""

    code: str
    kind: AccountKind
    owner: str | None

    @property
    def type(self) -> AccountType:
        """The account type."""
        return self.kind.type

    @property
    def normal_side(self) -> Side:
        """The side on which a positive balance sits."""
        return self.kind.normal_side


def _owner_problem(kind: AccountKind, owner: str | None) -> str | None:
    if kind.owner is None:
        return None if owner is None else "takes no owner"
    if owner is None or not OWNER_PATTERN.fullmatch(owner):
        article = "an" if kind.owner[0] in "aeiou" else "a"
        return f"needs {article} {kind.owner} id of letters, digits, '.', '_' or '-' (no ':'), got {owner!r}"
    return None


def _code(account_type: AccountType, name: str, owner: str | None = None) -> str:
    key = (account_type, name, owner)
    code = _CODES.get(key) if owner is None or type(owner) is str else None
    if code is not None:
        return code
    kind = KINDS[(account_type, name)]
    if problem := _owner_problem(kind, owner):
        raise AccountCodeError(f"{account_type}:{name} {problem}")
    code = f"{account_type}:{name}" if owner is None else f"{account_type}:{name}:{owner}"
    if len(_CODES) >= 65536:
        _CODES.clear()
    _CODES[key] = code
    return code


#: Codes built so far (the helpers below run for every line of every entry).
_CODES: dict[tuple[AccountType, str, str | None], str] = {}
# Members as module constants: reading a member off an enum class is slow (a descriptor call per access).
_ASSET, _LIABILITY, _EQUITY = AccountType.ASSET, AccountType.LIABILITY, AccountType.EQUITY
_REVENUE, _EXPENSE, _CLEARING = AccountType.REVENUE, AccountType.EXPENSE, AccountType.CLEARING


@lru_cache(maxsize=65536)
def account_info(code: str) -> AccountInfo:
    """Parse an account code: its kind (type, normal side) and owner; raises :class:`AccountCodeError`.

    Cached: codes repeat on every posting and the result is immutable.
    """
    parts = code.split(":")
    if len(parts) not in (2, 3):
        raise AccountCodeError(f"account code {code!r} is not <type>:<kind>[:<owner>]")
    try:
        account_type = AccountType(parts[0])
    except ValueError:
        raise AccountCodeError(f"account code {code!r}: unknown account type {parts[0]!r}") from None
    kind = KINDS.get((account_type, parts[1]))
    if kind is None:
        raise AccountCodeError(f"account code {code!r}: unknown {account_type} account {parts[1]!r}")
    owner = parts[2] if len(parts) == 3 else None
    if problem := _owner_problem(kind, owner):
        raise AccountCodeError(f"account code {code!r}: {account_type}:{kind.name} {problem}")
    return AccountInfo(code=code, kind=kind, owner=owner)


def normal_delta(code: str, side: Side, amount: int) -> int:
    """How a line of ``amount`` on ``side`` changes the normal-side balance of ``code``."""
    return amount if account_info(code).normal_side == side else -amount


def bank(account: str = "main") -> str:
    """Cash at the bank (``asset:bank:main`` unless another bank account is named)."""
    return _code(_ASSET, "bank", account)


def pph22_prepaid() -> str:
    """PPh 22 withheld by marketplaces, a prepaid tax credit."""
    return _code(_ASSET, "pph22_prepaid")


def suspense() -> str:
    """Clearing: settlement and refund differences awaiting reconciliation."""
    return _code(_CLEARING, "suspense")


def _per_owner(account_type: AccountType, name: str, doc: str) -> Callable[[str], str]:
    """The code helper of the kind ``account_type:name``, opened per owner (one body serves every such kind)."""

    def code(owner: str) -> str:
        return _code(account_type, name, owner)

    code.__doc__ = doc
    return code


marketplace_receivable = _per_owner(_ASSET, "marketplace_receivable", "What a marketplace owes (per channel).")
inmate_receivable = _per_owner(_ASSET, "inmate_receivable", "Premi clawed back after it was paid out (per inmate).")
production_materials = _per_owner(_ASSET, "production_materials", "Materials a lapas bought with production capital.")
inmate_savings = _per_owner(_LIABILITY, "inmate_savings", "Premi held for an inmate until release (pseudonymous id).")
pnbp_payable = _per_owner(_LIABILITY, "pnbp_payable", "The state's share (PNBP) owed via a lapas.")
supplier_payable = _per_owner(_LIABILITY, "supplier_payable", "Material cost owed to a supplier.")
deduction_payable = _per_owner(_LIABILITY, "deduction_payable", "A policy's fixed deduction owed to a named payee.")
production_capital = _per_owner(_EQUITY, "production_capital", "A lapas' production capital (equity).")
sales_revenue = _per_owner(_REVENUE, "sales", "Settled sales of a lapas, net of refunds.")
fee_expense = _per_owner(_EXPENSE, "marketplace_fee", "A marketplace fee, by the marketplace's fee type.")
material_cost_expense = _per_owner(_EXPENSE, "material_cost", "Material cost of the goods a lapas sold.")
pnbp_share_expense = _per_owner(_EXPENSE, "pnbp_share", "PNBP share of a lapas' distributed proceeds.")
inmate_premi_expense = _per_owner(_EXPENSE, "inmate_premi", "Premi share of a lapas' distributed proceeds.")
capital_allocation_expense = _per_owner(_EXPENSE, "capital_allocation", "Capital share of a lapas' proceeds.")
split_deduction_expense = _per_owner(_EXPENSE, "split_deduction", "A policy's fixed deductions from a lapas' base.")
undistributed_proceeds = _per_owner(_CLEARING, "undistributed_proceeds", "Gross of completed sales not yet settled.")
unallocated_proceeds = _per_owner(
    _CLEARING, "unallocated_proceeds", "Proceeds whose distribution waits for an allocation or a fix."
)
