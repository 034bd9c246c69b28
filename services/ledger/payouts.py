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

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from infra.messaging.outbox import enqueue
from services.ledger.adapters.journal_repo import line_balances, post_entries, posted_request
from services.ledger.adapters.locks import balances_under_chain_head, lock_chain_head
from services.ledger.domain import accounts
from services.ledger.domain.errors import InsufficientBalanceError, LedgerDomainError
from services.ledger.domain.journal import EntryKind, request_hash
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


async def pay_out(
    conn: AsyncConnection,
    inmate_id: str,
    amount: int,
    payout_id: str,
    paid_at: datetime,
    topics: LedgerTopics | None = None,
) -> PayoutOutcome:
    """Post the payout ``payout_id`` in ``conn``'s transaction (the caller commits; its ``entry_posted`` goes to
    ``topics``, default the base names); a retry of the same payout
    is answered as already posted. Raises :class:`LedgerDomainError` for a payout id used for a different payout
    and :class:`InsufficientBalanceError` (naming :data:`SAVINGS_RULE`) above the savings balance."""
    account = accounts.inmate_savings(inmate_id)
    await lock_chain_head(conn)
    posted = await posted_request(conn, payout_key(inmate_id, payout_id))
    if posted is not None:
        # A retry: the same request hashes the same at the time it was first posted (the balance already paid
        # for it, so it is not checked again).
        stored_hash, first_paid_at = posted
        if request_hash(EntryKind.PAYOUT, PayoutRequest(inmate_id, payout_id, amount, first_paid_at)) != stored_hash:
            raise LedgerDomainError(f"payout id {payout_id} was already used for a different payout")
        return PayoutOutcome(posted=False)
    balances = await balances_under_chain_head(conn, [account])
    from_lines = await line_balances(conn, [account])
    if balances.get(account, 0) != from_lines.get(account, 0):
        # Only the schema owner can write balances now; a payout never relies on a figure its lines disown.
        raise LedgerDomainError(
            f"payout refused (balance_matches_journal): the stored balance of {account} is "
            f"{balances.get(account, 0)} but its journal lines sum to {from_lines.get(account, 0)}; "
            "run karya ledger verify"
        )
    try:
        entry = build_payout(PayoutRequest(inmate_id, payout_id, amount, paid_at), balances)
    except InsufficientBalanceError as exc:
        raise InsufficientBalanceError(f"payout refused ({SAVINGS_RULE}): {exc}") from exc
    try:
        result = await post_entries(conn, [(entry, f"cli:payout:{payout_id}")])
    except IntegrityError as exc:
        if _constraint_of(exc) == SAVINGS_RULE:
            raise InsufficientBalanceError(
                f"payout refused ({SAVINGS_RULE}): payout {payout_id} of {amount} for {inmate_id} would take "
                "the savings below zero"
            ) from exc
        raise
    # Announced in the posting's transaction, like every other posting; a running ledger's relay publishes it.
    await enqueue(conn, "ledger", entry_posted_messages(result.posted, (topics or LedgerTopics()).entries))
    if result.conflicts:
        raise LedgerDomainError(f"payout id {payout_id} was already used for a different payout")
    if result.already_posted:
        return PayoutOutcome(posted=False)
    return PayoutOutcome(posted=True, savings_after=balances.get(account, 0) - amount)


def _constraint_of(exc: IntegrityError) -> str | None:
    """The name of the constraint a database error names (asyncpg keeps it on the driver's exception)."""
    for candidate in (exc.orig, getattr(exc.orig, "__cause__", None)):
        name = getattr(candidate, "constraint_name", None)
        if isinstance(name, str):
            return name
    return None
