"""The payout use case: pay an inmate's savings out on release, once per payout id, never above the balance.

The balance is read and the payout posted in ONE transaction, under the lock order of
:mod:`services.ledger.adapters.locks`: the chain head first (every posting takes it, so no other posting can move
the balance meanwhile), then the savings balance is read. Two payouts racing for the same savings are therefore
decided one after the other: the second one sees what the first one left. Should anything still take savings below
zero, the database refuses the statement (check ``savings_never_negative``) and the payout is refused under the
same rule. A payout is also refused when the stored balance differs from the sum of the account's journal lines
(rule ``balance_matches_journal``): only the schema owner can write balances, and not even it can fake one into
paying out.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy.exc import IntegrityError

from infra.db.unit_of_work import UnitOfWork
from services.ledger.adapters.journal_repo import line_balances, post_entries, posted_request
from services.ledger.adapters.locks import balances_under_chain_head, lock_chain_head
from services.ledger.domain import accounts
from services.ledger.domain.errors import InsufficientBalanceError, LedgerDomainError
from services.ledger.domain.journal import EntryKind, JournalEntry, request_hash
from services.ledger.domain.model import PayoutRequest
from services.ledger.domain.postings import build_payout, payout_key
from services.ledger.outbound import LedgerTopics, entry_posted_messages

SAVINGS_RULE = "savings_never_negative"
"""The rule a payout above the savings balance breaks (also the name of the database check that enforces it)."""


@dataclass(frozen=True)
class PayoutOutcome:
    """What :func:`pay_out` did: posted now (with the savings left), or found already posted."""

    posted: bool
    savings_after: int | None = None


@dataclass(frozen=True)
class PayoutFacts:
    """What the payout plan reads, loaded under the chain head: the request hash and effective time of an entry
    already posted under the payout's key (if any), the savings balance as stored and as its lines sum it."""

    posted: tuple[str, datetime] | None
    balance: int
    from_lines: int


def plan_payout(request: PayoutRequest, facts: PayoutFacts) -> JournalEntry | None:
    """The payout entry to post, or ``None`` for a retry of a payout already posted. Pure. Raises
    :class:`LedgerDomainError` for a payout id used for a different payout or a balance its lines disown, and
    :class:`InsufficientBalanceError` (naming :data:`SAVINGS_RULE`) above the savings balance."""
    account = accounts.inmate_savings(request.inmate_id)
    if facts.posted is not None:
        # A retry: the same request hashes the same at the time it was first posted (the balance already paid
        # for it, so it is not checked again).
        stored_hash, first_paid_at = facts.posted
        if request_hash(EntryKind.PAYOUT, replace(request, paid_at=first_paid_at)) != stored_hash:
            raise LedgerDomainError(f"payout id {request.payout_id} was already used for a different payout")
        return None
    if facts.balance != facts.from_lines:
        # Only the schema owner can write balances now; a payout never relies on a figure its lines disown.
        raise LedgerDomainError(
            f"payout refused (balance_matches_journal): the stored balance of {account} is "
            f"{facts.balance} but its journal lines sum to {facts.from_lines}; run karya ledger verify"
        )
    try:
        return build_payout(request, {account: facts.balance})
    except InsufficientBalanceError as exc:
        raise InsufficientBalanceError(f"payout refused ({SAVINGS_RULE}): {exc}") from exc


async def pay_out(
    uow: UnitOfWork,
    topics: LedgerTopics,
    inmate_id: str,
    amount: int,
    payout_id: str,
    paid_at: datetime,
) -> PayoutOutcome:
    """Post the payout ``payout_id`` in ``uow``'s transaction (the caller commits; its ``entry_posted`` goes to
    ``topics.entries``); a retry of the same payout is answered as already posted. Raises what
    :func:`plan_payout` raises, and :class:`InsufficientBalanceError` if the database still refuses the payout
    under :data:`SAVINGS_RULE`."""
    request = PayoutRequest(inmate_id, payout_id, amount, paid_at)
    account = accounts.inmate_savings(inmate_id)
    # load, under the lock order of services.ledger.adapters.locks: the chain head first
    await lock_chain_head(uow)
    posted = await posted_request(uow, payout_key(inmate_id, payout_id))
    if posted is None:
        balance = (await balances_under_chain_head(uow, [account])).get(account, 0)
        from_lines = (await line_balances(uow, [account])).get(account, 0)
    else:
        balance = from_lines = 0  # not read: a retry is decided by the stored request alone
    # plan
    entry = plan_payout(request, PayoutFacts(posted, balance, from_lines))
    if entry is None:
        return PayoutOutcome(posted=False)
    # write
    try:
        result = await post_entries(uow, [(entry, f"cli:payout:{payout_id}")])
    except IntegrityError as exc:
        if _constraint_of(exc) == SAVINGS_RULE:
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


def _constraint_of(exc: IntegrityError) -> str | None:
    """The name of the constraint a database error names (asyncpg keeps it on the driver's exception)."""
    for candidate in (exc.orig, getattr(exc.orig, "__cause__", None)):
        name = getattr(candidate, "constraint_name", None)
        if isinstance(name, str):
            return name
    return None
