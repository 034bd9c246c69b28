"""`karya ledger …` (finance read side, payouts) and `karya policy load`; the other commands register on
:data:`ledger_app` from their own modules (corrections, entries, periods, the anchor, settling, reports, what waits
— :mod:`services.ledger.cli_waiting` — and the withholding slips).

Read commands connect as the auditor role (KARYA_AUDITOR_URL) when it is set, else as DATABASE_URL. The reports
print ``--format table|json|csv`` (:mod:`services.ledger.cli_output`).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import typer
import yaml

from infra.cli_root import CliRoot
from infra.db.unit_of_work import UnitOfWork
from services.ledger.adapters.policy_repo import store_policies, store_tax_settings
from services.ledger.cli_output import (
    FORMAT_OPTION,
    JSON_OPTION,
    ZONE_OPTION,
    Format,
    money,
    parse_time,
    print_table,
    printed,
    sided,
    when,
    zone_of,
)
from services.ledger.domain import accounts
from services.ledger.domain.errors import LedgerDomainError
from services.ledger.domain.policy_file import parse_policies
from services.ledger.domain.settlements import PayoutType
from services.ledger.domain.tax_file import parse_tax_settings
from services.ledger.names import SCHEMA
from services.ledger.outbound import LedgerTopics
from services.ledger.payouts import Payee, pay_out
from services.ledger.reports import (
    inmate_savings,
    statement,
    trial_balance,
)
from services.presentation.exports import UTC_ZONE, Column
from services.presentation.money import Side

ledger_app = typer.Typer(help="The journal: reports, verification, payouts.", no_args_is_help=True)
policy_app = typer.Typer(help="Revenue split policies.", no_args_is_help=True)
T = TypeVar("T")


def _run(ctx: typer.Context, work: Callable[[UnitOfWork], Awaitable[T]], *, read_only: bool = True) -> T:
    """Run ``work`` in one transaction on the ledger's schema (as the auditor when ``read_only`` and it is set)."""
    return CliRoot.of(ctx).run("auditor" if read_only else "service", SCHEMA, work)


_REGISTER = [
    Column("sequence", "seq", "int"),
    Column("effective_at", "effective", "datetime"),
    Column("kind", "kind"),
    Column("order_key", "order"),
]


def _print_register(
    title: str,
    rows: list[dict[str, Any]],
    extra: dict[str, Callable[[dict[str, Any]], str]],
    zone: ZoneInfo,
    right: tuple[str, ...] = (),
) -> None:
    """Print journal rows as a table: sequence, effective time, entry kind, order, then the ``extra`` columns."""
    cells = (
        [str(r["sequence"]), when(r["effective_at"], zone), r["kind"], r["order_key"] or ""]
        + [c(r) for c in extra.values()]
        for r in rows
    )
    print_table(title, ["seq", "effective", "kind", "order", *extra], cells, right)


def _json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str, ensure_ascii=False))


@ledger_app.command("trial-balance")
def trial_balance_cmd(
    ctx: typer.Context,
    as_of: str | None = typer.Option(None, "--as-of", help="ISO time; default now."),
    lapas: str | None = typer.Option(None, "--lapas", help="Only this lapas' books (its accounts must balance)."),
    as_json: bool = JSON_OPTION,
    fmt: Format = FORMAT_OPTION,
) -> None:
    """Per account: debit, credit and balance (on its side, Dr or Cr); totals must agree, for the whole ledger and
    for each lapas' books (--lapas X)."""
    moment = parse_time(as_of, "--as-of")
    rows = _run(ctx, lambda uow: trial_balance(uow, moment, lapas))
    debits, credits = sum(r["debit"] for r in rows), sum(r["credit"] for r in rows)
    data = {"accounts": rows, "total_debit": debits, "total_credit": credits, "balanced": debits == credits}
    if lapas is not None:
        data["lapas"] = lapas
    columns = [Column("account", "account"), Column("type", "type")]
    columns += [Column(k, k, "rupiah") for k in ("debit", "credit", "balance")]
    if printed(fmt, as_json, data, columns, rows, UTC_ZONE):
        return
    cells = [
        [r["account"], r["type"], money(r["debit"]), money(r["credit"]), sided(r["balance"], _side(r["account"]))]
        for r in rows
    ]
    cells.append(["TOTAL", "", money(debits), money(credits), "balanced" if debits == credits else "UNBALANCED"])
    title = " ".join(
        part for part in (f"lapas {lapas}" if lapas else "", f"as of {moment.isoformat()}" if moment else "") if part
    )
    print_table(title or None, ["account", "type", "debit", "credit", "balance"], cells, ("debit", "credit", "balance"))


def _side(account: str) -> Side:
    """The normal side of ``account``: ``D`` or ``C``."""
    return "D" if accounts.account_info(account).normal_side is accounts.Side.DEBIT else "C"


@ledger_app.command("statement")
def statement_cmd(
    ctx: typer.Context,
    account: str,
    start: str | None = typer.Option(None, "--from"),
    end: str | None = typer.Option(None, "--to"),
    as_json: bool = JSON_OPTION,
    fmt: Format = FORMAT_OPTION,
    tz: str = ZONE_OPTION,
) -> None:
    """Register of one account with a running balance."""
    try:
        side = _side(account)
    except LedgerDomainError as exc:
        typer.secho(str(exc), fg="red", err=True)
        raise typer.Exit(2) from exc
    window, zone = (parse_time(start, "--from"), parse_time(end, "--to")), zone_of(tz)
    result = _run(ctx, lambda uow: statement(uow, account, *window))
    columns = [*_REGISTER, Column("posting_key", "posting_key"), Column("memo", "memo")]
    columns += [Column(k, k, "rupiah") for k in ("debit", "credit", "balance")]
    if printed(fmt, as_json, result, columns, result["lines"], zone):
        return
    _print_register(
        account,
        result["lines"],
        {
            "debit": lambda r: money(r["debit"]),
            "credit": lambda r: money(r["credit"]),
            "balance": lambda r: sided(r["balance"], side),
        },
        zone,
        ("debit", "credit", "balance"),
    )
    typer.echo(f"opening {sided(result['opening_balance'], side)}  closing {sided(result['closing_balance'], side)}")


@ledger_app.command("inmate")
def inmate_cmd(
    ctx: typer.Context,
    inmate_id: str,
    as_json: bool = JSON_OPTION,
    fmt: Format = FORMAT_OPTION,
    tz: str = ZONE_OPTION,
) -> None:
    """Savings of one inmate (pseudonymous id) and every sale behind them (amounts: Cr adds to the savings)."""
    zone = zone_of(tz)
    result = _run(ctx, lambda uow: inmate_savings(uow, inmate_id))
    columns = [
        *_REGISTER,
        Column("batch_id", "batch"),
        Column("policy_ref", "policy"),
        Column("amount", "amount", "rupiah"),
    ]
    if printed(fmt, as_json, result, columns, result["postings"], zone):
        return
    _print_register(
        inmate_id,
        result["postings"],
        {
            "batch": lambda p: p["batch_id"] or "",
            "policy": lambda p: p["policy_ref"] or "",
            "amount": lambda p: sided(p["amount"], "C"),
        },
        zone,
        ("amount",),
    )
    typer.echo(
        f"savings balance {sided(result['savings_balance'], 'C')}; "
        f"receivable {sided(result['receivable_balance'], 'D')}"
    )


@ledger_app.command("payout")
def payout_cmd(
    ctx: typer.Context,
    inmate_id: str,
    amount: int = typer.Argument(..., help="Whole rupiah."),
    payout_id: str = typer.Option(..., "--payout-id", help="Idempotency key of this payout."),
    payout_type: PayoutType = typer.Option(PayoutType.RELEASE, "--type", help="release, allowance or periodic."),
    acting: str | None = typer.Option(None, "--as", envvar="KARYA_USER", help="Who pays out (or KARYA_USER)."),
    registration_no: str | None = typer.Option(None, "--registration-no", help="Payee's registry number (checked)."),
    payee_name: str | None = typer.Option(None, "--payee-name", help="Payee's full name (checked with the number)."),
) -> None:
    """Pay savings out (refused above the balance; once per payout id); with --registration-no the inmate registry
    must confirm the payee (and a release payout a released person, the other types one in custody)."""
    topics = CliRoot.of(ctx).topics(LedgerTopics)
    if payee_name is not None and registration_no is None:
        raise typer.BadParameter("--payee-name is checked together with --registration-no", param_hint="--payee-name")
    payee = None if registration_no is None else Payee(registration_no, payee_name)

    async def work(uow: UnitOfWork) -> str:
        outcome = await pay_out(
            uow,
            topics,
            inmate_id,
            amount,
            payout_id,
            datetime.now(UTC),
            payout_type=payout_type,
            paid_by=acting,
            payee=payee,
        )
        if not outcome.posted:
            return f"payout {payout_id} was already posted"
        return f"paid {amount:,} to {inmate_id}; savings now {outcome.savings_after:,}"

    try:
        typer.echo(_run(ctx, work, read_only=False))
    except LedgerDomainError as exc:
        typer.secho(str(exc), fg="red", err=True)
        raise typer.Exit(1) from exc


@policy_app.command("load")
def policy_load(ctx: typer.Context, path: Path = typer.Argument(..., exists=True, dir_okay=False)) -> None:
    """Validate and load split policies and tax settings (new versions only; a changed existing version is
    refused); names the lapas that have policies and no tax setting (their sales keep the unset treatment)."""
    try:
        data = yaml.safe_load(path.read_text())
        taxes = parse_tax_settings(data, str(path))
        has_policies = not isinstance(data, dict) or "policies" in data or not taxes
        policies = parse_policies(data, str(path)) if has_policies else []

        async def store(uow: UnitOfWork) -> tuple[int, int, int, int]:
            new, same = await store_policies(uow, policies) if policies else (0, 0)
            new_tax, same_tax = await store_tax_settings(uow, taxes)
            return new, same, new_tax, same_tax

        new, same, new_tax, same_tax = _run(ctx, store, read_only=False)
    except (LedgerDomainError, yaml.YAMLError) as exc:
        typer.secho(str(exc), fg="red", err=True)
        raise typer.Exit(1) from exc
    typer.echo(
        f"loaded {path}: {new} new policy versions, {same} unchanged; {new_tax} new tax settings, {same_tax} unchanged"
    )
    untaxed = sorted({p.lapas_id for p in policies} - {t.lapas_id for t in taxes})
    if untaxed:
        typer.secho(
            f"no tax setting in this file for: {', '.join(untaxed)} (without one loaded, their sales carry no PPN and "
            "PPh 22 stays a prepaid tax with nothing accrued: docs/accounting.md, Tax treatment)",
            fg="yellow",
            err=True,
        )


# The correction commands (revert, adjust, approve, reject, withdraw, proposals), `entries`, the periods (close,
# periods), the anchor and `settle` register on ledger_app from their own modules; imported last, when everything they
# use from here exists.
from services.ledger import (  # noqa: E402, F401
    cli_anchor,
    cli_corrections,
    cli_entries,
    cli_periods,
    cli_settle,
    cli_statements,
    cli_waiting,
    cli_withholding,
)
