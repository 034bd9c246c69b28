"""The payout use case: pay an inmate's savings out — on release, as an allowance or periodically — once per payout
id, never above the balance, recording who paid and whether the inmate registry confirmed the payee.

The balance is read and the payout posted in ONE transaction, under the lock order of
:mod:`services.ledger.adapters.locks`: the journal lock first (it stops every posting, so no other posting can move
the balance meanwhile), then the savings balance is read. Two payouts racing for the same savings are therefore
decided one after the other: the second one sees what the first one left. Should anything still take savings below
zero, the database refuses the statement (check ``savings_never_negative``) and the payout is refused under the
same rule. A payout is also refused when the stored balance differs from the sum of the account's journal lines
(rule ``balance_matches_journal``): only the schema owner can write balances, and not even it can fake one into
paying out.

The payout's type and acting user are recorded on the entry (its memo and the request its hash is taken of, both in
the hash chain). Given the payee's registration number (and optionally name), the registry must confirm that the
pseudonymous id is that person, and that a release payout goes to a released person and an allowance or periodic
one to a person in custody (:func:`services.ledger.domain.settlements.check_payee`); the ledger never reads the
registry itself: ``ledger.registry_payee`` (``ledger_0011``) answers a verdict. A payout without a payee is posted
as before, its memo saying that the registry was not asked; a release payout without an acting user or payee
hashes and reads exactly as payouts always have, so a retry of one posted before still matches.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy.exc import IntegrityError

from infra.db.refusals import constraint_of
from infra.db.unit_of_work import UnitOfWork
from services.ledger.adapters.inmates_repo import inmate_lapas
from services.ledger.adapters.journal_repo import line_balances, normal_balances, post_entries, posted_request
from services.ledger.adapters.locks import lock_journal
from services.ledger.adapters.settlements_repo import registry_verdict
from services.ledger.domain import accounts
from services.ledger.domain.errors import InsufficientBalanceError, LedgerDomainError
from services.ledger.domain.journal import EntryKind, JournalEntry, request_hash
from services.ledger.domain.model import PayoutRequest
from services.ledger.domain.postings import build_payout, payout_key
from services.ledger.domain.settlements import PayoutType, RegistryVerdict, check_payee
from services.ledger.outbound import LedgerTopics, entry_posted_messages

SAVINGS_RULE = "savings_never_negative"
"""The rule a payout above the savings balance breaks (also the name of the database check that enforces it)."""


@dataclass(frozen=True)
class PayoutOutcome:
    """What :func:`pay_out` did: posted now (with the savings left), or found already posted."""

    posted: bool
    savings_after: int | None = None


#: A release date is reached once that day has begun anywhere in Indonesia (WIT, the easternmost zone).
RELEASE_DAY_ZONE = ZoneInfo("Asia/Jayapura")


@dataclass(frozen=True)
class Payee:
    """Who the person paying out says receives the money: the registration number in the inmate registry and,
    optionally, the full name. Personal data: passed to the registry check only, never stored, hashed or logged."""

    registration_no: str
    full_name: str | None = None

    def __repr__(self) -> str:
        return "Payee(<redacted>)"


@dataclass(frozen=True)
class PayoutTerms:
    """What a payout records beyond its amount: its type, who paid it out and the registry's verdict on the payee
    (``None``: not asked)."""

    payout_type: PayoutType = PayoutType.RELEASE
    paid_by: str | None = None
    registry: RegistryVerdict | None = None

    @property
    def legacy(self) -> bool:
        """A release payout with no acting user and no payee: recorded exactly as payouts were before types."""
        return self.payout_type is PayoutType.RELEASE and self.paid_by is None and self.registry is None


@dataclass(frozen=True)
class TypedPayout:
    """The request a typed payout's hash is taken of (no personal data: only whether the registry confirmed)."""

    payout: PayoutRequest
    payout_type: str
    paid_by: str | None
    registry_checked: bool


@dataclass(frozen=True)
class PayoutFacts:
    """What the payout plan reads, loaded under the journal lock: the request hash and effective time of an entry
    already posted under the payout's key (if any), the savings balance as stored and as its lines sum it, and the
    inmate's lapas (whose bank pays; :func:`~services.ledger.adapters.inmates_repo.inmate_lapas`)."""

    posted: tuple[str, datetime] | None
    balance: int
    from_lines: int
    lapas: str = accounts.UNKNOWN_LAPAS


def _hash(request: PayoutRequest, terms: PayoutTerms) -> str:
    if terms.legacy:
        return request_hash(EntryKind.PAYOUT, request)
    typed = TypedPayout(request, terms.payout_type.value, terms.paid_by, terms.registry is not None)
    return request_hash(EntryKind.PAYOUT, typed)


def _recorded(entry: JournalEntry, request: PayoutRequest, terms: PayoutTerms) -> JournalEntry:
    """``entry`` with the payout's type, acting user and registry check in its memo and request hash."""
    if terms.legacy:
        return entry
    payee = "confirmed by the inmate registry" if terms.registry is not None else "not checked against the registry"
    memo = (
        f"savings payout {request.payout_id} ({terms.payout_type.value}) to {request.inmate_id}: {request.amount}; "
        f"paid by {terms.paid_by or 'an unnamed user'}; payee {payee}"
    )
    return replace(entry, memo=memo, request_hash=_hash(request, terms))


def plan_payout(request: PayoutRequest, facts: PayoutFacts, terms: PayoutTerms | None = None) -> JournalEntry | None:
    """The payout entry to post, or ``None`` for a retry of a payout already posted. Pure. Raises
    :class:`LedgerDomainError` for a payout id used for a different payout or a balance its lines disown,
    :class:`InsufficientBalanceError` (naming :data:`SAVINGS_RULE`) above the savings balance, and the refusals of
    :func:`~services.ledger.domain.settlements.check_payee` when the registry was asked."""
    terms = terms or PayoutTerms()
    account = accounts.inmate_savings(request.inmate_id)
    if facts.posted is not None:
        # A retry: the same request hashes the same at the time it was first posted (the balance already paid
        # for it, so it is not checked again).
        stored_hash, first_paid_at = facts.posted
        if _hash(replace(request, paid_at=first_paid_at), terms) != stored_hash:
            raise LedgerDomainError(f"payout id {request.payout_id} was already used for a different payout")
        return None
    if terms.registry is not None:
        check_payee(request.inmate_id, terms.payout_type, terms.registry)
    if facts.balance != facts.from_lines:
        # Only the schema owner can write balances now; a payout never relies on a figure its lines disown.
        raise LedgerDomainError(
            f"payout refused (balance_matches_journal): the stored balance of {account} is "
            f"{facts.balance} but its journal lines sum to {facts.from_lines}; run karya ledger verify"
        )
    try:
        return _recorded(build_payout(request, {account: facts.balance}, facts.lapas), request, terms)
    except InsufficientBalanceError as exc:
        raise InsufficientBalanceError(f"payout refused ({SAVINGS_RULE}): {exc}") from exc


async def pay_out(
    uow: UnitOfWork,
    topics: LedgerTopics,
    inmate_id: str,
    amount: int,
    payout_id: str,
    paid_at: datetime,
    *,
    payout_type: PayoutType = PayoutType.RELEASE,
    paid_by: str | None = None,
    payee: Payee | None = None,
) -> PayoutOutcome:
    """Post the payout ``payout_id`` of ``payout_type`` by ``paid_by`` in ``uow``'s transaction (the caller
    commits; its ``entry_posted`` goes to ``topics.entries``); a retry of the same payout is answered as already
    posted. With a ``payee``, the registry must confirm it first. Raises what :func:`plan_payout` raises, and
    :class:`InsufficientBalanceError` if the database still refuses the payout under :data:`SAVINGS_RULE`."""
    request = PayoutRequest(inmate_id, payout_id, amount, paid_at)
    account = accounts.inmate_savings(inmate_id)
    paid_by = (paid_by or "").strip() or None
    # load, under the lock order of services.ledger.adapters.locks: the journal lock first
    await lock_journal(uow)
    posted = await posted_request(uow, payout_key(inmate_id, payout_id))
    verdict = None
    if posted is None:
        balance = (await normal_balances(uow, [account])).get(account, 0)
        from_lines = (await line_balances(uow, [account])).get(account, 0)
        lapas = (await inmate_lapas(uow, [inmate_id])).get(inmate_id, accounts.UNKNOWN_LAPAS)
        if payee is not None:
            day = paid_at.astimezone(RELEASE_DAY_ZONE).date()
            verdict = await registry_verdict(uow, inmate_id, payee.registration_no, payee.full_name, day)
    else:
        balance = from_lines = 0  # not read: a retry is decided by the stored request alone
        lapas = accounts.UNKNOWN_LAPAS
        verdict = None if payee is None else RegistryVerdict.IN_CUSTODY  # only "asked" enters the request hash
    # plan
    terms = PayoutTerms(payout_type, paid_by, verdict)
    entry = plan_payout(request, PayoutFacts(posted, balance, from_lines, lapas), terms)
    if entry is None:
        return PayoutOutcome(posted=False)
    # write
    try:
        result = await post_entries(uow, [(entry, f"cli:payout:{payout_id}")])
    except IntegrityError as exc:
        if constraint_of(exc) == SAVINGS_RULE:
            raise InsufficientBalanceError(
                f"payout refused ({SAVINGS_RULE}): payout {payout_id} of {amount} for {inmate_id} would take "
                "the savings below zero"
            ) from exc
        raise
    # Announced in the posting's transaction, like every other posting; a running ledger's relay publishes it.
    await uow.publish(entry_posted_messages(result.posted, topics))
    if result.conflicts:
        raise LedgerDomainError(f"payout id {payout_id} was already used for a different payout")
    if result.already_posted:
        return PayoutOutcome(posted=False)
    return PayoutOutcome(posted=True, savings_after=balance - amount)
