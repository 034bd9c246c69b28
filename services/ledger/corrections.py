"""The correction use cases: propose a revert or an adjustment, approve one (by someone else), reject one (by
someone else) or withdraw it (its proposer), list them with their state.

Each runs load → plan → write in the caller's transaction (the CLI today, HTTP later), like
:mod:`services.ledger.payouts`: the journal is locked first (the lock order of
:mod:`services.ledger.adapters.locks`), so a proposal or approval is decided against a journal no other posting
moves meanwhile; the pure rules live in :mod:`services.ledger.domain.corrections`. An approval inserts its row
(the database refuses the proposer) and posts the entry through :func:`post_entries` in one transaction, and
announces it with ``entry_posted`` through the outbox. A rejection or withdrawal inserts one closing row and posts
nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import NoReturn

from sqlalchemy.exc import IntegrityError

from infra.db.refusals import constraint_of
from infra.db.unit_of_work import UnitOfWork
from services.ledger.adapters.corrections_repo import (
    insert_approval,
    insert_closure,
    insert_proposal,
    load_proposal,
    open_revert_proposal,
    posted_entry,
    proposals,
)
from services.ledger.adapters.journal_repo import normal_balances, post_entries, posted_request
from services.ledger.adapters.locks import lock_journal
from services.ledger.domain.correction_file import parse_adjustment
from services.ledger.domain.corrections import (
    CorrectionRefused,
    Proposal,
    ProposalState,
    plan_adjustment,
    plan_approval,
    plan_closure,
    plan_revert,
    revert_key,
)
from services.ledger.domain.settlements import check_approval, limit_accounts, settlement_of
from services.ledger.outbound import LedgerTopics, entry_posted_messages
from services.ledger.payouts import SAVINGS_RULE

__all__ = [
    "Approved",
    "Proposal",
    "ProposalState",
    "approve",
    "list_open",
    "list_proposals",
    "proposal_view",
    "propose_adjustment",
    "propose_revert",
    "reject",
    "withdraw",
]

#: The rules the database enforces on approvals and closures (trigger constraint names), turned into refusals.
_DATABASE_RULES = (SAVINGS_RULE, "four_eyes", "withdraw_own", "decide_once")


@dataclass(frozen=True)
class Approved:
    """What an approval posted: the entry's posting key and chain sequence."""

    proposal: Proposal
    posting_key: str
    sequence: int


async def propose_revert(uow: UnitOfWork, posting_key: str, *, reason: str, proposed_by: str, at: datetime) -> Proposal:
    """Propose the exact mirror of the entry posted under ``posting_key``. Raises :class:`CorrectionRefused`
    (``no_such_entry``, ``no_revert_of_revert``, ``revert_once``, ``reason_required``, ``acting_user_required``)."""
    await lock_journal(uow)
    target = await posted_entry(uow, posting_key)
    reverted = await posted_request(uow, revert_key(posting_key)) is not None
    pending = await open_revert_proposal(uow, posting_key)
    draft = plan_revert(
        posting_key, target, reverted=reverted, open_proposal=pending, reason=reason, proposed_by=proposed_by
    )
    return await insert_proposal(uow, draft, at)


async def propose_adjustment(
    uow: UnitOfWork, document: object, source: str, *, reason: str, proposed_by: str, at: datetime
) -> Proposal:
    """Propose the manual entry of a loaded YAML/JSON ``document`` (named ``source`` in messages). Raises
    :class:`CorrectionRefused` (``adjustable_accounts``, ``balanced_entry``, a malformed file, …)."""
    draft = plan_adjustment(parse_adjustment(document, source), reason=reason, proposed_by=proposed_by)
    await lock_journal(uow)
    return await insert_proposal(uow, draft, at)


async def approve(
    uow: UnitOfWork, topics: LedgerTopics, proposal_id: int, *, approved_by: str, at: datetime
) -> Approved:
    """Approve proposal ``proposal_id`` as ``approved_by`` and post its entry (effective ``at``) once, with
    ``entry_posted`` to ``topics.entries``. Raises :class:`CorrectionRefused` (``four_eyes``, ``approve_once``,
    ``decide_once`` for a rejected or withdrawn proposal, ``revert_once``, and ``savings_never_negative`` when a
    revert would take savings below zero; for a settlement ``settle_once`` and ``within_balance``, against the
    balances now)."""
    await lock_journal(uow)
    proposal = await _load(uow, proposal_id, "approval")
    reverted = await posted_request(uow, proposal.posting_key) is not None
    if (settlement := settlement_of(proposal)) is not None:
        limits = await normal_balances(uow, limit_accounts(settlement))
        check_approval(proposal, limits, posted=reverted)
    entry = plan_approval(proposal, approved_by, at, reverted=reverted)
    try:
        await insert_approval(uow, proposal, approved_by.strip(), at)
        result = await post_entries(uow, [(entry, f"cli:approve:{proposal_id}")])
    except IntegrityError as exc:
        _refusal(exc, f"approval of proposal {proposal_id}")
    if not result.posted:  # the key was taken meanwhile: nothing posted, nothing approved (the caller rolls back)
        raise CorrectionRefused(
            f"approval of proposal {proposal_id} refused (revert_once): {proposal.posting_key} is already posted"
        )
    await uow.publish(entry_posted_messages(result.posted, topics))
    return Approved(proposal, entry.posting_key, result.posted[0].sequence)


async def reject(uow: UnitOfWork, proposal_id: int, *, rejected_by: str, reason: str, at: datetime) -> Proposal:
    """Reject open proposal ``proposal_id`` as ``rejected_by`` (not its proposer) for ``reason``: it is closed and
    never posted. Raises :class:`CorrectionRefused` (``four_eyes``, ``decide_once``, ``reason_required``,
    ``acting_user_required``)."""
    return await _close(uow, proposal_id, ProposalState.REJECTED, rejected_by, reason, at)


async def withdraw(uow: UnitOfWork, proposal_id: int, *, withdrawn_by: str, reason: str, at: datetime) -> Proposal:
    """Withdraw open proposal ``proposal_id`` as its proposer ``withdrawn_by`` for ``reason``: it is closed and
    never posted. Raises :class:`CorrectionRefused` (``withdraw_own``, ``decide_once``, ``reason_required``,
    ``acting_user_required``)."""
    return await _close(uow, proposal_id, ProposalState.WITHDRAWN, withdrawn_by, reason, at)


async def _close(
    uow: UnitOfWork, proposal_id: int, state: ProposalState, by: str, reason: str, at: datetime
) -> Proposal:
    """Load → plan (pure) → write one closing row, under the journal lock like an approval."""
    await lock_journal(uow)
    verb = "rejection" if state is ProposalState.REJECTED else "withdrawal"
    proposal = await _load(uow, proposal_id, verb)
    decision = plan_closure(proposal, state, by, reason, at)
    try:
        await insert_closure(uow, proposal_id, decision)
    except IntegrityError as exc:
        _refusal(exc, f"{verb} of proposal {proposal_id}")
    return replace(proposal, decision=decision)


async def _load(uow: UnitOfWork, proposal_id: int, verb: str) -> Proposal:
    proposal = await load_proposal(uow, proposal_id)
    if proposal is None:
        raise CorrectionRefused(f"{verb} of proposal {proposal_id} refused: there is no such proposal")
    return proposal


async def list_open(uow: UnitOfWork) -> list[Proposal]:
    """Every proposal waiting for a decision, oldest first."""
    return await proposals(uow, open_only=True)


async def list_proposals(uow: UnitOfWork) -> list[Proposal]:
    """Every proposal with its state (open, approved, rejected, withdrawn), oldest first."""
    return await proposals(uow, open_only=False)


def proposal_view(proposal: Proposal) -> dict[str, object]:
    """A proposal as plain JSON data (``karya ledger proposals --json``)."""
    draft = proposal.draft
    return {
        "proposal_id": proposal.proposal_id,
        "kind": draft.kind.value,
        "posting_key": proposal.posting_key,
        "reverts": draft.target,
        "reason": draft.reason,
        "proposed_by": draft.proposed_by,
        "proposed_at": proposal.proposed_at.isoformat(),
        "state": proposal.state.value,
        "decided_by": None if proposal.decision is None else proposal.decision.decided_by,
        "decided_at": None if proposal.decision is None else proposal.decision.decided_at.isoformat(),
        "decision_reason": None if proposal.decision is None else proposal.decision.reason,
        "order_key": draft.order_key,
        "reference": draft.reference,
        "memo": draft.memo,
        "lines": [{"account": x.account, "side": x.side.value, "amount": x.amount} for x in draft.lines],
    }


def _refusal(exc: IntegrityError, what: str) -> NoReturn:
    """Re-raise a database refusal by one of :data:`_DATABASE_RULES` as :class:`CorrectionRefused`."""
    rule = constraint_of(exc)
    if rule in _DATABASE_RULES:
        raise CorrectionRefused(f"{what} refused ({rule}): {_first_line(exc)}") from exc
    raise exc


def _first_line(exc: IntegrityError) -> str:
    return str(exc.orig).splitlines()[0] if exc.orig is not None else str(exc)
