"""`karya ledger revert|adjust|approve|reject|withdraw|proposals`: corrections, proposed by one person and decided
by another (approved and posted, or rejected) or withdrawn by the proposer.

Thin translators onto the use cases of :mod:`services.ledger.corrections`: parse the arguments, run one
transaction, print the outcome; a refusal by a ledger rule is printed and exits 1 with nothing written. The
commands register on :data:`services.ledger.cli.ledger_app`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import typer
import yaml

from infra.cli_root import CliRoot
from infra.db.unit_of_work import UnitOfWork
from services.ledger import corrections
from services.ledger.cli import _json, _run, ledger_app
from services.ledger.domain.accounts import Side
from services.ledger.domain.errors import LedgerDomainError
from services.ledger.outbound import LedgerTopics

_ACTING_USER = typer.Option(..., "--as", envvar="KARYA_USER", help="Who acts (or KARYA_USER).")
_REASON = typer.Option(..., "--reason", help="Why (stored with the proposal or decision).")


def _refusing(ctx: typer.Context, work: Callable[[UnitOfWork], Awaitable[str]]) -> None:
    """Run a writing command; a refusal by a ledger rule is printed and exits 1 (nothing is written)."""
    try:
        typer.echo(_run(ctx, work, read_only=False))
    except LedgerDomainError as exc:
        typer.secho(str(exc), fg="red", err=True)
        raise typer.Exit(1) from exc


def _proposed(p: corrections.Proposal) -> str:
    return (
        f"proposal {p.proposal_id}: {p.posting_key} proposed by {p.draft.proposed_by}; another person approves it "
        f"with: karya ledger approve {p.proposal_id} --as USER (or rejects it: karya ledger reject)"
    )


@ledger_app.command("revert")
def revert_cmd(ctx: typer.Context, posting_key: str, reason: str = _REASON, acting: str = _ACTING_USER) -> None:
    """Propose the exact mirror of an entry (posted once another person approves; never of a revert)."""

    async def work(uow: UnitOfWork) -> str:
        p = await corrections.propose_revert(uow, posting_key, reason=reason, proposed_by=acting, at=datetime.now(UTC))
        return _proposed(p)

    _refusing(ctx, work)


@ledger_app.command("adjust")
def adjust_cmd(
    ctx: typer.Context,
    path: Path = typer.Argument(..., exists=True, dir_okay=False, help="YAML or JSON: lines, memo, reference."),
    reason: str = _REASON,
    acting: str = _ACTING_USER,
) -> None:
    """Propose a balanced manual entry on adjustable accounts (posted once another person approves)."""
    try:
        document = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        typer.secho(f"{path}: {exc}", fg="red", err=True)
        raise typer.Exit(1) from exc

    async def work(uow: UnitOfWork) -> str:
        p = await corrections.propose_adjustment(
            uow, document, str(path), reason=reason, proposed_by=acting, at=datetime.now(UTC)
        )
        return _proposed(p)

    _refusing(ctx, work)


@ledger_app.command("approve")
def approve_cmd(ctx: typer.Context, proposal_id: int, acting: str = _ACTING_USER) -> None:
    """Approve a proposed correction and post it (never by its proposer; never a rejected or withdrawn one)."""
    topics = CliRoot.of(ctx).topics(LedgerTopics)

    async def work(uow: UnitOfWork) -> str:
        done = await corrections.approve(uow, topics, proposal_id, approved_by=acting, at=datetime.now(UTC))
        return f"proposal {proposal_id} approved by {acting}: posted {done.posting_key} (sequence {done.sequence})"

    _refusing(ctx, work)


@ledger_app.command("reject")
def reject_cmd(ctx: typer.Context, proposal_id: int, reason: str = _REASON, acting: str = _ACTING_USER) -> None:
    """Reject a proposed correction (never by its proposer): it is closed and never posted."""

    async def work(uow: UnitOfWork) -> str:
        await corrections.reject(uow, proposal_id, rejected_by=acting, reason=reason, at=datetime.now(UTC))
        return f"proposal {proposal_id} rejected by {acting}: nothing posted"

    _refusing(ctx, work)


@ledger_app.command("withdraw")
def withdraw_cmd(ctx: typer.Context, proposal_id: int, reason: str = _REASON, acting: str = _ACTING_USER) -> None:
    """Withdraw your own proposed correction: it is closed and never posted."""

    async def work(uow: UnitOfWork) -> str:
        await corrections.withdraw(uow, proposal_id, withdrawn_by=acting, reason=reason, at=datetime.now(UTC))
        return f"proposal {proposal_id} withdrawn by {acting}: nothing posted"

    _refusing(ctx, work)


@ledger_app.command("proposals")
def proposals_cmd(
    ctx: typer.Context,
    every: bool = typer.Option(False, "--all", help="Also the approved, rejected and withdrawn ones."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Corrections waiting for a second person's decision (``--all``: every proposal with its state)."""
    listed = _run(ctx, corrections.list_proposals if every else corrections.list_open)
    if as_json:
        _json([corrections.proposal_view(p) for p in listed])
        return
    for p in listed:
        d = p.draft
        decided = "" if p.decision is None else f"  [{p.decision.describe()}]"
        typer.echo(
            f"{p.proposal_id:>5}  {p.state.value:<9}  {str(p.proposed_at)[:19]}  {p.posting_key}  by {d.proposed_by}  "
            f"{sum(line.amount for line in d.lines if line.side is Side.DEBIT):,}  {d.reason}{decided}"
        )
    counts = {s: sum(p.state is s for p in listed) for s in corrections.ProposalState}
    typer.echo(", ".join(f"{n} {s.value}" for s, n in counts.items() if n or s is corrections.ProposalState.OPEN))
