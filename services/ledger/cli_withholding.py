"""`karya ledger withholding`: the PPh 22 withholding slips — every settlement that withheld, its slip reference
(the marketplace's invoice number, else its settlement id) and whether its amount is off 0.5% of the price
excluding PPN by more than the lapas' tolerance (flagged: a person reviews it). Registers on
:data:`services.ledger.cli.ledger_app`."""

from __future__ import annotations

import typer

from services.ledger.adapters.withholding_repo import withholding_slips
from services.ledger.cli import _run, ledger_app
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
from services.presentation.exports import Column

_COLUMNS = [
    Column("settled_at", "settled", "datetime"),
    Column("lapas_id", "lapas"),
    Column("order_key", "order"),
    Column("slip_ref", "slip"),
    Column("withheld", "withheld", "rupiah"),
    Column("expected", "expected", "rupiah"),
    Column("tolerance", "tolerance", "rupiah"),
    Column("flagged", "flagged"),
    Column("tax_ref", "tax setting"),
    Column("posting_key", "posting_key"),
]


@ledger_app.command("withholding")
def withholding_cmd(
    ctx: typer.Context,
    lapas: str | None = typer.Option(None, "--lapas", help="Only this lapas."),
    flagged: bool = typer.Option(False, "--flagged", help="Only the withholdings a person must review."),
    limit: int = typer.Option(1000, "--limit", min=1, max=100_000, help="At most this many, newest first."),
    fmt: Format = FORMAT_OPTION,
    as_json: bool = JSON_OPTION,
    tz: str = ZONE_OPTION,
) -> None:
    """PPh 22 withheld per settlement with its slip reference; ``--flagged``: those off 0.5% by more than the
    lapas' tolerance."""
    zone = zone_of(tz)
    rows = _run(ctx, lambda uow: withholding_slips(uow, lapas=lapas, flagged_only=flagged, limit=limit))
    if printed(fmt, as_json, rows, _COLUMNS, rows, zone):
        return
    cells = (
        [
            when(r["settled_at"], zone),
            r["lapas_id"],
            r["order_key"],
            r["slip_ref"],
            money(r["withheld"]),
            money(r["expected"]),
            money(r["tolerance"]),
            "REVIEW" if r["flagged"] else "",
            r["tax_ref"],
        ]
        for r in rows
    )
    headers = ["settled", "lapas", "order", "slip", "withheld", "0.5%", "tolerance", "flag", "tax setting"]
    print_table("PPh 22 withholding slips", headers, cells, ("withheld", "0.5%", "tolerance"))
    review = sum(1 for r in rows if r["flagged"])
    typer.echo(f"{len(rows)} slips, {review} flagged for review" + ("" if lapas is None else f" ({lapas})"))
