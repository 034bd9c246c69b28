"""Reports per lapas and period, shaped from journal movements: balance sheet, income statement, distribution
statement (laporan pembagian hasil), premi register, PNBP accrued vs deposited, supplier statements (the tax
statement and the headline figures: :mod:`services.ledger.domain.summaries`). Pure: the SQL that totals the journal
is :mod:`services.ledger.statements`; this module only attributes and arranges.

A :class:`Movement` is the debit and credit total of one account in the entries of one lapas and one entry kind,
before the period (``before``) or inside it. :func:`lapas_of_account` says which lapas a line belongs to;
:func:`books` keeps one lapas' lines and totals them per account (:class:`AccountMoves`); each report function shapes
those into rows that carry the account's BAS code (:mod:`services.ledger.domain.bas`).

Presentation rules (docs/accounting.md, "Reports per lapas"): the balance sheet satisfies assets = liabilities
(clearing included) + equity + result of the period, the result of earlier periods being part of equity; the income
statement shows the PNBP share as the state's revenue and the capital allocation as an appropriation below the
result, not as an expense (revenue is net of output PPN; PPh 22 borne as a cost and the income tax a creditable PPh 22
prepays are expenses); the distribution statement's legs sum to the sales of the period (revenue and the output PPN
in the price).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from services.ledger.domain import accounts
from services.ledger.domain.accounts import AccountType
from services.ledger.domain.bas import BasMapping

__all__ = [
    "AccountMoves",
    "Movement",
    "accounts_of",
    "attributed",
    "balance_sheet",
    "books",
    "distribution_statement",
    "income_statement",
    "lapas_of_account",
    "lapas_owned_kinds",
    "moved",
    "pnbp_statement",
    "premi_register",
    "row",
    "supplier_statements",
]


def lapas_owned_kinds() -> list[str]:
    """The account kinds (``type:kind``) whose owner is a lapas in today's chart."""
    return sorted(f"{k.type}:{k.name}" for k in accounts.KINDS.values() if k.owner == "lapas")


def lapas_of_account(account: str, entry_lapas: str | None) -> str | None:
    """The lapas a journal line on ``account`` belongs to, for an entry of ``entry_lapas``.

    The chart decides (:func:`services.ledger.domain.accounts.account_lapas`: every account a sale touches carries
    its lapas, issue 17 item 1); an account whose code names no lapas — an inmate's savings or receivable, a legacy
    global code of before per-lapas accounts — belongs to the lapas of the entry (its order's
    ``order_facts.lapas_id``, else the lapas its lapas-owned lines or its inmate's accruals name:
    :mod:`services.ledger.statements`).
    """
    return accounts.account_lapas(account) or entry_lapas


@dataclass(frozen=True, slots=True)
class Movement:
    """Debit and credit totals of ``account`` over entries of one lapas (``entry_lapas``) and one kind, effective
    before the period start (``before``) or from it up to the report's instant."""

    account: str
    entry_lapas: str | None
    entry_kind: str
    before: bool
    debit: int
    credit: int


@dataclass
class AccountMoves:
    """One account in one lapas' books: its debit and credit before the period and inside it, by entry kind."""

    account: str
    opening_debit: int = 0
    opening_credit: int = 0
    period: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def info(self) -> accounts.AccountInfo:
        """The parsed account code."""
        return accounts.account_info(self.account)

    def credit_minus_debit(self, *, opening: bool = True, period: bool = True) -> int:
        """Credits less debits over the opening part, the period, or both."""
        total = self.opening_credit - self.opening_debit if opening else 0
        if period:
            total += sum(c - d for d, c in self.period.values())
        return total

    def period_side(self, side: str, kinds: Iterable[str] | None = None, *, exclude: Iterable[str] = ()) -> int:
        """Debits (``"D"``) or credits (``"C"``) of the period, of entries of ``kinds`` (all unless given), less
        those of the ``exclude``d kinds."""
        wanted = None if kinds is None else set(kinds)
        skipped = set(exclude)
        index = 0 if side == "D" else 1
        return sum(v[index] for k, v in self.period.items() if (wanted is None or k in wanted) and k not in skipped)


def books(movements: Iterable[Movement], lapas: str) -> dict[str, AccountMoves]:
    """The accounts of ``lapas``' books: every movement whose line belongs to it (:func:`lapas_of_account`)."""
    kept: dict[str, AccountMoves] = {}
    for m in movements:
        if lapas_of_account(m.account, m.entry_lapas) != lapas:
            continue
        moves = kept.setdefault(m.account, AccountMoves(m.account))
        if m.before:
            moves.opening_debit += m.debit
            moves.opening_credit += m.credit
        else:
            d, c = moves.period.get(m.entry_kind, (0, 0))
            moves.period[m.entry_kind] = (d + m.debit, c + m.credit)
    return dict(sorted(kept.items()))


def accounts_of(book: Mapping[str, AccountMoves], account_type: AccountType, *names: str) -> list[AccountMoves]:
    """The book's accounts of ``account_type`` (of the kinds ``names`` if given), by code."""
    return [m for m in book.values() if m.info.kind.type == account_type and (not names or m.info.kind.name in names)]


def row(section: str, line: str, amount: int, bas: BasMapping, account: str | None = None) -> dict[str, Any]:
    """One line of a statement: its section and line, the account (if one) with its BAS code and status, the
    amount."""
    code = bas.of(account) if account is not None else None
    return {
        "section": section,
        "line": line,
        "account": account or "",
        "bas_code": code.code if code else "",
        "bas_status": code.status if code else "",
        "amount": amount,
    }


def _result(book: Mapping[str, AccountMoves], *, opening: bool, period: bool) -> int:
    """Revenue less expenses (every expense account, the capital allocation included)."""
    return sum(
        m.credit_minus_debit(opening=opening, period=period)
        for m in book.values()
        if m.info.kind.type in (AccountType.REVENUE, AccountType.EXPENSE)
    )


def balance_sheet(book: Mapping[str, AccountMoves], bas: BasMapping) -> dict[str, Any]:
    """Assets, liabilities (clearing accounts included, credit positive), equity (the production capital and the
    result of earlier periods) and the result of the period, at the report's instant."""
    rows = [
        row("assets", m.info.kind.name, -m.credit_minus_debit(), bas, m.account)
        for m in accounts_of(book, AccountType.ASSET)
    ]
    assets = sum(r["amount"] for r in rows)
    liability_rows = [
        row("liabilities", m.info.kind.name, m.credit_minus_debit(), bas, m.account)
        for m in accounts_of(book, AccountType.LIABILITY) + accounts_of(book, AccountType.CLEARING)
    ]
    equity_rows = [
        row("equity", m.info.kind.name, m.credit_minus_debit(), bas, m.account)
        for m in accounts_of(book, AccountType.EQUITY)
    ]
    earlier = _result(book, opening=True, period=False)
    equity_rows.append(row("equity", "result of earlier periods", earlier, bas))
    result = _result(book, opening=False, period=True)
    liabilities = sum(r["amount"] for r in liability_rows)
    equity = sum(r["amount"] for r in equity_rows)
    rows += liability_rows + equity_rows + [row("result", "result of the period", result, bas)]
    return {
        "rows": rows,
        "assets": assets,
        "liabilities": liabilities,
        "equity": equity,
        "period_result": result,
        "balanced": assets == liabilities + equity + result,
    }


_BELOW_RESULT = {"pnbp_share", "capital_allocation"}


def income_statement(book: Mapping[str, AccountMoves], bas: BasMapping) -> dict[str, Any]:
    """The period's revenue less its expenses; then the PNBP share as the state's revenue, giving the result; then
    the capital allocation as an appropriation of it, giving the unappropriated result (= the balance sheet's result
    of the period)."""
    revenue = [
        row("revenue", m.info.kind.name, m.credit_minus_debit(opening=False), bas, m.account)
        for m in accounts_of(book, AccountType.REVENUE)
    ]
    expenses = [
        row("expenses", m.info.kind.name, -m.credit_minus_debit(opening=False), bas, m.account)
        for m in accounts_of(book, AccountType.EXPENSE)
        if m.info.kind.name not in _BELOW_RESULT
    ]
    state = [
        row("state revenue (PNBP)", "PNBP share", -m.credit_minus_debit(opening=False), bas, m.account)
        for m in accounts_of(book, AccountType.EXPENSE, "pnbp_share")
    ]
    appropriation = [
        row("appropriation", "to production capital", -m.credit_minus_debit(opening=False), bas, m.account)
        for m in accounts_of(book, AccountType.EXPENSE, "capital_allocation")
    ]
    total = {
        name: sum(r["amount"] for r in part)
        for name, part in (
            ("revenue", revenue),
            ("expenses", expenses),
            ("pnbp", state),
            ("appropriated", appropriation),
        )
    }
    surplus = total["revenue"] - total["expenses"]
    result = surplus - total["pnbp"]
    unappropriated = result - total["appropriated"]
    rows = [
        *revenue,
        *expenses,
        row("subtotal", "surplus before the state's share", surplus, bas),
        *state,
        row("result", "result of the period", result, bas),
        *appropriation,
        row("result", "unappropriated result", unappropriated, bas),
    ]
    return {
        "rows": rows,
        "revenue": total["revenue"],
        "expenses": total["expenses"],
        "pnbp_share": total["pnbp"],
        "result": result,
        "appropriated": total["appropriated"],
        "unappropriated": unappropriated,
    }


_TAX_KINDS = ("settlement", "refund")
"""Entry kinds whose lines on a tax balance account are a sale's: withheld or charged at settlement, given back by a
refund (a claim-back, a deposit or an offset of the tax is not a leg of a sale)."""
_LEGS = (  # (section, line, account type, kind): each leg reads what the period moved on its normal side (moved)
    ("deductions", "output PPN", AccountType.LIABILITY, "ppn_output"),
    ("deductions", "marketplace fees", AccountType.EXPENSE, "marketplace_fee"),
    ("deductions", "PPh 22 withheld", AccountType.ASSET, "pph22_prepaid"),
    ("deductions", "PPh 22 withheld, borne as a cost", AccountType.EXPENSE, "pph22_withheld"),
    # PPh 22 to claim back (exempt) is no deduction: the posting path splits it with the proceeds (tax.py).
    ("suppliers", "material cost", AccountType.EXPENSE, "material_cost"),
    ("deductions", "policy deductions", AccountType.EXPENSE, "split_deduction"),
    ("PNBP", "PNBP share", AccountType.EXPENSE, "pnbp_share"),
    ("premi", "premi share", AccountType.EXPENSE, "inmate_premi"),
    ("capital", "production capital", AccountType.EXPENSE, "capital_allocation"),
)
_SALE_TAX = {"ppn_output", "ppn_input", "pph22_prepaid", "pph22_reclaimable"}


def moved(moves: AccountMoves) -> int:
    """What the period moved on an account, on its normal side: for a tax balance account (:data:`_SALE_TAX`) only
    a sale's lines (:data:`_TAX_KINDS`), for any other every entry's."""
    kinds = _TAX_KINDS if moves.info.kind.name in _SALE_TAX else None
    debits = moves.period_side("D", kinds) - moves.period_side("C", kinds)
    return debits if moves.info.normal_side is accounts.Side.DEBIT else -debits


def distribution_statement(book: Mapping[str, AccountMoves], bas: BasMapping) -> dict[str, Any]:
    """Laporan pembagian hasil of the period: sales (revenue and the output PPN in the price), then where they
    went — output PPN, marketplace fees net of their input PPN (which the PPN return credits against the output),
    PPh 22 withheld (creditable) or borne as a cost (a PPh 22 to claim back is split with the proceeds, so it is
    no deduction), the material cost (owed to suppliers), the policy deductions, PNBP, premi,
    capital — and what is not distributed (held or awaiting reconciliation), so the legs sum to the sales."""
    revenue_rows = [
        row("sales", "sales", m.credit_minus_debit(opening=False), bas, m.account)
        for m in accounts_of(book, AccountType.REVENUE, "sales")
    ]
    ppn_rows = [
        row("sales", "output PPN in the price", moved(m), bas, m.account)
        for m in accounts_of(book, AccountType.LIABILITY, "ppn_output")
    ]
    rows = revenue_rows + ppn_rows
    sales = sum(r["amount"] for r in rows)
    legs = []
    for section, line, account_type, kind in _LEGS:
        for m in accounts_of(book, account_type, kind):
            legs.append(row(section, line, moved(m), bas, m.account))
    held = sales - sum(r["amount"] for r in legs)
    legs.append(row("not distributed", "held or awaiting reconciliation", held, bas))
    return {
        "rows": rows + legs,
        "sales": sales,
        "revenue": sum(r["amount"] for r in revenue_rows),
        "legs_total": sum(r["amount"] for r in legs),
        "held": held,
    }


def _register(moves: AccountMoves, paid_kind: str) -> dict[str, int]:
    opening = moves.credit_minus_debit(period=False)
    accrued = moves.period_side("C")
    paid = moves.period_side("D", (paid_kind,))
    other = moves.period_side("D", exclude=(paid_kind,))
    return {
        "opening": opening,
        "accrued": accrued,
        "taken_back": other,
        "paid": paid,
        "balance": opening + accrued - other - paid,
    }


def _registers(book: Mapping[str, AccountMoves], bas: BasMapping, kind: str, paid_kind: str) -> list[dict[str, Any]]:
    return [
        {"account": m.account, "owner": m.info.owner, "bas_code": bas.of(m.account).code, **_register(m, paid_kind)}
        for m in accounts_of(book, AccountType.LIABILITY, kind)
    ]


def premi_register(book: Mapping[str, AccountMoves], bas: BasMapping) -> list[dict[str, Any]]:
    """Per inmate (pseudonymous id only): savings at the period start, premi accrued, clawed back (refunds,
    reversals), paid out, balance."""
    return [
        {"inmate_id": r.pop("owner"), **r, "clawed_back": r.pop("taken_back"), "paid_out": r.pop("paid")}
        for r in _registers(book, bas, "inmate_savings", "payout")
    ]


def pnbp_statement(book: Mapping[str, AccountMoves], bas: BasMapping) -> list[dict[str, Any]]:
    """The lapas' PNBP payable: owed at the period start, accrued, reversed (refunds), deposited to the treasury
    (entries of kind ``pnbp_deposit``), still owed."""
    return [
        {"lapas_id": r.pop("owner"), **r, "reversed": r.pop("taken_back"), "deposited": r.pop("paid")}
        for r in _registers(book, bas, "pnbp_payable", "pnbp_deposit")
    ]


def supplier_statements(book: Mapping[str, AccountMoves], bas: BasMapping) -> list[dict[str, Any]]:
    """Per supplier of the lapas: payable at the period start, accrued (material cost), returned (restocks,
    refunds), paid (entries of kind ``supplier_payment``), balance."""
    return [
        {"supplier_id": r.pop("owner"), **r, "returned": r.pop("taken_back"), "paid": r.pop("paid")}
        for r in _registers(book, bas, "supplier_payable", "supplier_payment")
    ]


def attributed(movements: Iterable[Movement]) -> list[str]:
    """Every lapas some line of ``movements`` belongs to, sorted."""
    seen: dict[str, int] = defaultdict(int)
    for m in movements:
        lapas = lapas_of_account(m.account, m.entry_lapas)
        if lapas is not None:
            seen[lapas] += 1
    return sorted(seen)
