"""Chart of accounts: account kinds, their type and normal balance side, and account codes.

Accounts are opened on demand: a code is a readable string and the first posting to a new code opens it. Every
account a sale touches belongs to the sale's lapas, so each lapas' books balance on their own and the whole ledger
is their sum. The code shape, parsed here and nowhere else (:func:`account_info`, :func:`account_lapas`):

- ``<type>:<kind>:<lapas>`` — a kind opened per lapas (``revenue:sales:cipinang``, ``clearing:suspense:cipinang``);
- ``<type>:<kind>:<lapas>:<owner>`` — a kind opened per lapas and something of it (a bank account, a channel, a
  fee type, a supplier, a payee): ``asset:bank:cipinang:main``, ``expense:marketplace_fee:cipinang:service_fee``;
- ``<type>:<kind>:<inmate>`` — an inmate's savings and receivable: the inmate's lapas is not in the code (the
  orders that moved the account tell it; :func:`account_lapas` takes that map).

Owners and lapas ids are letters, digits, ``.``, ``_``, ``-`` (never a colon); the lapas ``unknown`` owns what a
sale of no known lapas books (unallocated proceeds and suspense). **Legacy codes**: before accounts were per lapas,
bank, receivables, PPh 22, fees, suspense and the supplier and deduction payables were global
(``asset:bank:main``, ``asset:pph22_prepaid``, ``clearing:suspense``, ``liability:supplier_payable:<supplier>``…).
The journal is append-only, so those codes still parse (:attr:`AccountInfo.legacy`, lapas ``None``); nothing new
posts to them, and an approved adjustment reclassifies their balances (docs/accounting.md, Books per lapas).

code                                              type       normal  meaning
asset:bank:<lapas>:<account>                      asset      D       a lapas' cash at the bank (account ``main``)
asset:marketplace_receivable:<lapas>:<channel>    asset      D       owed by a marketplace for completed orders
asset:pph22_prepaid:<lapas>                       asset      D       PPh 22 withheld by marketplaces (a tax credit)
asset:pph22_reclaimable:<lapas>                   asset      D       PPh 22 withheld from an exempt lapas, to claim back
asset:ppn_input:<lapas>                           asset      D       PPN inside marketplace fees (input VAT, a credit)
asset:inmate_receivable:<wbp>                     asset      D       clawed-back premi an inmate was already paid
asset:production_materials:<lapas>                asset      D       materials bought with production capital, at cost
liability:inmate_savings:<wbp>                    liability  C       premi held for an inmate until release
liability:pnbp_payable:<lapas>                    liability  C       the state's share (PNBP), owed via the lapas
liability:supplier_payable:<lapas>:<supplier>     liability  C       material cost a lapas owes a supplier
liability:deduction_payable:<lapas>:<payee>       liability  C       a policy's fixed deduction owed to a named payee
liability:ppn_output:<lapas>                      liability  C       PPN in the price of a PKP lapas' sales (output VAT)
liability:income_tax_payable:<lapas>              liability  C       income tax a creditable PPh 22 prepays
equity:production_capital:<lapas>                 equity     C       the workshop's production capital
revenue:sales:<lapas>                             revenue    C       settled sales, net of refunds
expense:marketplace_fee:<lapas>:<fee type>        expense    D       fees by marketplace fee type
expense:material_cost:<lapas>                     expense    D       material cost of goods sold
expense:pnbp_share:<lapas>                        expense    D       PNBP share of distributed proceeds
expense:inmate_premi:<lapas>                      expense    D       premi share of distributed proceeds
expense:capital_allocation:<lapas>                expense    D       capital share of distributed proceeds
expense:split_deduction:<lapas>                   expense    D       a policy's fixed deductions, taken before the split
expense:income_tax:<lapas>                        expense    D       income tax on a sale, as its PPh 22 (creditable)
expense:pph22_withheld:<lapas>                    expense    D       PPh 22 withheld, borne as a cost (expense)
clearing:undistributed_proceeds:<lapas>           clearing   C       completed sales not yet settled
clearing:unallocated_proceeds:<lapas>             clearing   C       proceeds whose distribution waits (no batch known,
                                                                     or a distribution that cannot be made)
clearing:suspense:<lapas>                         clearing   D       differences awaiting reconciliation

Balances in this package are "normal-side" balances: debits minus credits for debit-normal accounts,
credits minus debits for credit-normal ones, so a healthy savings or payable balance is positive.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

from services.ledger.domain.errors import AccountCodeError

__all__ = [
    "KINDS",
    "OWNER_PATTERN",
    "UNKNOWN_LAPAS",
    "AccountInfo",
    "AccountKind",
    "AccountType",
    "Side",
    "account_info",
    "account_lapas",
    "bank",
    "capital_allocation_expense",
    "deduction_payable",
    "fee_expense",
    "in_lapas",
    "income_tax_expense",
    "income_tax_payable",
    "inmate_premi_expense",
    "inmate_receivable",
    "inmate_savings",
    "marketplace_receivable",
    "material_cost_expense",
    "normal_delta",
    "pnbp_payable",
    "pnbp_share_expense",
    "pph22_expense",
    "pph22_prepaid",
    "pph22_reclaimable",
    "ppn_input",
    "ppn_output",
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
UNKNOWN_LAPAS = "unknown"
"""The lapas that owns what a sale of no known lapas books (its unallocated proceeds and suspense)."""


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
    """A kind of account: ``owner`` names what it is opened per (``"lapas"``: one per lapas; ``None``: a single
    account, legacy codes only); ``within_lapas``: its code has a lapas segment before the owner (a lapas' bank
    accounts, channels, fee types, suppliers, payees)."""

    type: AccountType
    name: str
    normal_side: Side
    owner: str | None
    within_lapas: bool = False

    @property
    def prefix(self) -> str:
        """``<type>:<name>``: how every code of this kind starts."""
        return f"{self.type}:{self.name}"

    @property
    def per_lapas(self) -> bool:
        """Whether every account of this kind is in one lapas' books by its code."""
        return self.within_lapas or self.owner == "lapas"


_D, _C = Side.DEBIT, Side.CREDIT
_KINDS: tuple[AccountKind, ...] = (
    AccountKind(AccountType.ASSET, "bank", _D, "bank account", within_lapas=True),
    AccountKind(AccountType.ASSET, "marketplace_receivable", _D, "channel", within_lapas=True),
    AccountKind(AccountType.ASSET, "pph22_prepaid", _D, "lapas"),
    AccountKind(AccountType.ASSET, "inmate_receivable", _D, "inmate"),
    AccountKind(AccountType.ASSET, "production_materials", _D, "lapas"),
    AccountKind(AccountType.ASSET, "pph22_reclaimable", _D, "lapas"),
    AccountKind(AccountType.ASSET, "ppn_input", _D, "lapas"),
    AccountKind(AccountType.LIABILITY, "inmate_savings", _C, "inmate"),
    AccountKind(AccountType.LIABILITY, "pnbp_payable", _C, "lapas"),
    AccountKind(AccountType.LIABILITY, "supplier_payable", _C, "supplier", within_lapas=True),
    AccountKind(AccountType.LIABILITY, "deduction_payable", _C, "payee", within_lapas=True),
    AccountKind(AccountType.LIABILITY, "ppn_output", _C, "lapas"),
    AccountKind(AccountType.LIABILITY, "income_tax_payable", _C, "lapas"),
    AccountKind(AccountType.EQUITY, "production_capital", _C, "lapas"),
    AccountKind(AccountType.REVENUE, "sales", _C, "lapas"),
    AccountKind(AccountType.EXPENSE, "marketplace_fee", _D, "fee type", within_lapas=True),
    AccountKind(AccountType.EXPENSE, "material_cost", _D, "lapas"),
    AccountKind(AccountType.EXPENSE, "pnbp_share", _D, "lapas"),
    AccountKind(AccountType.EXPENSE, "inmate_premi", _D, "lapas"),
    AccountKind(AccountType.EXPENSE, "capital_allocation", _D, "lapas"),
    AccountKind(AccountType.EXPENSE, "split_deduction", _D, "lapas"),
    AccountKind(AccountType.EXPENSE, "income_tax", _D, "lapas"),
    AccountKind(AccountType.EXPENSE, "pph22_withheld", _D, "lapas"),
    AccountKind(AccountType.CLEARING, "undistributed_proceeds", _C, "lapas"),
    AccountKind(AccountType.CLEARING, "unallocated_proceeds", _C, "lapas"),
    AccountKind(AccountType.CLEARING, "suspense", _D, "lapas"),
)
KINDS: dict[tuple[AccountType, str], AccountKind] = {(k.type, k.name): k for k in _KINDS}
#: Kinds that were global before accounts were per lapas: their old codes (one segment shorter, no lapas) still
#: parse, as legacy accounts of no lapas.
_LEGACY = frozenset(
    (
        "bank",
        "marketplace_receivable",
        "pph22_prepaid",
        "marketplace_fee",
        "suspense",
        "supplier_payable",
        "deduction_payable",
    )
)


@dataclass(frozen=True, slots=True)
class AccountInfo:
    """What an account code means: its kind, its lapas (``None``: an inmate's account, or a legacy global code)
    and its owner (the inmate, bank account, channel, fee type, supplier or payee; for a kind opened only per
    lapas, the lapas itself; ``None`` for a legacy single account)."""

    code: str
    kind: AccountKind
    owner: str | None
    lapas: str | None = None

    @property
    def type(self) -> AccountType:
        """The account type."""
        return self.kind.type

    @property
    def normal_side(self) -> Side:
        """The side on which a positive balance sits."""
        return self.kind.normal_side

    @property
    def legacy(self) -> bool:
        """A global code of a kind that is per lapas now (append-only journals keep them; nothing new posts)."""
        return self.kind.per_lapas and self.lapas is None


def _id_problem(what: str, value: str | None) -> str | None:
    if not isinstance(value, str) or not OWNER_PATTERN.fullmatch(value):
        article = "an" if what[0] in "aeiou" else "a"
        return f"needs {article} {what} id of letters, digits, '.', '_' or '-' (no ':'), got {value!r}"
    return None


def _segments(kind: AccountKind, lapas: str | None, owner: str | None) -> str | None:
    """Why ``lapas`` / ``owner`` do not fit ``kind`` (``lapas`` only for a kind within a lapas), or ``None``."""
    if kind.within_lapas:
        if problem := _id_problem("lapas", lapas):
            return problem
    elif lapas is not None:
        return "takes no lapas segment"
    if kind.owner is None:
        return None if owner is None else "takes no owner"
    return _id_problem(kind.owner, owner)


def _code(account_type: AccountType, name: str, lapas: str | None, owner: str | None = None) -> str:
    key = (account_type, name, lapas, owner)
    code = _CODES.get(key)
    if code is not None:
        return code
    kind = KINDS[(account_type, name)]
    if problem := _segments(kind, lapas, owner):
        raise AccountCodeError(f"{account_type}:{name} {problem}")
    code = ":".join(part for part in (account_type, name, lapas, owner) if part is not None)
    if len(_CODES) >= 65536:
        _CODES.clear()
    _CODES[key] = code
    return code


#: Codes built so far (the helpers below run for every line of every entry).
_CODES: dict[tuple[AccountType, str, str | None, str | None], str] = {}
# Members as module constants: reading a member off an enum class is slow (a descriptor call per access).
_ASSET, _LIABILITY, _EQUITY = AccountType.ASSET, AccountType.LIABILITY, AccountType.EQUITY
_REVENUE, _EXPENSE, _CLEARING = AccountType.REVENUE, AccountType.EXPENSE, AccountType.CLEARING


@lru_cache(maxsize=65536)
def account_info(code: str) -> AccountInfo:
    """Parse an account code: its kind (type, normal side), lapas and owner; raises :class:`AccountCodeError`.

    Cached: codes repeat on every posting and the result is immutable.
    """
    parts = code.split(":")
    if len(parts) not in (2, 3, 4):
        raise AccountCodeError(f"account code {code!r} is not <type>:<kind>[:<lapas>][:<owner>]")
    try:
        account_type = AccountType(parts[0])
    except ValueError:
        raise AccountCodeError(f"account code {code!r}: unknown account type {parts[0]!r}") from None
    kind = KINDS.get((account_type, parts[1]))
    if kind is None:
        raise AccountCodeError(f"account code {code!r}: unknown {account_type} account {parts[1]!r}")
    rest = parts[2:]
    if len(rest) == 1 + int(kind.within_lapas):
        lapas, owner = (rest[0], rest[1]) if kind.within_lapas else (None, rest[0])
        if problem := _segments(kind, lapas, owner):
            raise AccountCodeError(f"account code {code!r}: {kind.prefix} {problem}")
        return AccountInfo(code=code, kind=kind, owner=owner, lapas=owner if kind.owner == "lapas" else lapas)
    if kind.name in _LEGACY and len(rest) == int(kind.within_lapas):
        legacy_owner = rest[0] if rest else None
        if legacy_owner is not None and (problem := _id_problem(kind.owner or "owner", legacy_owner)):
            raise AccountCodeError(f"account code {code!r}: {kind.prefix} {problem}")
        return AccountInfo(code=code, kind=kind, owner=legacy_owner, lapas=None)
    shape = ":".join([kind.prefix, *(["<lapas>"] if kind.within_lapas else []), f"<{kind.owner}>"])
    raise AccountCodeError(f"account code {code!r}: {kind.prefix} is {shape}")


def account_lapas(code: str, inmate_lapas: Mapping[str, str] | None = None) -> str | None:
    """The lapas whose books ``code`` is in: the lapas segment of a per-lapas account; for an inmate's savings or
    receivable, the inmate's lapas from ``inmate_lapas`` (inmate id → lapas, e.g. from the orders that moved the
    account); ``None`` for a legacy global code (or an inmate not in the map). Raises :class:`AccountCodeError`
    for a malformed code. Every report, check and access rule that asks "whose account is this" asks here."""
    info = account_info(code)
    if info.kind.per_lapas:
        return info.lapas
    return None if inmate_lapas is None or info.owner is None else inmate_lapas.get(info.owner)


def in_lapas(code: str, lapas: str) -> str:
    """``code`` as an account of ``lapas``: a legacy global code of a per-lapas kind gains the lapas segment
    (``liability:supplier_payable:sup-x`` → ``liability:supplier_payable:<lapas>:sup-x``); any other code is
    returned as it is. Policy files name a deduction's payee this way, without a lapas."""
    info = account_info(code)
    if not info.legacy:
        return code
    if info.kind.within_lapas:
        return _code(info.kind.type, info.kind.name, lapas, info.owner)
    return _code(info.kind.type, info.kind.name, None, lapas)


def normal_delta(code: str, side: Side, amount: int) -> int:
    """How a line of ``amount`` on ``side`` changes the normal-side balance of ``code``."""
    return amount if account_info(code).normal_side == side else -amount


def bank(lapas: str, account: str = "main") -> str:
    """A lapas' cash at the bank (``asset:bank:<lapas>:main`` unless another bank account is named)."""
    return _code(_ASSET, "bank", lapas, account)


def marketplace_receivable(lapas: str, channel: str) -> str:
    """What a marketplace owes a lapas (per channel)."""
    return _code(_ASSET, "marketplace_receivable", lapas, channel)


def fee_expense(lapas: str, fee_type: str) -> str:
    """A lapas' marketplace fee, by the marketplace's fee type."""
    return _code(_EXPENSE, "marketplace_fee", lapas, fee_type)


def supplier_payable(lapas: str, supplier: str) -> str:
    """Material cost a lapas owes a supplier."""
    return _code(_LIABILITY, "supplier_payable", lapas, supplier)


def deduction_payable(lapas: str, payee: str) -> str:
    """A policy's fixed deduction a lapas owes a named payee."""
    return _code(_LIABILITY, "deduction_payable", lapas, payee)


def _per_owner(account_type: AccountType, name: str, doc: str) -> Callable[[str], str]:
    """The code helper of the kind ``account_type:name``, opened per one id — a lapas, or an inmate (one body
    serves every such kind)."""

    def code(owner: str) -> str:
        return _code(account_type, name, None, owner)

    code.__doc__ = doc
    return code


pph22_prepaid = _per_owner(_ASSET, "pph22_prepaid", "PPh 22 withheld from a lapas by marketplaces, a tax credit.")
pph22_reclaimable = _per_owner(_ASSET, "pph22_reclaimable", "PPh 22 withheld from an exempt lapas, to claim back.")
pph22_expense = _per_owner(_EXPENSE, "pph22_withheld", "PPh 22 withheld from a lapas that bears it as a cost.")
income_tax_expense = _per_owner(_EXPENSE, "income_tax", "Income tax on a lapas' sales, as their creditable PPh 22.")
income_tax_payable = _per_owner(_LIABILITY, "income_tax_payable", "Income tax a lapas' creditable PPh 22 prepays.")
ppn_output = _per_owner(_LIABILITY, "ppn_output", "Output PPN in the price of a PKP lapas' sales, owed to the state.")
ppn_input = _per_owner(_ASSET, "ppn_input", "Input PPN inside the marketplace fees a PKP lapas paid.")
suspense = _per_owner(_CLEARING, "suspense", "A lapas' settlement and refund differences awaiting reconciliation.")
inmate_receivable = _per_owner(_ASSET, "inmate_receivable", "Premi clawed back after it was paid out (per inmate).")
production_materials = _per_owner(_ASSET, "production_materials", "Materials a lapas bought with production capital.")
inmate_savings = _per_owner(_LIABILITY, "inmate_savings", "Premi held for an inmate until release (pseudonymous id).")
pnbp_payable = _per_owner(_LIABILITY, "pnbp_payable", "The state's share (PNBP) owed via a lapas.")
production_capital = _per_owner(_EQUITY, "production_capital", "A lapas' production capital (equity).")
sales_revenue = _per_owner(_REVENUE, "sales", "Settled sales of a lapas, net of refunds.")
material_cost_expense = _per_owner(_EXPENSE, "material_cost", "Material cost of the goods a lapas sold.")
pnbp_share_expense = _per_owner(_EXPENSE, "pnbp_share", "PNBP share of a lapas' distributed proceeds.")
inmate_premi_expense = _per_owner(_EXPENSE, "inmate_premi", "Premi share of a lapas' distributed proceeds.")
capital_allocation_expense = _per_owner(_EXPENSE, "capital_allocation", "Capital share of a lapas' proceeds.")
split_deduction_expense = _per_owner(_EXPENSE, "split_deduction", "A policy's fixed deductions from a lapas' base.")
undistributed_proceeds = _per_owner(_CLEARING, "undistributed_proceeds", "Gross of completed sales not yet settled.")
unallocated_proceeds = _per_owner(
    _CLEARING, "unallocated_proceeds", "Proceeds whose distribution waits for an allocation or a fix."
)
