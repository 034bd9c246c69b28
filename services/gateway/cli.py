"""``karya import bukalapak FILE``: historical orders from a Bukalapak seller-centre export.

Connects as the gateway role (``KARYA_GATEWAY_DATABASE_URL``) and writes to the gateway outbox; the running
gateway publishes the events.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from infra.db.engine import make_engine
from infra.db.unit_of_work import Database
from infra.settings import KafkaSettings, gateway_database_url
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
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="The seller-centre CSV export.")],
    shop_id: Annotated[str, typer.Option("--shop-id", help="The Bukalapak shop the export belongs to.")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Validate only; publish nothing.")] = False,
) -> None:
    """Validate a Bukalapak CSV export and publish its orders and settlements as historical events.

    Idempotent: importing the same file again publishes nothing new. Columns: see
    services/gateway/bukalapak_csv.py.
    """
    url = gateway_database_url()
    topics = GatewayTopics.with_prefix(KafkaSettings().topic_prefix)

    async def run() -> ImportReport:
        engine = make_engine(url, pool_size=1, application_name="karya-import")
        try:
            return await import_export(Database(engine, SCHEMA), file, shop_id, topics, dry_run=dry_run)
        finally:
            await engine.dispose()

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
