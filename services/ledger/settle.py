"""Settling what is owed: propose a PNBP deposit, a supplier payment or a use of production capital; another
person approves it (posted) or rejects it, or its proposer withdraws it.

Load → plan → write in the caller's transaction, like :mod:`services.ledger.corrections`, whose proposals,
decisions and four-eyes rules a settlement shares (a proposal of a settlement kind, ``ledger_0011``): the journal
is locked first, so the balances read after it cannot move until the transaction ends; the pure rules are
:mod:`services.ledger.domain.settlements`. The approval is :func:`services.ledger.corrections.approve` itself, which
checks a settlement against the balances at the approval (``within_balance``) before it posts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from infra.db.unit_of_work import UnitOfWork
from services.ledger import corrections
from services.ledger.adapters.corrections_repo import insert_proposal, load_proposal
from services.ledger.adapters.journal_repo import normal_balances, posted_request
from services.ledger.adapters.locks import lock_journal
from services.ledger.adapters.settlements_repo import open_proposal_of_key
from services.ledger.domain.corrections import CorrectionKind, Proposal
from services.ledger.domain.settlements import (
    SETTLEMENT_KINDS,
    Settlement,
    SettlementRefused,
    limit_accounts,
    plan_settlement,
    settlement_of,
)
from services.ledger.outbound import LedgerTopics

__all__ = ["Proposed", "approve", "propose", "settlement_view", "settlements"]


@dataclass(frozen=True)
class Proposed:
    """A settlement proposal, and whether this call stored it (``False``: the same was already open)."""

    proposal: Proposal
    created: bool


async def propose(
    uow: UnitOfWork, settlement: Settlement, *, reason: str | None, proposed_by: str, at: datetime
) -> Proposed:
    """Propose ``settlement`` as ``proposed_by``. Raises :class:`SettlementRefused` (``within_balance``,
    ``settle_once``, the formats of billing code, NTPN and reference, ``acting_user_required``)."""
    await lock_journal(uow)
    key = settlement.posting_key
    posted = await posted_request(uow, key) is not None
    pending = await open_proposal_of_key(uow, key)
    balances = await normal_balances(uow, _limits(settlement))
    planned = plan_settlement(
        settlement, balances, posted=posted, pending=pending, reason=reason, proposed_by=proposed_by
    )
    if isinstance(planned, Proposal):
        return Proposed(planned, created=False)
    return Proposed(await insert_proposal(uow, planned, at), created=True)


def _limits(settlement: Settlement) -> tuple[str, ...]:
    try:
        return limit_accounts(settlement)
    except ValueError:  # a malformed owner: the plan names the rule
        return ()


async def approve(
    uow: UnitOfWork,
    topics: LedgerTopics,
    proposal_id: int,
    *,
    approved_by: str,
    at: datetime,
    kind: CorrectionKind | None = None,
) -> corrections.Approved:
    """Approve settlement proposal ``proposal_id`` (of ``kind``, when given) as ``approved_by`` and post it: the
    corrections' approval, which checks it against the balances now. Raises :class:`SettlementRefused` for a
    proposal that is not a settlement (of that kind), and what :func:`services.ledger.corrections.approve` raises."""
    await lock_journal(uow)
    proposal = await load_proposal(uow, proposal_id)
    if proposal is not None and (
        proposal.draft.kind not in SETTLEMENT_KINDS or (kind is not None and proposal.draft.kind is not kind)
    ):
        wanted = "a settlement" if kind is None else f"a {kind.value}"
        raise SettlementRefused(
            f"approval of proposal {proposal_id} refused: it is a {proposal.draft.kind.value}, not {wanted} "
            "(karya ledger approve decides corrections)"
        )
    return await corrections.approve(uow, topics, proposal_id, approved_by=approved_by, at=at)


async def settlements(uow: UnitOfWork, *, open_only: bool, kind: CorrectionKind | None = None) -> list[Proposal]:
    """Settlement proposals (of ``kind``), open ones only or every one with its state, oldest first."""
    listed = await (corrections.list_open(uow) if open_only else corrections.list_proposals(uow))
    return [p for p in listed if p.draft.kind in SETTLEMENT_KINDS and (kind is None or p.draft.kind is kind)]


def settlement_view(proposal: Proposal) -> dict[str, object]:
    """A settlement proposal as plain JSON data (``karya ledger settle pending --format json``): the correction's
    view with what it settles."""
    settlement = settlement_of(proposal)
    assert settlement is not None
    return corrections.proposal_view(proposal) | {
        "owner": settlement.owner,
        "lapas": settlement.books,
        "amount": settlement.amount,
        "reference": settlement.reference,
        "ntpn": settlement.receipt,
        "bank": settlement.bank,
    }
