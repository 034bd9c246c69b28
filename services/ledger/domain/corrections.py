"""Corrections: the exact mirror of a posted entry (revert) and a balanced manual entry (adjustment), each proposed
by one person and posted only when a different person approves. Pure: no I/O.

Rules (each refusal names its rule):

- ``reason_required``: every proposal states why; ``acting_user_required``: every proposal and approval names
  who acts (the CLI's ``--as`` or ``KARYA_USER``).
- ``revert_once``: a revert posts under ``revert:<posting key>``, so an entry is reverted at most once; a second
  proposal is refused while one is open or after the revert is posted.
- ``no_revert_of_revert``: a revert (kind ``reversal``) is never reverted; book what is wrong with an adjustment.
- ``adjustable_accounts``: an adjustment may touch only the accounts of :data:`ADJUSTABLE` (never inmate savings,
  payables, revenue or shares: those follow from sales, distributions, refunds and payouts); a bank line also
  needs a ``reference`` (the bank statement line it reconciles). The one exception is the reclassification of a
  legacy global account (``liability:supplier_payable:<supplier>`` before accounts were per lapas): a kind
  outside the list may be adjusted when the same adjustment moves its legacy code to a per-lapas code of it.
- ``balanced_entry``: an adjustment's debits equal its credits (the database refuses an unbalanced entry too).
- ``four_eyes``: the approver differs from the proposer (the database refuses such an approval too).
- ``approve_once``: a proposal is approved, hence posted, once.
- ``decide_once``: a proposal is decided once — approved, rejected or withdrawn; a rejected or withdrawn one is
  never approved (nor rejected or withdrawn again). A rejection is made by another person (``four_eyes`` again),
  a withdrawal only by the proposer (``withdraw_own``); both state why (``reason_required``).

Proposer, approver and reason are written into the posted entry's memo and into the request its request hash is
taken of; both are serialised into the hash chain, so changing any of them breaks ``karya ledger verify``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from services.ledger.domain.accounts import Side, account_info
from services.ledger.domain.errors import AccountCodeError, LedgerDomainError
from services.ledger.domain.journal import EntryKind, JournalEntry, Line, request_hash

__all__ = [
    "ADJUSTABLE",
    "Adjustable",
    "Adjustment",
    "CorrectionKind",
    "CorrectionRefused",
    "CorrectionRequest",
    "Decision",
    "Draft",
    "PostedEntry",
    "Proposal",
    "ProposalState",
    "adjust_key",
    "correction_memo",
    "plan_adjustment",
    "plan_approval",
    "plan_closure",
    "plan_revert",
    "revert_key",
]


class CorrectionRefused(LedgerDomainError):
    """A correction breaks a rule; the message starts with ``<what> refused (<rule>)``."""


class CorrectionKind(StrEnum):
    """What a proposal posts once approved."""

    REVERT = "revert"
    ADJUST = "adjust"
    # Settlements of what is owed (services.ledger.domain.settlements): posted under the key fixed at proposal.
    PNBP_DEPOSIT = "pnbp_deposit"
    SUPPLIER_PAYMENT = "supplier_payment"
    CAPITAL_USE = "capital_use"


@dataclass(frozen=True, slots=True)
class Adjustable:
    """Accounts an adjustment may touch: every account of the kind ``pattern`` (``<type>:<kind>``), of any lapas
    and owner, and its legacy global code."""

    pattern: str
    needs_reference: bool = False

    def matches(self, code: str) -> bool:
        """Whether ``code`` is one of these accounts."""
        return code == self.pattern or code.startswith(self.pattern + ":")


ADJUSTABLE: tuple[Adjustable, ...] = (
    Adjustable("clearing:suspense"),
    Adjustable("clearing:undistributed_proceeds"),
    Adjustable("clearing:unallocated_proceeds"),
    Adjustable("expense:marketplace_fee"),
    Adjustable("asset:marketplace_receivable"),
    Adjustable("asset:pph22_prepaid"),
    Adjustable("asset:bank", needs_reference=True),
)
"""The allow-list of the ``adjustable_accounts`` rule (documented in docs/accounting.md, "Corrections")."""


@dataclass(frozen=True, slots=True)
class PostedEntry:
    """What a revert needs of the entry it mirrors."""

    posting_key: str
    kind: EntryKind
    lines: tuple[Line, ...]
    order_key: str | None = None
    batch_id: str | None = None
    policy_ref: str | None = None


@dataclass(frozen=True, slots=True)
class Adjustment:
    """A manual entry as read from its file: lines, optional memo, order and bank reference."""

    lines: tuple[Line, ...]
    memo: str | None = None
    order_key: str | None = None
    reference: str | None = None


@dataclass(frozen=True, slots=True)
class Draft:
    """A proposal before it is stored (the store gives it its id)."""

    kind: CorrectionKind
    target: str | None
    reason: str
    proposed_by: str
    lines: tuple[Line, ...]
    memo: str | None = None
    order_key: str | None = None
    batch_id: str | None = None
    policy_ref: str | None = None
    reference: str | None = None
    posting_key: str | None = None  # fixed at proposal (a settlement's); else derived from kind and id


class ProposalState(StrEnum):
    """Where a proposal stands: open until approved (posted), rejected by another person or withdrawn."""

    OPEN = "open"
    APPROVED = "approved"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"


@dataclass(frozen=True, slots=True)
class Decision:
    """How a proposal was closed, by whom and when; a rejection or withdrawal also says why."""

    state: ProposalState
    decided_by: str
    decided_at: datetime
    reason: str | None = None

    def describe(self) -> str:
        """``approved by budi`` / ``rejected by budi (reason: …)`` / ``withdrawn by ani (reason: …)``."""
        why = f" (reason: {self.reason})" if self.reason else ""
        return f"{self.state.value} by {self.decided_by} at {self.decided_at.isoformat()}{why}"


@dataclass(frozen=True, slots=True)
class Proposal:
    """A stored proposal; ``decision`` is set once it was approved (and posted), rejected or withdrawn."""

    proposal_id: int
    draft: Draft
    proposed_at: datetime
    decision: Decision | None = None

    @property
    def state(self) -> ProposalState:
        """Open, or the state its decision closed it in."""
        return ProposalState.OPEN if self.decision is None else self.decision.state

    @property
    def approved_by(self) -> str | None:
        """Who approved it, if it was approved."""
        return self.decision.decided_by if self.state is ProposalState.APPROVED and self.decision else None

    @property
    def posting_key(self) -> str:
        """The key the entry posts under: ``revert:<target>``, ``adjust:<proposal id>`` or a settlement's own."""
        if self.draft.posting_key is not None:
            return self.draft.posting_key
        if self.draft.kind is CorrectionKind.REVERT and self.draft.target is not None:
            return revert_key(self.draft.target)
        return adjust_key(self.proposal_id)


@dataclass(frozen=True, slots=True)
class CorrectionRequest:
    """What the request hash of a posted correction is taken of: the whole proposal and who approved it."""

    proposal_id: int
    kind: CorrectionKind
    target: str | None
    reason: str
    proposed_by: str
    approved_by: str
    reference: str | None
    lines: tuple[Line, ...]


def revert_key(posting_key: str) -> str:
    """The posting key of the revert of ``posting_key``."""
    return f"revert:{posting_key}"


def adjust_key(proposal_id: int) -> str:
    """The posting key of the adjustment proposed as ``proposal_id``."""
    return f"adjust:{proposal_id}"


def _who(user: str | None, role: str) -> str:
    who = (user or "").strip()
    if not who:
        raise CorrectionRefused(f"{role} refused (acting_user_required): name the acting user (--as or KARYA_USER)")
    return who


def _why(reason: str | None, what: str) -> str:
    why = (reason or "").strip()
    if not why:
        raise CorrectionRefused(f"{what} refused (reason_required): give a --reason")
    return why


def plan_revert(
    posting_key: str,
    target: PostedEntry | None,
    *,
    reverted: bool,
    open_proposal: int | None,
    reason: str,
    proposed_by: str,
) -> Draft:
    """The proposal to post the exact mirror of ``target`` (every line on the other side, same order and amounts).

    ``reverted``: an entry is already posted under :func:`revert_key`; ``open_proposal``: the id of an open
    proposal to revert the same entry. Raises :class:`CorrectionRefused` naming the rule it breaks."""
    what = f"revert of {posting_key}"
    who, why = _who(proposed_by, what), _why(reason, what)
    if target is None:
        raise CorrectionRefused(f"{what} refused (no_such_entry): no journal entry has this posting key")
    if target.kind is EntryKind.REVERSAL:
        raise CorrectionRefused(
            f"{what} refused (no_revert_of_revert): it is itself a revert; correct it with an adjustment"
        )
    if reverted:
        raise CorrectionRefused(f"{what} refused (revert_once): already reverted by {revert_key(posting_key)}")
    if open_proposal is not None:
        raise CorrectionRefused(f"{what} refused (revert_once): already proposed as proposal {open_proposal}")
    mirror = tuple(
        Line(line.account, Side.CREDIT if line.side is Side.DEBIT else Side.DEBIT, line.amount) for line in target.lines
    )
    return Draft(
        CorrectionKind.REVERT,
        posting_key,
        why,
        who,
        mirror,
        order_key=target.order_key,
        batch_id=target.batch_id,
        policy_ref=target.policy_ref,
    )


def plan_adjustment(adjustment: Adjustment, *, reason: str, proposed_by: str) -> Draft:
    """The proposal to post ``adjustment``. Raises :class:`CorrectionRefused` naming the rule it breaks:
    ``adjustable_accounts`` (an account outside :data:`ADJUSTABLE`, or a bank line without a reference),
    ``balanced_entry`` (with the difference), or a malformed entry (unknown account, one account twice)."""
    what = "adjustment"
    who, why = _who(proposed_by, what), _why(reason, what)
    if len(adjustment.lines) < 2:
        raise CorrectionRefused(f"{what} refused: needs at least two lines, has {len(adjustment.lines)}")
    seen: set[str] = set()
    try:
        infos = [account_info(line.account) for line in adjustment.lines]
    except AccountCodeError as exc:
        raise CorrectionRefused(f"{what} refused: {exc}") from None
    reclassified = {i.kind for i in infos if i.legacy} & {i.kind for i in infos if not i.legacy}
    for line, info in zip(adjustment.lines, infos, strict=True):
        if line.account in seen:
            raise CorrectionRefused(f"{what} refused: account {line.account} appears on two lines")
        seen.add(line.account)
        rule = next((a for a in ADJUSTABLE if a.matches(line.account)), None)
        if rule is None and info.kind not in reclassified:
            raise CorrectionRefused(
                f"{what} refused (adjustable_accounts): {line.account} may not be adjusted by hand; allowed: "
                + ", ".join(a.pattern + "*" for a in ADJUSTABLE)
                + " (and a reclassification of a legacy global account to the same kind per lapas)"
            )
        if rule is not None and rule.needs_reference and adjustment.reference is None:
            raise CorrectionRefused(
                f"{what} refused (adjustable_accounts): a line on {line.account} needs a 'reference' "
                "(the bank statement line it reconciles)"
            )
    debits = sum(line.amount for line in adjustment.lines if line.side is Side.DEBIT)
    credits = sum(line.amount for line in adjustment.lines if line.side is Side.CREDIT)
    if debits != credits:
        raise CorrectionRefused(
            f"{what} refused (balanced_entry): debits {debits:,} != credits {credits:,} "
            f"(difference {debits - credits:+,})"
        )
    return Draft(
        CorrectionKind.ADJUST,
        None,
        why,
        who,
        adjustment.lines,
        memo=adjustment.memo,
        order_key=adjustment.order_key,
        reference=adjustment.reference,
    )


def correction_memo(proposal: Proposal, approved_by: str) -> str:
    """The posted entry's memo: what, why, who proposed and who approved (all in the hash chain)."""
    draft = proposal.draft
    what = f"revert of {draft.target}" if draft.kind is CorrectionKind.REVERT else _WHAT[draft.kind]
    if draft.memo:
        what += f" ({draft.memo})"
    if draft.reference:
        what += f", reference {draft.reference}"
    return (
        f"{what}; reason: {draft.reason}; proposed by {draft.proposed_by}, approved by {approved_by} "
        f"(proposal {proposal.proposal_id})"
    )


def plan_approval(proposal: Proposal, approved_by: str, approved_at: datetime, *, reverted: bool) -> JournalEntry:
    """The entry ``approved_by`` posts by approving ``proposal`` at ``approved_at`` (its effective time).

    ``reverted``: for a revert, an entry is already posted under its key (a second proposal approved after the
    first). Raises :class:`CorrectionRefused` for ``four_eyes``, ``approve_once`` and ``revert_once``."""
    what = f"approval of proposal {proposal.proposal_id}"
    who = _who(approved_by, what)
    if proposal.approved_by is not None:
        raise CorrectionRefused(f"{what} refused (approve_once): already approved by {proposal.approved_by}")
    _refuse_decided(proposal, what)
    draft = proposal.draft
    if who == draft.proposed_by:
        raise CorrectionRefused(
            f"{what} refused (four_eyes): {who} proposed it; another person must approve a correction"
        )
    if draft.kind is CorrectionKind.REVERT and reverted:
        raise CorrectionRefused(f"{what} refused (revert_once): {proposal.posting_key} is already posted")
    kind = _ENTRY_KIND.get(draft.kind) or EntryKind(draft.kind.value)  # a settlement: an entry of its kind's name
    request = CorrectionRequest(
        proposal.proposal_id,
        draft.kind,
        draft.target,
        draft.reason,
        draft.proposed_by,
        who,
        draft.reference,
        draft.lines,
    )
    entry = JournalEntry(
        posting_key=proposal.posting_key,
        request_hash=request_hash(kind, request),
        kind=kind,
        memo=correction_memo(proposal, who),
        effective_at=approved_at,
        lines=draft.lines,
        policy_ref=draft.policy_ref,
        reverses=draft.target,
        order_key=draft.order_key,
        batch_id=draft.batch_id,
    )
    entry.validate()
    return entry


_ENTRY_KIND = {CorrectionKind.REVERT: EntryKind.REVERSAL, CorrectionKind.ADJUST: EntryKind.ADJUSTMENT}
_WHAT = {kind: kind.value.replace("_", " ") for kind in CorrectionKind} | {CorrectionKind.ADJUST: "adjustment"}


def _refuse_decided(proposal: Proposal, what: str) -> None:
    if proposal.decision is not None:
        raise CorrectionRefused(
            f"{what} refused (decide_once): proposal {proposal.proposal_id} was {proposal.decision.describe()}; "
            "a decided proposal stays decided (propose the correction again if it is still wanted)"
        )


def plan_closure(proposal: Proposal, state: ProposalState, by: str, reason: str, at: datetime) -> Decision:
    """The decision that closes ``proposal`` without posting: ``REJECTED`` by another person or ``WITHDRAWN`` by
    its proposer, at ``at``, for ``reason``. Raises :class:`CorrectionRefused` for ``acting_user_required``,
    ``reason_required``, ``decide_once``, ``four_eyes`` (the proposer rejects) and ``withdraw_own`` (someone
    else withdraws)."""
    if state not in (ProposalState.REJECTED, ProposalState.WITHDRAWN):
        raise ValueError(f"a proposal is closed without posting only as rejected or withdrawn, not {state.value}")
    verb = "rejection" if state is ProposalState.REJECTED else "withdrawal"
    what = f"{verb} of proposal {proposal.proposal_id}"
    who, why = _who(by, what), _why(reason, what)
    _refuse_decided(proposal, what)
    proposer = proposal.draft.proposed_by
    if state is ProposalState.REJECTED and who == proposer:
        raise CorrectionRefused(
            f"{what} refused (four_eyes): {who} proposed it; another person rejects a correction "
            f"(its proposer withdraws it: karya ledger withdraw {proposal.proposal_id})"
        )
    if state is ProposalState.WITHDRAWN and who != proposer:
        raise CorrectionRefused(
            f"{what} refused (withdraw_own): only its proposer {proposer} withdraws it "
            f"(another person rejects it: karya ledger reject {proposal.proposal_id})"
        )
    return Decision(state, who, at, why)
