"""Correction proposals and their decisions (``ledger.correction_proposals``; ``correction_approvals`` and
``correction_closures`` — rejections and withdrawals; all append-only), and the posted entry a revert mirrors.
Callers hold the journal lock (:func:`services.ledger.adapters.locks.lock_journal`) first: that serialises
proposals and decisions with every posting (the service cannot lock proposal rows: it holds no UPDATE on them)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import text

from infra.db.unit_of_work import UnitOfWork
from services.ledger.domain.accounts import Side
from services.ledger.domain.corrections import (
    CorrectionKind,
    Decision,
    Draft,
    PostedEntry,
    Proposal,
    ProposalState,
)
from services.ledger.domain.journal import EntryKind, Line


async def posted_entry(uow: UnitOfWork, posting_key: str) -> PostedEntry | None:
    """The entry posted under ``posting_key`` with its lines in line order, if there is one."""
    rows = (
        await uow.conn.execute(
            text(
                "SELECT e.kind, e.order_key, e.batch_id, e.policy_ref, l.account, l.side, l.amount "
                f"FROM {uow.table('journal_entries')} e JOIN {uow.table('journal_lines')} l USING (sequence) "
                "WHERE e.posting_key = :k ORDER BY l.line_no"
            ),
            {"k": posting_key},
        )
    ).all()
    if not rows:
        return None
    first = rows[0]
    lines = tuple(Line(r.account, Side(r.side), int(r.amount)) for r in rows)
    return PostedEntry(posting_key, EntryKind(first.kind), lines, first.order_key, first.batch_id, first.policy_ref)


async def open_revert_proposal(uow: UnitOfWork, target: str) -> int | None:
    """The id of an open (neither approved, rejected nor withdrawn) proposal to revert ``target``, if any."""
    return await _scalar(
        uow,
        _select(uow, "p.proposal_id") + "WHERE p.target = :t AND p.kind = 'revert' AND a.proposal_id IS NULL "
        "AND c.proposal_id IS NULL ORDER BY p.proposal_id LIMIT 1",
        {"t": target},
    )


async def insert_proposal(uow: UnitOfWork, draft: Draft, proposed_at: datetime) -> Proposal:
    """Store ``draft``; the stored proposal with its id."""
    body = {
        "lines": [[line.account, line.side.value, line.amount] for line in draft.lines],
        "memo": draft.memo,
        "order_key": draft.order_key,
        "batch_id": draft.batch_id,
        "policy_ref": draft.policy_ref,
        "reference": draft.reference,
        **({} if draft.posting_key is None else {"posting_key": draft.posting_key}),
    }
    proposal_id = await _scalar(
        uow,
        f"INSERT INTO {uow.table('correction_proposals')} (kind, target, reason, proposed_by, proposed_at, entry) "
        "VALUES (:kind, :target, :reason, :by, :at, CAST(CAST(:entry AS text) AS jsonb)) RETURNING proposal_id",
        {
            "kind": draft.kind.value,
            "target": draft.target,
            "reason": draft.reason,
            "by": draft.proposed_by,
            "at": proposed_at,
            "entry": orjson.dumps(body).decode(),
        },
    )
    assert proposal_id is not None
    return Proposal(proposal_id, draft, proposed_at)


_COLUMNS = (
    "p.proposal_id, p.kind, p.target, p.reason, p.proposed_by, p.proposed_at, CAST(p.entry AS text) AS entry, "
    "a.approved_by, a.approved_at, c.outcome, c.closed_by, c.closed_at, c.reason AS closing_reason"
)


def _select(uow: UnitOfWork, columns: str = _COLUMNS) -> str:
    """Proposals ``p`` with their approval ``a`` and closure ``c`` (rejection or withdrawal), if any."""
    return (
        f"SELECT {columns} FROM {uow.table('correction_proposals')} p "
        f"LEFT JOIN {uow.table('correction_approvals')} a USING (proposal_id) "
        f"LEFT JOIN {uow.table('correction_closures')} c USING (proposal_id) "
    )


async def load_proposal(uow: UnitOfWork, proposal_id: int) -> Proposal | None:
    """Proposal ``proposal_id`` (with its approver, if approved), if it exists."""
    row = (await uow.conn.execute(text(_select(uow) + "WHERE p.proposal_id = :i"), {"i": proposal_id})).one_or_none()
    return None if row is None else _proposal(row)


async def proposals(uow: UnitOfWork, *, open_only: bool) -> list[Proposal]:
    """Every proposal (``open_only``: not approved, rejected or withdrawn yet) with its decision, oldest first."""
    where = "WHERE a.proposal_id IS NULL AND c.proposal_id IS NULL " if open_only else ""
    rows = await uow.conn.execute(text(_select(uow) + where + "ORDER BY p.proposal_id"))
    return [_proposal(r) for r in rows]


async def insert_approval(uow: UnitOfWork, proposal: Proposal, approved_by: str, approved_at: datetime) -> None:
    """Record that ``approved_by`` approved ``proposal`` (the database refuses the proposer: ``four_eyes``)."""
    await uow.conn.execute(
        text(
            f"INSERT INTO {uow.table('correction_approvals')} (proposal_id, approved_by, approved_at, posting_key) "
            "VALUES (:i, :by, :at, :k)"
        ),
        {"i": proposal.proposal_id, "by": approved_by, "at": approved_at, "k": proposal.posting_key},
    )


async def insert_closure(uow: UnitOfWork, proposal_id: int, decision: Decision) -> None:
    """Record that ``proposal_id`` was rejected or withdrawn (the database refuses a rejection by the proposer
    (``four_eyes``), a withdrawal by anyone else (``withdraw_own``) and a second decision (``decide_once``))."""
    await uow.conn.execute(
        text(
            f"INSERT INTO {uow.table('correction_closures')} (proposal_id, outcome, closed_by, closed_at, reason) "
            "VALUES (:i, :outcome, :by, :at, :why)"
        ),
        {
            "i": proposal_id,
            "outcome": decision.state.value,
            "by": decision.decided_by,
            "at": decision.decided_at,
            "why": decision.reason,
        },
    )


def _decision(row: Any) -> Decision | None:
    if row.approved_by is not None:
        return Decision(ProposalState.APPROVED, row.approved_by, row.approved_at)
    if row.outcome is not None:
        return Decision(ProposalState(row.outcome), row.closed_by, row.closed_at, row.closing_reason)
    return None


def _proposal(row: Any) -> Proposal:
    body = orjson.loads(row.entry)
    draft = Draft(
        CorrectionKind(row.kind),
        row.target,
        row.reason,
        row.proposed_by,
        tuple(Line(account, Side(side), int(amount)) for account, side, amount in body["lines"]),
        memo=body.get("memo"),
        order_key=body.get("order_key"),
        batch_id=body.get("batch_id"),
        policy_ref=body.get("policy_ref"),
        reference=body.get("reference"),
        posting_key=body.get("posting_key"),
    )
    return Proposal(int(row.proposal_id), draft, row.proposed_at, _decision(row))


async def _scalar(uow: UnitOfWork, sql: str, params: dict[str, Any]) -> int | None:
    value = (await uow.conn.execute(text(sql), params)).scalar_one_or_none()
    return None if value is None else int(value)
