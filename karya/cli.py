"""The ``karya`` command: local stack, database, services, schemas and (per service) domain commands."""

from __future__ import annotations

import asyncio
import os

import typer

from infra.cli_root import CliRoot
from infra.db.migrate import upgrade_to_head
from infra.db.roles import bootstrap_database, passwords_from_env

app = typer.Typer(help="Karya: order fulfilment and revenue ledger for lapas workshop goods.", no_args_is_help=True)
db_app = typer.Typer(help="Database roles and migrations.", no_args_is_help=True)
schemas_app = typer.Typer(help="Event contracts (JSON Schema, AsyncAPI).", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(schemas_app, name="schemas")
docs_app = typer.Typer(help="Generated documentation.", no_args_is_help=True)
app.add_typer(docs_app, name="docs")


def _require_env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        typer.secho(f"{name} is not set (run `make stack-up` and source .local/stack.env)", fg="red", err=True)
        raise typer.Exit(2)
    return value


@db_app.command("bootstrap")
def db_bootstrap(database: str = typer.Option("karya", help="Database to create/own.")) -> None:
    """Create the migrator, service, gateway and auditor roles and the database (as KARYA_DB_ADMIN_URL)."""
    asyncio.run(bootstrap_database(_require_env("KARYA_DB_ADMIN_URL"), passwords_from_env(), database))
    typer.echo(f"roles and database {database!r} ready")


@db_app.command("migrate")
def db_migrate() -> None:
    """Migrate every service schema to head (as KARYA_MIGRATOR_URL)."""
    upgrade_to_head(_require_env("KARYA_MIGRATOR_URL"))
    typer.echo("migrated to head")


@app.command("serve")
def serve(
    service: str = typer.Argument(..., help="orders | ledger | gateway | finance"),
    host: str = typer.Option("127.0.0.1"),
    port: int = typer.Option(
        0, help="HTTP port for /healthz, /readyz, /metrics (0: KARYA_<SERVICE>_PORT, else the service default)."
    ),
) -> None:
    """Run one service process until interrupted (logs: JSON lines on stderr, level from KARYA_LOG_LEVEL)."""
    import uvicorn

    from infra.logging import configure_logging
    from infra.settings import http_port
    from karya.services import build_http_app

    configure_logging(service)
    application = build_http_app(service)
    from services.gateway.edge import serve_options  # header/body deadlines and a connection limit (gateway)

    uvicorn.run(
        application,
        host=host,
        port=port or http_port(service),
        log_level="warning",
        log_config=None,  # uvicorn logs through the root logger configured above (JSON, WARNING and up)
        access_log=False,
        **serve_options(service),
    )


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


def main() -> None:
    """Console-script entry point."""
    from infra.logging import configure_logging

    configure_logging("karya")  # `karya serve` names its service
    _mount_optional()
    app(prog_name="karya", obj=_cli_root)  # the commands' root, made on first use (infra.cli_root.CliRoot.of)


def _cli_root() -> CliRoot:
    from karya.services import cli_root  # the topology and the process settings: only when a command needs them

    return cli_root()


def _mount_optional() -> None:
    """Sub-apps that live with their service (imported lazily so `karya --help` stays fast)."""
    from infra.localstack.cli import stack_app

    app.add_typer(stack_app, name="stack")
    from karya import schemas_cli
    from services.ledger.cli import ledger_app, policy_app
    from services.orders.cli import catalogue_app, orders_app, stock_app

    schemas_cli.register(schemas_app)
    app.add_typer(catalogue_app, name="catalogue")
    app.add_typer(stock_app, name="stock")
    app.add_typer(orders_app, name="orders")
    app.add_typer(ledger_app, name="ledger")
    app.add_typer(policy_app, name="policy")
    from services.finance.auth.cli import users_app

    app.add_typer(users_app, name="users")
    from services.gateway.cli import import_app

    app.add_typer(import_app, name="import")
    from services.gateway.shops.cli import app as shops_app

    app.add_typer(shops_app, name="shops")
    from karya.demo import demo

    app.command("demo")(demo)
    from karya.audit_cli import audit_app

    app.add_typer(audit_app, name="audit")
    from karya.dlq_cli import dlq_app

    app.add_typer(dlq_app, name="dlq")


if __name__ == "__main__":  # pragma: no cover
    main()
