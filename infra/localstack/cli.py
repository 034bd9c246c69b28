"""``karya stack up|down|status``: manage the local Kafka broker and PostgreSQL server.

Connection settings go to stdout as plain ``KEY=value`` lines (``set -a; eval "$(karya stack up)"`` or
``karya stack up > .env``); everything friendly (progress, tables, errors) goes to stderr via rich.
"""

from __future__ import annotations

import asyncio
import os

import typer
from rich.console import Console
from rich.table import Table

from infra.db.migrate import upgrade_to_head
from infra.db.roles import bootstrap_database
from infra.environment import resolve_environment, write_env_file
from infra.localstack import (
    KafkaInfo,
    LocalStackError,
    PostgresInfo,
    ensure_kafka,
    ensure_postgres,
    kafka_status,
    postgres_status,
    stack_port_notes,
    stop_kafka,
    stop_postgres,
)

stack_app = typer.Typer(
    name="stack",
    help="Local Kafka broker + PostgreSQL server for development and tests.",
    no_args_is_help=True,
)
_err = Console(stderr=True, highlight=False)


def _progress(line: str) -> None:
    _err.print(f"[dim]•[/dim] {line}", soft_wrap=True)


def _exports(kafka: KafkaInfo | None, postgres: PostgresInfo | None) -> None:
    """Plain shell-exportable lines on stdout (no rich markup, no colour)."""
    if kafka is not None:
        typer.echo(f"KAFKA_BOOTSTRAP_SERVERS={kafka.bootstrap}")
        typer.echo(f"KARYA_KAFKA_PID={kafka.pid if kafka.pid is not None else ''}")
    if postgres is not None:
        typer.echo(f"KARYA_DB_ADMIN_URL={_mask(postgres.superuser_url)}")
        typer.echo(f"KARYA_PG_PID={postgres.pid if postgres.pid is not None else ''}")


def _table(kafka: KafkaInfo | None, postgres: PostgresInfo | None) -> Table:
    table = Table(title="karya local stack", title_justify="left")
    for column in ("service", "state", "pid", "endpoint", "version"):
        table.add_column(column)
    if kafka is not None:
        table.add_row("kafka", "[green]up[/green]", str(kafka.pid), kafka.bootstrap, kafka.version)
    else:
        table.add_row("kafka", "[red]down[/red]", "-", "-", "-")
    if postgres is not None:
        endpoint = postgres.superuser_url.rsplit("@", 1)[-1]
        table.add_row("postgres", "[green]up[/green]", str(postgres.pid), endpoint, postgres.version)
    else:
        table.add_row("postgres", "[red]down[/red]", "-", "-", "-")
    return table


@stack_app.command("up")
def up(
    kafka: bool = typer.Option(True, "--kafka/--no-kafka", help="Start the Kafka broker."),
    postgres: bool = typer.Option(True, "--postgres/--no-postgres", help="Start PostgreSQL."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only errors."),
) -> None:
    """Start the local services (idempotent), create roles, migrate, and print the connection settings.

    ``KAFKA_BOOTSTRAP_SERVERS`` / ``KARYA_DB_ADMIN_URL`` in the environment replace the local broker / server.
    The full settings, secrets included, go to ``.local/stack.env`` (mode 0600); stdout shows them masked.
    """
    progress = (lambda _line: None) if quiet else _progress
    try:
        external_pg = bool(os.environ.get("KARYA_DB_ADMIN_URL"))
        external_kafka = bool(os.environ.get("KAFKA_BOOTSTRAP_SERVERS"))
        pg_info = ensure_postgres(progress) if postgres and not external_pg else postgres_status()
        kafka_info = ensure_kafka(progress) if kafka and not external_kafka else kafka_status()
    except LocalStackError as exc:
        _err.print(f"[bold red]error:[/bold red] {exc}")
        raise typer.Exit(1) from exc
    env = resolve_environment()
    progress("creating roles and database, migrating to head")
    asyncio.run(bootstrap_database(env.admin_url, env.passwords, "karya"))
    upgrade_to_head(env.roles.migrator)
    env_file = write_env_file(env)
    if quiet:
        return
    _err.print(_table(kafka_info, pg_info))
    _print_port_notes()
    for key, value in env.as_env().items():
        if "PASSWORD" not in key:
            typer.echo(f"{key}={_mask(value)}")
    _err.print(f"full settings (with secrets): source {env_file}")


def _print_port_notes() -> None:
    for note in stack_port_notes():
        _err.print(f"[yellow]note:[/yellow] {note}", soft_wrap=True)


def _mask(value: str) -> str:
    from sqlalchemy.engine import make_url

    if "://" not in value:
        return value
    return make_url(value).render_as_string(hide_password=True)


@stack_app.command("down")
def down(
    kafka: bool = typer.Option(True, "--kafka/--no-kafka", help="Stop the Kafka broker."),
    postgres: bool = typer.Option(True, "--postgres/--no-postgres", help="Stop PostgreSQL."),
) -> None:
    """Stop the local services by their recorded pids."""
    try:
        results = []
        if kafka:
            results.append(("kafka", stop_kafka(_progress)))
        if postgres:
            results.append(("postgres", stop_postgres(_progress)))
    except LocalStackError as exc:
        _err.print(f"[bold red]error:[/bold red] {exc}")
        raise typer.Exit(1) from exc
    for name, was_running in results:
        _err.print(f"{name}: {'stopped' if was_running else 'was not running'}")


@stack_app.command("status")
def status() -> None:
    """Show the services; exit code 1 when any of them is down."""
    kafka_info, pg_info = kafka_status(), postgres_status()
    _err.print(_table(kafka_info, pg_info))
    _print_port_notes()
    _exports(kafka_info, pg_info)
    if kafka_info is None or pg_info is None:
        raise typer.Exit(1)
