"""`karya ledger report balance-sheet|income|distribution|premi|pnbp|suppliers|tax --lapas X --period YYYY-MM`: the
reports per lapas and period of :mod:`services.ledger.statements`, as a table, JSON or CSV (every CSV row names the
lapas, the period and the BAS code of its account, so the file can be re-keyed into the ministry's application).

``--as-of`` (effective time: entries effective up to it) and ``--known-at`` (recorded time: entries recorded up to
it, what the ledger knew then) take an ISO 8601 date or time; one without an offset is the lapas' wall clock, and
both are printed in the lapas' zone. Thin translators: a malformed ``--period``, ``--as-of`` or ``--known-at`` is a
usage error (exit 2); an unknown lapas, a lapas without a zone or an unusable BAS mapping file is printed and exits 1.
Registered on :data:`services.ledger.cli.ledger_app` as ``report``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import typer

from infra.cli_root import CliRoot
from infra.db.unit_of_work import UnitOfWork
from services.ledger.cli import _run, ledger_app
from services.ledger.cli_output import FORMAT_OPTION, Format, money, print_csv, print_json, print_table
from services.ledger.domain.errors import LedgerDomainError
from services.ledger.domain.periods import Period, PeriodRefused
from services.ledger.statements import REPORTS, LapasReport, lapas_report
from services.presentation.exports import Column

report_app = typer.Typer(help="Reports per lapas and period (months in the lapas' zone).", no_args_is_help=True)
ledger_app.add_typer(report_app, name="report")

_HEAD = [Column("lapas_id", "Lapas"), Column("period", "period")]
_STATEMENT = [
    *_HEAD,
    Column("section", "Section"),
    Column("line", "Line"),
    Column("account", "account"),
    Column("bas_code", "BAS code"),
    Column("bas_status", "BAS status"),
    Column("amount", "amount", "int"),
]
_REGISTER_OWNER = {"premi": "inmate_id", "pnbp": "lapas_id", "suppliers": "supplier_id"}
_REGISTER_FIGURES = {
    "premi": ("opening", "accrued", "clawed_back", "paid_out", "balance"),
    "pnbp": ("opening", "accrued", "reversed", "deposited", "balance"),
    "suppliers": ("opening", "accrued", "returned", "paid", "balance"),
}
_HELP = {
    "balance-sheet": "Assets, liabilities and equity of the lapas at the period end (assets = liabilities + equity + "
    "result of the period).",
    "income": "Income statement of the period: PNBP share as the state's revenue, capital allocation as an "
    "appropriation below the result.",
    "distribution": "Laporan pembagian hasil: sales → output PPN, fees (net of input PPN), PPh 22 per treatment, "
    "material (suppliers), deductions → PNBP / premi / capital; what is not distributed.",
    "premi": "Premi register per inmate (pseudonymous ids): opening, accrued, clawed back, paid out, balance.",
    "pnbp": "PNBP of the lapas: owed at the start, accrued, reversed, deposited to the treasury, still owed.",
    "suppliers": "Supplier statements: payable at the start, accrued, returned, paid, balance.",
    "tax": "Taxes of the period: output PPN, input PPN in fees, net PPN payable, PPh 22 withheld per treatment "
    "(creditable, borne as a cost, to claim back), income tax accrued; what is owed or claimable at the end.",
}


def _rows(name: str, report: LapasReport) -> list[dict[str, Any]]:
    """The report's rows, each with the lapas and the period (what CSV prints)."""
    head = {"lapas_id": report.lapas_id, "period": str(report.period)}
    rows = report.data["rows"] if isinstance(report.data, dict) else report.data
    return [head | r for r in rows] if name not in _REGISTER_OWNER else [r | head for r in rows]


def _columns(name: str) -> list[Column]:
    if name not in _REGISTER_OWNER:
        return _STATEMENT
    owner = _REGISTER_OWNER[name]
    figures = [Column(f, f.replace("_", " ").capitalize(), "int") for f in _REGISTER_FIGURES[name]]
    own = [] if owner == "lapas_id" else [Column(owner, owner.replace("_", " ").capitalize())]
    return [*_HEAD, *own, Column("account", "account"), Column("bas_code", "BAS code"), *figures]


def _print(name: str, report: LapasReport, fmt: Format) -> None:
    rows = _rows(name, report)
    if fmt is Format.JSON:
        print_json(report.header() | {"report": name, "data": report.data})
        return
    if fmt is Format.CSV:
        print_csv(_columns(name), rows, report.zone)
        return
    closed = f", closed by {report.closed_by}" if report.closed_by else ", open"
    head = report.header()
    title = (
        f"{name} of {report.lapas_id}, {report.period} ({report.zone.key}{closed}), as of {head['as_of']}, "
        f"known at {head['known_at']}"
    )
    columns = [c for c in _columns(name) if c.key not in ("lapas_id", "period")]
    cells = ([money(r[c.key]) if c.kind == "int" else str(r[c.key] or "") for c in columns] for r in rows)
    print_table(title, [c.header for c in columns], cells, right=[c.header for c in columns if c.kind == "int"])
    if name == "balance-sheet":
        d = report.data
        typer.echo(
            f"assets {money(d['assets'])} = liabilities {money(d['liabilities'])} + equity {money(d['equity'])} + "
            f"result {money(d['period_result'])}: {'balanced' if d['balanced'] else 'NOT BALANCED'}"
        )


def _moment(value: str | None, option: str) -> datetime | None:
    """An ISO 8601 date or time as given (no offset: left to the lapas' zone); a usage error naming ``option``."""
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter(
            f"{value!r} is not an ISO 8601 date or time (e.g. 2026-11-30, 2026-11-30T17:00, "
            "2026-11-30T17:00+08:00; no offset: the lapas' zone)",
            param_hint=option,
        ) from exc


def _command(name: str) -> Callable[..., None]:
    def command(
        ctx: typer.Context,
        lapas: str = typer.Option(..., "--lapas", help="The lapas."),
        period: str = typer.Option(..., "--period", help="The month, YYYY-MM (in the lapas' own zone)."),
        as_of: str | None = typer.Option(
            None,
            "--as-of",
            help="Effective up to this time if earlier than the period end (no offset: the lapas' zone).",
        ),
        known_at: str | None = typer.Option(
            None, "--known-at", help="Only entries recorded by this time (no offset: the lapas' zone); default now."
        ),
        fmt: Format = FORMAT_OPTION,
    ) -> None:
        try:
            month = Period.parse(period)
        except PeriodRefused as exc:
            raise typer.BadParameter(str(exc), param_hint="--period") from exc
        until, known = _moment(as_of, "--as-of"), _moment(known_at, "--known-at")
        catalogue = CliRoot.of(ctx).schema("orders")  # the lapas' province, hence its zone

        async def work(uow: UnitOfWork) -> LapasReport:
            return await lapas_report(uow, name, lapas, month, catalogue_schema=catalogue, as_of=until, known_at=known)

        try:
            report = _run(ctx, work)
        except LedgerDomainError as exc:
            typer.secho(str(exc), fg="red", err=True)
            raise typer.Exit(1) from exc
        _print(name, report, fmt)

    command.__doc__ = _HELP[name]
    return command


for _name in REPORTS:
    report_app.command(_name)(_command(_name))
