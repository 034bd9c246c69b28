"""The summaries of one lapas' books for a period: its taxes (``karya ledger report tax``) and its headline figures
(what `make demo` prints per lapas). Pure, over the books of :mod:`services.ledger.domain.statements`.

The tax statement: output PPN charged on the lapas' sales and input PPN inside marketplace fees, each a sale's
movement of the period (settlements, net of refunds; a deposit, a claim-back or an offset of the tax is not), the net
PPN payable (output less input), PPh 22 withheld per treatment — creditable (``asset:pph22_prepaid``), borne as a cost
(``expense:pph22_withheld``), exempt and to claim back (``asset:pph22_reclaimable``) — the income tax accrued that a
creditable PPh 22 prepays, and what is owed or claimable on those accounts at the report's instant.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from services.ledger.domain import accounts
from services.ledger.domain.accounts import AccountType
from services.ledger.domain.bas import BasMapping
from services.ledger.domain.statements import (
    AccountMoves,
    accounts_of,
    distribution_statement,
    moved,
    pnbp_statement,
    premi_register,
    row,
)

__all__ = ["lapas_totals", "tax_statement"]

_PPH22 = (  # (treatment, line, account type, kind)
    ("creditable", "PPh 22 withheld, creditable (prepaid)", AccountType.ASSET, "pph22_prepaid"),
    ("expense", "PPh 22 withheld, borne as a cost", AccountType.EXPENSE, "pph22_withheld"),
    ("exempt", "PPh 22 withheld, to claim back (exempt)", AccountType.ASSET, "pph22_reclaimable"),
)
_TAX_BALANCES = (  # (line, account type, kind): what is owed or claimable at the report's instant
    ("output PPN owed", AccountType.LIABILITY, "ppn_output"),
    ("input PPN to credit", AccountType.ASSET, "ppn_input"),
    ("PPh 22 prepaid", AccountType.ASSET, "pph22_prepaid"),
    ("PPh 22 to claim back", AccountType.ASSET, "pph22_reclaimable"),
    ("income tax payable", AccountType.LIABILITY, "income_tax_payable"),
)


def _balance(moves: AccountMoves) -> int:
    """The account's normal-side balance at the report's instant."""
    credits = moves.credit_minus_debit()
    return credits if moves.info.normal_side is accounts.Side.CREDIT else -credits


def _tax_rows(
    book: Mapping[str, AccountMoves],
    bas: BasMapping,
    where: tuple[str, str, AccountType, str],
    amount: Callable[[AccountMoves], int] = moved,
) -> list[dict[str, Any]]:
    """A row per account of the kind in ``where`` (section, line, type, kind), of ``amount``; one of 0 and no
    account if the book has none, so every tax line is printed."""
    section, line, account_type, kind = where
    rows = [row(section, line, amount(m), bas, m.account) for m in accounts_of(book, account_type, kind)]
    return rows or [row(section, line, 0, bas)]


def _total(rows: Iterable[dict[str, Any]]) -> int:
    return sum(r["amount"] for r in rows)


def tax_statement(book: Mapping[str, AccountMoves], bas: BasMapping) -> dict[str, Any]:
    """The lapas' taxes of the period: output PPN charged on its sales and input PPN inside marketplace fees (each
    net of refunds) and the net PPN payable; PPh 22 withheld per treatment (creditable, borne as a cost, exempt and
    to claim back) and in total; the income tax accrued; then what is owed or claimable at the report's instant."""
    output = _tax_rows(book, bas, ("PPN", "output PPN", AccountType.LIABILITY, "ppn_output"))
    inputs = _tax_rows(book, bas, ("PPN", "input PPN", AccountType.ASSET, "ppn_input"))
    net = _total(output) - _total(inputs)
    pph22 = {treatment: _tax_rows(book, bas, ("PPh 22", line, t, k)) for treatment, line, t, k in _PPH22}
    withheld = {treatment: _total(rows) for treatment, rows in pph22.items()}
    income_tax = _tax_rows(book, bas, ("income tax", "income tax accrued", AccountType.EXPENSE, "income_tax"))
    ends = [r for line, t, k in _TAX_BALANCES for r in _tax_rows(book, bas, ("at the end", line, t, k), _balance)]
    rows = [
        *output,
        *inputs,
        row("PPN", "net PPN payable", net, bas),
        *(r for part in pph22.values() for r in part),
        row("PPh 22", "PPh 22 withheld, total", sum(withheld.values()), bas),
        *income_tax,
        *ends,
    ]
    return {
        "rows": rows,
        "ppn_output": _total(output),
        "ppn_input": _total(inputs),
        "ppn_net_payable": net,
        "pph22": withheld,
        "pph22_withheld": sum(withheld.values()),
        "income_tax": _total(income_tax),
    }


def lapas_totals(book: Mapping[str, AccountMoves], bas: BasMapping) -> dict[str, int]:
    """The headline figures of one lapas' books: sales (revenue, net of output PPN), PNBP accrued and deposited,
    premi accrued, output and input PPN, PPh 22 withheld per treatment (:func:`tax_statement`)."""
    pnbp = pnbp_statement(book, bas)
    premi = premi_register(book, bas)
    tax = tax_statement(book, bas)
    return {
        "sales": distribution_statement(book, bas)["revenue"],
        "pnbp_accrued": sum(r["accrued"] for r in pnbp),
        "pnbp_deposited": sum(r["deposited"] for r in pnbp),
        "premi_accrued": sum(r["accrued"] for r in premi),
        "ppn_output": tax["ppn_output"],
        "ppn_input": tax["ppn_input"],
        **{f"pph22_{treatment}": amount for treatment, amount in tax["pph22"].items()},
    }
