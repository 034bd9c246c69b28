"""``karya users``: the finance workspace's accounts (add, list, disable), as the service role.

``karya users add NAME --role auditor_pusat|auditor_lapas|bendahara|admin [--lapas L]`` prints a generated
password once (only its argon2id hash is kept); ``--password-stdin`` reads one instead (at least 12 characters).
``karya users password NAME`` gives an account a new password (and ends its sessions); ``karya users log`` shows
the audit log (logins, failed logins, exports, approvals, account changes), newest first.
"""

from __future__ import annotations

import getpass
import sys
from typing import NoReturn

import typer

from infra.cli_root import CliRoot
from infra.db.unit_of_work import UnitOfWork
from services.finance.app import SCHEMA
from services.finance.auth import audit
from services.finance.auth.passwords import generate_password, hash_password
from services.finance.auth.users import (
    ROLES,
    Account,
    AccountError,
    add_user,
    check_account,
    disable_user,
    reset_password,
)
from services.finance.auth.users import list_accounts as list_rows

users_app = typer.Typer(help="Accounts of the finance workspace (`karya serve finance`).", no_args_is_help=True)


def _actor() -> str:
    """Who the audit log names for an account changed from the command line: ``cli:<OS user>``."""
    return f"cli:{getpass.getuser()}"


def _refuse(message: str, code: int) -> NoReturn:
    typer.secho(message, err=True, fg="red")
    raise typer.Exit(code)


def _new_password(from_stdin: bool) -> tuple[str, str]:
    """A password (read from stdin, or generated) and its hash; stops the command (2) when it is too short."""
    password = sys.stdin.readline().rstrip("\n") if from_stdin else generate_password()
    try:
        return password, hash_password(password)
    except ValueError as exc:
        _refuse(str(exc), 2)


@users_app.command("add")
def add(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The user name (no spaces)."),
    role: str = typer.Option(..., "--role", help=" | ".join(ROLES)),
    lapas: str | None = typer.Option(None, "--lapas", help="The lapas of an auditor_lapas or bendahara."),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the password from stdin."),
) -> None:
    """Create an account and print its password (generated unless --password-stdin)."""
    try:
        check_account(name, role, lapas)
    except AccountError as exc:
        _refuse(str(exc), 2)
    password, hashed = _new_password(password_stdin)

    async def work(uow: UnitOfWork) -> None:
        user = await add_user(uow, name, role, lapas, hashed)
        await audit.record(
            uow, _actor(), "user_added", f"{user.name} ({user.role}{f', {user.lapas}' if user.lapas else ''})"
        )

    try:
        CliRoot.of(ctx).run("service", SCHEMA, work)
    except AccountError as exc:
        _refuse(str(exc), 1)
    typer.echo(f"added {name} ({role}{f', lapas {lapas}' if lapas else ''})")
    if not password_stdin:
        typer.echo(f"password: {password}")


@users_app.command("list")
def list_users(ctx: typer.Context) -> None:
    """Every account: name, role, lapas, and whether it is disabled."""
    accounts: list[Account] = CliRoot.of(ctx).run("service", SCHEMA, list_rows)
    for account in accounts:
        user = account.user
        state = "disabled" if account.disabled else "active"
        typer.echo(f"{user.name}\t{user.role}\t{user.lapas or '-'}\t{state}")


@users_app.command("disable")
def disable(ctx: typer.Context, name: str = typer.Argument(..., help="The user name.")) -> None:
    """Disable an account and end its sessions (the account and its audit rows stay)."""

    async def work(uow: UnitOfWork) -> bool:
        done = await disable_user(uow, name)
        if done:
            await audit.record(uow, _actor(), "user_disabled", name)
        return done

    if not CliRoot.of(ctx).run("service", SCHEMA, work):
        _refuse(f"no active user named {name!r}", 1)
    typer.echo(f"disabled {name}")


@users_app.command("password")
def password(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The user name."),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the password from stdin."),
) -> None:
    """Give an account a new password (generated unless --password-stdin) and end its sessions."""
    new, hashed = _new_password(password_stdin)

    async def work(uow: UnitOfWork) -> bool:
        done = await reset_password(uow, name, hashed)
        if done:
            await audit.record(uow, _actor(), "password_reset", name)
        return done

    if not CliRoot.of(ctx).run("service", SCHEMA, work):
        _refuse(f"no active user named {name!r}", 1)
    typer.echo(f"new password for {name}" + ("" if password_stdin else f": {new}"))


@users_app.command("log")
def log(
    ctx: typer.Context,
    user: str | None = typer.Option(None, "--user", help="Only what this name did (or tried)."),
    limit: int = typer.Option(50, "--limit", min=1, max=10_000),
) -> None:
    """The audit log, newest first: time (UTC), who, role, lapas, action, subject, address."""

    async def work(uow: UnitOfWork) -> list[audit.AuditRow]:
        return await audit.recent(uow, actor=user, limit=limit)

    for row in CliRoot.of(ctx).run("auditor", SCHEMA, work):
        fields = (row.at.isoformat(), row.actor, row.role, row.lapas, row.action, row.subject, row.ip)
        typer.echo("\t".join(value or "-" for value in fields))
