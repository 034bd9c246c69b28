"""``karya import bukalapak FILE``: historical orders from a Bukalapak seller-centre export.

Connects as the gateway role (``KARYA_GATEWAY_DATABASE_URL``) and writes to the gateway outbox; the running
gateway publishes the events.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from infra.cli_root import CliRoot
from services.gateway.app import SCHEMA
from services.gateway.bukalapak_csv import BukalapakCsvError
from services.gateway.bukalapak_import import ImportReport, import_export
from services.gateway.emit import GatewayTopics

import_app = typer.Typer(help="Import past orders from marketplaces that are gone.", no_args_is_help=True)


@import_app.callback()
def _group() -> None:
    """Import past orders from marketplaces that are gone (a group, so more sources can join)."""


@import_app.command("bukalapak")
def import_bukalapak(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="The seller-centre CSV export.")],
    shop_id: Annotated[str, typer.Option("--shop-id", help="The Bukalapak shop the export belongs to.")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Validate only; publish nothing.")] = False,
) -> None:
    """Validate a Bukalapak CSV export and publish its orders and settlements as historical events.

    Idempotent: importing the same file again publishes nothing new. Columns: see
    services/gateway/bukalapak_csv.py.
    """
    root = CliRoot.of(ctx)

    async def run() -> ImportReport:
        async with root.database("gateway", SCHEMA, name="karya-import") as db:
            return await import_export(db, file, shop_id, root.topics(GatewayTopics), dry_run=dry_run)

    try:
        report = asyncio.run(run())
    except BukalapakCsvError as exc:
        typer.secho(str(exc), fg="red", err=True)
        raise typer.Exit(1) from exc
    except ValueError as exc:
        typer.secho(str(exc), fg="red", err=True)
        raise typer.Exit(2) from exc
    verb = "would publish" if dry_run else "published"
    typer.echo(
        f"{report.file}: {report.invoices} invoices, {report.events} events; {verb} "
        f"{report.events if dry_run else report.published}"
        + ("" if dry_run else f", {report.already_imported} already imported")
    )
