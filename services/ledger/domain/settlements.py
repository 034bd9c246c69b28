"""Settling what is owed: a PNBP deposit to the treasury, a supplier payment, a use of production capital (each
proposed by one person and posted when another approves, through the corrections' four-eyes machinery), and the
rules of an inmate payout's type and payee. Pure: no I/O.

Journals (docs/accounting.md, "Settling what is owed"):

- PNBP deposit: Dr ``liability:pnbp_payable:<lapas>`` / Cr ``asset:bank:<bank>``, under
  ``pnbp_deposit:<lapas>:<billing code>`` (the SIMPONI billing code: 15 digits); the receipt number NTPN (16 letters
  or digits) is its reference.
- Supplier payment: Dr ``liability:supplier_payable:<supplier>`` / Cr bank, under
  ``supplier_payment:<supplier>:<reference>`` (the payment reference, e.g. the transfer's).
- Use of production capital: Dr ``asset:production_materials:<lapas>`` / Cr bank, under
  ``capital_use:<lapas>:<reference>``. The equity is not debited: spending cash on materials exchanges one asset for
  another; ``equity:production_capital`` stays the appropriation that funds them. What may still be spent is the
  appropriation not yet invested in materials.

Rules (each refusal names its rule): ``positive_amount``; ``billing_code_format``, ``ntpn_format``,
``reference_format``; ``within_balance`` — never more than the payable's balance (or the capital not yet spent),
checked at proposal and again at approval against the balances then; ``settle_once`` — one entry per posting key: a
proposal of a key already posted, or of a key another open proposal holds with different terms, is refused (the
same terms again answer with the open proposal). And for payouts: ``payee_is_registered`` (the registry names the
pseudonymous id as the person the payout names) and ``payout_type_fits_custody`` (a release payout to a released
person, an allowance or periodic payout to one in custody).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from services.ledger.domain import accounts
from services.ledger.domain.accounts import Side, account_info
from services.ledger.domain.corrections import CorrectionKind, CorrectionRefused, Draft, Proposal
from services.ledger.domain.errors import AccountCodeError
from services.ledger.domain.journal import Line

__all__ = [
    "SETTLEMENT_KINDS",
    "PayoutType",
    "RegistryVerdict",
    "Settlement",
    "SettlementRefused",
    "available",
    "check_approval",
    "check_payee",
    "limit_accounts",
    "plan_settlement",
    "settlement_of",
]

SETTLEMENT_KINDS = (CorrectionKind.PNBP_DEPOSIT, CorrectionKind.SUPPLIER_PAYMENT, CorrectionKind.CAPITAL_USE)
BILLING_CODE = re.compile(r"[0-9]{15}")
NTPN = re.compile(r"[0-9A-Z]{16}")
REFERENCE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,63}")


class SettlementRefused(CorrectionRefused):
    """A settlement or payout breaks a rule; the message starts with ``<what> refused (<rule>)``."""


@dataclass(frozen=True, slots=True)
class Settlement:
    """What a person proposes to settle: ``amount`` rupiah of ``owner``'s payable (a lapas' PNBP, a supplier) or
    capital (a lapas), from bank account ``bank`` of the lapas whose books it is in. ``reference``: the billing
    code (PNBP), the payment or purchase reference; ``receipt``: the NTPN of a PNBP deposit; ``lapas``: the lapas
    paying a supplier (a PNBP deposit and a use of capital are of the ``owner`` lapas)."""

    kind: CorrectionKind
    owner: str
    amount: int
    reference: str
    receipt: str | None = None
    bank: str = "main"
    lapas: str | None = None

    @property
    def books(self) -> str:
        """The lapas whose books the settlement is in (its bank is that lapas')."""
        if self.kind is CorrectionKind.SUPPLIER_PAYMENT:
            return self.lapas or ""
        return self.owner

    @property
    def what(self) -> str:
        """``PNBP deposit of cipinang`` and the like (messages)."""
        return {
            CorrectionKind.PNBP_DEPOSIT: f"PNBP deposit of {self.owner}",
            CorrectionKind.SUPPLIER_PAYMENT: f"payment to supplier {self.owner} by {self.lapas}",
            CorrectionKind.CAPITAL_USE: f"use of {self.owner}'s production capital",
        }[self.kind]

    @property
    def posting_key(self) -> str:
        """``pnbp_deposit:<lapas>:<billing code>``, ``supplier_payment:<lapas>:<supplier>:<reference>``,
        ``capital_use:<lapas>:<reference>``."""
        if self.kind is CorrectionKind.SUPPLIER_PAYMENT:
            return f"{self.kind.value}:{self.lapas}:{self.owner}:{self.reference}"
        return f"{self.kind.value}:{self.owner}:{self.reference}"


def _debited(settlement: Settlement) -> str:
    kind, owner = settlement.kind, settlement.owner
    if kind is CorrectionKind.PNBP_DEPOSIT:
        return accounts.pnbp_payable(owner)
    if kind is CorrectionKind.SUPPLIER_PAYMENT:
        return accounts.supplier_payable(settlement.books, owner)
    return accounts.production_materials(owner)


def limit_accounts(settlement: Settlement) -> tuple[str, ...]:
    """The accounts whose normal-side balances bound a settlement: the payable, or capital and what it bought."""
    if settlement.kind is CorrectionKind.CAPITAL_USE:
        return accounts.production_capital(settlement.owner), accounts.production_materials(settlement.owner)
    return (_debited(settlement),)


def available(settlement: Settlement, balances: dict[str, int]) -> int:
    """What may still be settled: the payable's balance, or the capital not yet spent on materials (an absent
    account is 0)."""
    first, *rest = (balances.get(a, 0) for a in limit_accounts(settlement))
    return first - sum(rest)


def _format(settlement: Settlement, what: str) -> None:
    if type(settlement.amount) is not int or settlement.amount <= 0:
        raise SettlementRefused(f"{what} refused (positive_amount): {settlement.amount!r} is not whole rupiah above 0")
    try:
        _debited(settlement)
        accounts.bank(settlement.books, settlement.bank)
    except AccountCodeError as exc:
        raise SettlementRefused(f"{what} refused: {exc}") from None
    if settlement.kind is CorrectionKind.PNBP_DEPOSIT:
        if not BILLING_CODE.fullmatch(settlement.reference):
            raise SettlementRefused(
                f"{what} refused (billing_code_format): the SIMPONI billing code is 15 digits, "
                f"got {settlement.reference!r}"
            )
        if settlement.receipt is None or not NTPN.fullmatch(settlement.receipt):
            raise SettlementRefused(
                f"{what} refused (ntpn_format): the NTPN is 16 upper-case letters or digits, got {settlement.receipt!r}"
            )
    elif not REFERENCE.fullmatch(settlement.reference):
        raise SettlementRefused(
            f"{what} refused (reference_format): a reference is 1-64 letters, digits, '.', '_', '/' or '-', "
            f"starting with a letter or digit; got {settlement.reference!r}"
        )


def _within(settlement: Settlement, left: int, what: str) -> None:
    if settlement.amount > left:
        owed = "production capital not yet spent" if settlement.kind is CorrectionKind.CAPITAL_USE else "balance"
        raise SettlementRefused(
            f"{what} refused (within_balance): {settlement.amount:,} exceeds the {owed} {left:,} "
            f"of {limit_accounts(settlement)[0]}"
        )


def _lines(settlement: Settlement) -> tuple[Line, ...]:
    return (
        Line(_debited(settlement), Side.DEBIT, settlement.amount),
        Line(accounts.bank(settlement.books, settlement.bank), Side.CREDIT, settlement.amount),
    )


def plan_settlement(
    settlement: Settlement,
    balances: dict[str, int],
    *,
    posted: bool,
    pending: Proposal | None,
    reason: str | None,
    proposed_by: str,
) -> Draft | Proposal:
    """The proposal to store for ``settlement`` given the normal-side ``balances`` of its
    :func:`limit_accounts`, whether its posting key is ``posted`` and the open proposal ``pending`` of that key:
    a new :class:`Draft`, or ``pending`` itself when it proposes the same (a retry). Raises
    :class:`SettlementRefused` naming the rule it breaks."""
    what = f"{settlement.what} {settlement.reference}"
    who = (proposed_by or "").strip()
    if not who:
        raise SettlementRefused(f"{what} refused (acting_user_required): name the acting user (--as or KARYA_USER)")
    _format(settlement, what)
    key = settlement.posting_key
    if posted:
        raise SettlementRefused(f"{what} refused (settle_once): {key} is already posted")
    draft = Draft(
        settlement.kind,
        None,
        (reason or "").strip() or settlement.what,
        who,
        _lines(settlement),
        memo=f"billing code {settlement.reference}, NTPN {settlement.receipt}"
        if settlement.kind is CorrectionKind.PNBP_DEPOSIT
        else None,
        reference=settlement.receipt if settlement.kind is CorrectionKind.PNBP_DEPOSIT else settlement.reference,
        posting_key=key,
    )
    if pending is not None:
        same = pending.draft.lines == draft.lines and pending.draft.reference == draft.reference
        if same:
            return pending
        raise SettlementRefused(
            f"{what} refused (settle_once): proposal {pending.proposal_id} already proposes {key} with other terms "
            f"(its proposer withdraws it: karya ledger withdraw {pending.proposal_id})"
        )
    _within(settlement, available(settlement, balances), what)
    return draft


def settlement_of(proposal: Proposal) -> Settlement | None:
    """The settlement a stored proposal posts (``None`` for a revert or adjustment)."""
    draft = proposal.draft
    if draft.kind not in SETTLEMENT_KINDS or draft.posting_key is None:
        return None
    debit = next(line for line in draft.lines if line.side is Side.DEBIT)
    credit = next(line for line in draft.lines if line.side is Side.CREDIT)
    payable, paid_from = account_info(debit.account), account_info(credit.account)
    owner, bank = payable.owner, paid_from.owner
    assert owner is not None and bank is not None
    reference = draft.posting_key.rsplit(":", 1)[1]
    receipt = draft.reference if draft.kind is CorrectionKind.PNBP_DEPOSIT else None
    lapas = paid_from.lapas if draft.kind is CorrectionKind.SUPPLIER_PAYMENT else None
    return Settlement(draft.kind, owner, debit.amount, reference, receipt, bank, lapas)


def check_approval(proposal: Proposal, balances: dict[str, int], *, posted: bool) -> None:
    """Refuse approving a settlement whose key is already ``posted`` (``settle_once``) or above what is available
    now (``within_balance``): another settlement, a refund or a revert may have lowered the payable since it was
    proposed. Nothing to check for a correction."""
    settlement = settlement_of(proposal)
    if settlement is None:
        return
    what = f"approval of proposal {proposal.proposal_id}"
    if posted:
        raise SettlementRefused(f"{what} refused (settle_once): {settlement.posting_key} is already posted")
    _within(settlement, available(settlement, balances), what)


class PayoutType(StrEnum):
    """Why an inmate's savings are paid out: on release, an allowance to use inside (a 2010 circular lets an
    inmate use part of the premi), or a periodic payout (e.g. onto an e-money card)."""

    RELEASE = "release"
    ALLOWANCE = "allowance"
    PERIODIC = "periodic"


class RegistryVerdict(StrEnum):
    """What the inmate registry says of a payee (``ledger.registry_payee``, ledger_0011): never who they are."""

    UNKNOWN = "unknown"
    MISMATCH = "mismatch"
    RELEASED = "released"
    IN_CUSTODY = "in_custody"


def check_payee(inmate_id: str, payout_type: PayoutType, verdict: RegistryVerdict) -> None:
    """Refuse a payout whose payee the registry does not confirm (``payee_is_registered``), or whose type does not
    fit the person's custody (``payout_type_fits_custody``). Messages carry the pseudonymous id only."""
    what = f"{payout_type.value} payout to {inmate_id}"
    if verdict in (RegistryVerdict.UNKNOWN, RegistryVerdict.MISMATCH):
        found = "has no entry" if verdict is RegistryVerdict.UNKNOWN else "names someone else"
        raise SettlementRefused(
            f"{what} refused (payee_is_registered): the inmate registry {found} for this id with the registration "
            "number (and name) given"
        )
    released = verdict is RegistryVerdict.RELEASED
    if (payout_type is PayoutType.RELEASE) != released:
        state = "released" if released else "still in custody"
        raise SettlementRefused(
            f"{what} refused (payout_type_fits_custody): the registry records the person as {state}; a release "
            "payout is made on release, an allowance or periodic payout during custody"
        )
