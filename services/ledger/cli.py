"""`karya ledger …` (finance read side, payouts) and `karya policy load`.

Read commands connect as the auditor role (KARYA_AUDITOR_URL) when it is set, else as DATABASE_URL.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import typer
import yaml
from rich.console import Console
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncConnection

from infra.db.engine import make_engine
from infra.messaging.outbox import enqueue
from infra.settings import database_settings
from services.ledger.adapters.journal_repo import normal_balances, post_entries, posted_request
from services.ledger.adapters.policy_repo import store_policies
from services.ledger.domain import accounts
from services.ledger.domain.errors import LedgerDomainError
from services.ledger.domain.journal import EntryKind, request_hash
from services.ledger.domain.model import PayoutRequest
from services.ledger.domain.policy_file import parse_policies
from services.ledger.domain.postings import build_payout, payout_key
from services.ledger.outbound import entry_posted_messages
from services.ledger.reports import inmate_savings, statement, trial_balance, verify_chain

ledger_app = typer.Typer(help="The journal: reports, verification, payouts.", no_args_is_help=True)
policy_app = typer.Typer(help="Revenue split policies.", no_args_is_help=True)
_console = Console()
T = TypeVar("T")


def _run(work: Callable[[AsyncConnection], Awaitable[T]], *, read_only: bool = True) -> T:
    url = os.environ.get("KARYA_AUDITOR_URL") if read_only else None

    async def main() -> T:
        engine = make_engine(url or database_settings().url, pool_size=1)
        try:
            async with engine.begin() as conn:
                return await work(conn)
        finally:
            await engine.dispose()

    return asyncio.run(main())


def _json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str, ensure_ascii=False))


def _time(value: str | None) -> datetime | None:
    if value is None:
        return None
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@ledger_app.command("verify")
def verify(as_json: bool = typer.Option(False, "--json")) -> None:
    """Recompute the hash chain; name the first broken link and exit 1; print the head hash to anchor."""

    def progress(done: int, total: int) -> None:
        typer.echo(f"verified {done:,} of {total:,} entries", err=True)

    result = _run(lambda conn: verify_chain(conn, progress))
    if as_json:
        _json(result.__dict__)
    elif result.first_broken is None:
        typer.echo(f"chain intact: {result.entries} entries; head hash {result.head_hash}")
    else:
        typer.secho(f"chain BROKEN at entry {result.first_broken}: {result.problem}", fg="red", err=True)
    if result.first_broken is not None:
        raise typer.Exit(1)


@ledger_app.command("trial-balance")
def trial_balance_cmd(
    as_of: str | None = typer.Option(None, "--as-of", help="ISO time; default now."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Per account: debit, credit and balance; totals must agree."""
    rows = _run(lambda conn: trial_balance(conn, _time(as_of)))
    debits, credits = sum(r["debit"] for r in rows), sum(r["credit"] for r in rows)
    if as_json:
        _json({"accounts": rows, "total_debit": debits, "total_credit": credits, "balanced": debits == credits})
        return
    table = Table("account", "type", "debit", "credit", "balance")
    for r in rows:
        table.add_row(r["account"], r["type"], f"{r['debit']:,}", f"{r['credit']:,}", f"{r['balance']:,}")
    table.add_row("TOTAL", "", f"{debits:,}", f"{credits:,}", "balanced" if debits == credits else "UNBALANCED")
    _console.print(table)


@ledger_app.command("statement")
def statement_cmd(
    account: str,
    start: str | None = typer.Option(None, "--from"),
    end: str | None = typer.Option(None, "--to"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Register of one account with a running balance."""
    try:
        accounts.account_info(account)
    except LedgerDomainError as exc:
        typer.secho(str(exc), fg="red", err=True)
        raise typer.Exit(2) from exc
    result = _run(lambda conn: statement(conn, account, _time(start), _time(end)))
    if as_json:
        _json(result)
        return
    table = Table("seq", "effective", "kind", "order", "debit", "credit", "balance", title=account)
    for r in result["lines"]:
        table.add_row(
            str(r["sequence"]),
            str(r["effective_at"])[:19],
            r["kind"],
            r["order_key"] or "",
            f"{r['debit']:,}",
            f"{r['credit']:,}",
            f"{r['balance']:,}",
        )
    _console.print(table)
    typer.echo(f"opening {result['opening_balance']:,}  closing {result['closing_balance']:,}")


@ledger_app.command("inmate")
def inmate_cmd(inmate_id: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """Savings of one inmate (pseudonymous id) and every sale behind them."""
    result = _run(lambda conn: inmate_savings(conn, inmate_id))
    if as_json:
        _json(result)
        return
    table = Table("seq", "effective", "kind", "order", "batch", "policy", "amount", title=inmate_id)
    for p in result["postings"]:
        table.add_row(
            str(p["sequence"]),
            str(p["effective_at"])[:19],
            p["kind"],
            p["order_key"] or "",
            p["batch_id"] or "",
            p["policy_ref"] or "",
            f"{p['amount']:,}",
        )
    _console.print(table)
    typer.echo(f"savings balance {result['savings_balance']:,}; receivable {result['receivable_balance']:,}")


@ledger_app.command("payout")
def payout_cmd(
    inmate_id: str,
    amount: int = typer.Argument(..., help="Whole rupiah."),
    payout_id: str = typer.Option(..., "--payout-id", help="Idempotency key of this payout."),
) -> None:
    """Pay savings out on release (refused above the balance; once per payout id)."""

    async def work(conn: AsyncConnection) -> str:
        account = accounts.inmate_savings(inmate_id)
        posted = await posted_request(conn, payout_key(inmate_id, payout_id))
        if posted is not None:
            # A retry: the request is the same if it hashes the same at the time it was first posted (the
            # balance has already paid for it, so it is not checked again).
            stored_hash, paid_at = posted
            retried = PayoutRequest(inmate_id, payout_id, amount, paid_at)
            if request_hash(EntryKind.PAYOUT, retried) != stored_hash:
                raise LedgerDomainError(f"payout id {payout_id} was already used for a different payout")
            return f"payout {payout_id} was already posted"
        balances = await normal_balances(conn, [account])
        entry = build_payout(PayoutRequest(inmate_id, payout_id, amount, datetime.now(UTC)), balances)
        result = await post_entries(conn, [(entry, f"cli:payout:{payout_id}")])
        # Announced in the posting's transaction, like every other posting; a running ledger's relay publishes
        # it. ``posted`` holds only what this call committed, so a repeated payout announces nothing.
        await enqueue(conn, "ledger", entry_posted_messages(result.posted))
        if result.conflicts:
            raise LedgerDomainError(f"payout id {payout_id} was already used for a different payout")
        if result.already_posted:
            return f"payout {payout_id} was already posted"
        return f"paid {amount:,} to {inmate_id}; savings now {balances.get(account, 0) - amount:,}"

    try:
        typer.echo(_run(work, read_only=False))
    except LedgerDomainError as exc:
        typer.secho(str(exc), fg="red", err=True)
        raise typer.Exit(1) from exc


@policy_app.command("load")
def policy_load(path: Path = typer.Argument(..., exists=True, dir_okay=False)) -> None:
    """Validate and load split policies (new versions only; a changed existing version is refused)."""
    try:
        policies = parse_policies(yaml.safe_load(path.read_text()), str(path))
        new, same = _run(lambda conn: store_policies(conn, policies), read_only=False)
    except (LedgerDomainError, yaml.YAMLError) as exc:
        typer.secho(str(exc), fg="red", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"loaded {path}: {new} new policy versions, {same} unchanged")
