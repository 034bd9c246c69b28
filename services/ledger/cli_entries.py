"""`karya ledger entries --order KEY`: every journal entry of one order with its lines (registers on
:data:`services.ledger.cli.ledger_app`)."""

from __future__ import annotations

from typing import Any

import typer

from services.ledger.cli import _REGISTER, _run, ledger_app
from services.ledger.cli_output import (
    FORMAT_OPTION,
    JSON_OPTION,
    ZONE_OPTION,
    Format,
    money,
    print_table,
    printed,
    when,
    zone_of,
)
from services.ledger.reports import order_entries
from services.presentation.exports import Column


def _amounts(line: dict[str, Any]) -> list[str]:
    """The debit and credit cells of a line: the amount on its side, the other blank."""
    return [money(line["debit"]) if line["debit"] else "", money(line["credit"]) if line["credit"] else ""]


_ENTRY_LINES = [
    *_REGISTER[:3],
    Column("posting_key", "posting_key"),
    Column("account", "account"),
    Column("debit", "debit", "rupiah"),
    Column("credit", "credit", "rupiah"),
]


@ledger_app.command("entries")
def entries_cmd(
    ctx: typer.Context,
    order_key: str = typer.Option(..., "--order", help="The order's key, marketplace:shop:order."),
    as_json: bool = JSON_OPTION,
    fmt: Format = FORMAT_OPTION,
    tz: str = ZONE_OPTION,
) -> None:
    """Every journal entry of one order, in posting order, with its lines (and what it reverses)."""
    zone = zone_of(tz)
    entries = _run(ctx, lambda uow: order_entries(uow, order_key))
    lines = [{**e, **line} for e in entries for line in e["lines"]]
    if printed(fmt, as_json, entries, _ENTRY_LINES, lines, zone):
        return
    cells = (
        [str(r["sequence"]), when(r["effective_at"], zone), r["kind"], r["posting_key"], r["account"], *_amounts(r)]
        for r in lines
    )
    headers = ["seq", "effective", "kind", "posting key", "account", "debit", "credit"]
    print_table(order_key, headers, cells, ("debit", "credit"))
    typer.echo(f"{len(entries)} entries" if entries else f"no journal entries for order {order_key}")
