"""``karya db`` (roles and migrations) and ``karya docs`` (generated documentation)."""

from __future__ import annotations

import asyncio
import os

import typer

db_app = typer.Typer(help="Database roles and migrations.", no_args_is_help=True)
docs_app = typer.Typer(help="Generated documentation.", no_args_is_help=True)


def _require_env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        typer.secho(f"{name} is not set (run `make stack-up` and source .local/stack.env)", fg="red", err=True)
        raise typer.Exit(2)
    return value


@db_app.command("bootstrap")
def db_bootstrap(database: str = typer.Option("karya", help="Database to create/own.")) -> None:
    """Create the migrator, service, gateway and auditor roles and the database (as KARYA_DB_ADMIN_URL)."""
    from infra.db.roles import bootstrap_database, passwords_from_env

    asyncio.run(bootstrap_database(_require_env("KARYA_DB_ADMIN_URL"), passwords_from_env(), database))
    typer.echo(f"roles and database {database!r} ready")


@db_app.command("migrate")
def db_migrate() -> None:
    """Migrate every service schema to head (as KARYA_MIGRATOR_URL)."""
    from infra.db.migrate import upgrade_to_head

    upgrade_to_head(_require_env("KARYA_MIGRATOR_URL"))
    typer.echo("migrated to head")


@docs_app.command("settings")
def docs_settings(check: bool = typer.Option(False, "--check", help="Exit 1 when docs/settings.md drifted.")) -> None:
    """Write docs/settings.md: every environment variable, from the settings classes."""
    from karya.settings_doc import DOC, render

    text = render()
    if check:
        if not DOC.exists() or DOC.read_text() != text:
            typer.secho("docs/settings.md drifted from the settings classes: run `karya docs settings`", err=True)
            raise typer.Exit(1)
        typer.echo("docs/settings.md matches the settings classes")
        return
    DOC.write_text(text)
    typer.echo(f"wrote {DOC}")
