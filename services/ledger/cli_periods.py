"""`karya ledger close|periods`: close a lapas' accounting month, list the closed ones.

Thin translators onto :mod:`services.ledger.periods`. A malformed ``--period`` is a usage error (exit 2); a close
refused by a rule (unknown lapas, a month that has not ended in the lapas' zone, a period closed already, no acting
user) is printed and exits 1 with nothing written. The commands register on :data:`services.ledger.cli.ledger_app`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import typer

from infra.cli_root import CliRoot
from infra.db.unit_of_work import UnitOfWork
from services.ledger.cli import _json, _run, ledger_app
from services.ledger.cli_output import when
from services.ledger.domain.periods import ClosedPeriod, Period, PeriodRefused
from services.ledger.periods import close_period, list_periods

_LAST_INSTANT = timedelta(microseconds=1)


def report_as_of(period: ClosedPeriod) -> datetime:
    """The ``--as-of`` of a report of ``period`` as of its end: its last instant (``--as-of`` includes its time, and
    a late item posts at the period's end, the first instant of the next one)."""
    return period.ends_at - _LAST_INSTANT


def _row(p: ClosedPeriod) -> dict[str, Any]:
    zone = ZoneInfo(p.zone)
    return {
        "lapas_id": p.lapas_id,
        "period": str(p.period),
        "zone": p.zone,
        "starts_at": p.starts_at.astimezone(zone).isoformat(),
        "ends_at": p.ends_at.astimezone(zone).isoformat(),
        "report_as_of": report_as_of(p).astimezone(zone).isoformat(),
        "closed_by": p.closed_by,
        "closed_at": None if p.closed_at is None else p.closed_at.astimezone(zone).isoformat(),
    }


@ledger_app.command("close")
def close_cmd(
    ctx: typer.Context,
    lapas: str = typer.Option(..., "--lapas", help="The lapas whose month is closed."),
    period: str = typer.Option(..., "--period", help="The month, YYYY-MM (counted in the lapas' own zone)."),
    acting: str | None = typer.Option(None, "--as", envvar="KARYA_USER", help="Who closes it (or KARYA_USER)."),
) -> None:
    """Close a month of one lapas: nothing posts effective inside it any more; a late item posts in the first open
    period, its memo naming the period it belongs to. Only a month that has ended; once (no reopening)."""
    try:
        Period.parse(period)
    except PeriodRefused as exc:
        raise typer.BadParameter(str(exc), param_hint="--period") from exc
    catalogue = CliRoot.of(ctx).schema("orders")  # the catalogue (lapas and province): the orders service's

    async def work(uow: UnitOfWork) -> ClosedPeriod:
        return await close_period(uow, lapas, period, acting=acting, now=datetime.now(UTC), catalogue_schema=catalogue)

    try:
        closed = _run(ctx, work, read_only=False)
    except PeriodRefused as exc:
        typer.secho(str(exc), fg="red", err=True)
        raise typer.Exit(1) from exc
    zone = ZoneInfo(closed.zone)
    typer.echo(
        f"closed {closed.period} of {closed.lapas_id} ({closed.zone}: {when(closed.starts_at, zone)} to "
        f"{when(closed.ends_at, zone)}) by {closed.closed_by}; a late item of it posts from "
        f"{when(closed.ends_at, zone)}; report it with --as-of {report_as_of(closed).astimezone(zone).isoformat()}"
    )


@ledger_app.command("periods")
def periods_cmd(
    ctx: typer.Context,
    lapas: str | None = typer.Option(None, "--lapas", help="Only this lapas."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """The closed periods: lapas, month, its bounds in the lapas' zone, who closed it and when."""
    periods = _run(ctx, lambda uow: list_periods(uow, lapas))
    if as_json:
        _json([_row(p) for p in periods])
        return
    for p in periods:
        zone = ZoneInfo(p.zone)
        typer.echo(
            f"{p.lapas_id}  {p.period}  {when(p.starts_at, zone)} to {when(p.ends_at, zone)}  "
            f"closed by {p.closed_by} at {when(p.closed_at, zone)}"
        )
    typer.echo(f"{len(periods)} closed" + ("" if lapas is None else f" for {lapas}"))
