"""Accounts and roles of the finance workspace on the real database: `karya users`, role checks on routes, the
database's own guarantees (lapas scope, append-only audit log, what the auditor role may read) and the demo
accounts."""

from __future__ import annotations

import asyncio
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fastapi import APIRouter, Depends
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from infra.db.engine import make_engine
from infra.db.roles import RoleUrls
from services.finance.auth import CurrentUser, User, audit, csrf_protect, require_role
from services.finance.auth.cli import users_app
from services.finance.auth.demo import create_demo_users
from tests.integration.cli_support import cli_root
from tests.integration.finance_auth_support import Workspace, csrf_of, workspace

probe = APIRouter()


@probe.get("/api/v1/whoami")
async def whoami(user: CurrentUser) -> dict[str, str | None]:
    """The signed-in user and their lapas scope."""
    return {"name": user.name, "role": user.role, "scope": user.lapas_scope}


@probe.post("/api/v1/approvals")
async def approve(user: User = Depends(require_role("bendahara"))) -> dict[str, str]:
    """A route only a treasurer may use."""
    return {"approved_by": user.name}


@probe.post("/api/v1/proposals", dependencies=[Depends(csrf_protect)])
async def propose(user: CurrentUser) -> dict[str, str]:
    """A state-changing route a script calls with the session's token in a header."""
    return {"proposed_by": user.name}


@pytest.fixture
async def ws(database: RoleUrls) -> AsyncIterator[Workspace]:
    """The workspace with the probe routes, as its own role (karya_finance)."""
    async with workspace(database.finance, routers=[probe]) as made:
        yield made


async def test_api_routes_need_a_session_and_the_right_role(ws: Workspace) -> None:
    treasurer, treasurer_password = await ws.account("bendahara", "lapas-a")
    auditor, auditor_password = await ws.account("auditor_lapas", "lapas-b")
    central, central_password = await ws.account("auditor_pusat")

    assert (await ws.client().get("/api/v1/whoami")).status_code == 401
    as_auditor = await ws.signed_in(auditor, auditor_password)
    assert (await as_auditor.get("/api/v1/whoami")).json() == {
        "name": auditor.name,
        "role": "auditor_lapas",
        "scope": "lapas-b",
    }
    assert (await as_auditor.post("/api/v1/approvals")).status_code == 403
    as_central = await ws.signed_in(central, central_password)
    assert (await as_central.get("/api/v1/whoami")).json()["scope"] is None
    as_treasurer = await ws.signed_in(treasurer, treasurer_password)
    assert (await as_treasurer.post("/api/v1/approvals")).json() == {"approved_by": treasurer.name}


async def test_a_state_changing_api_call_needs_the_sessions_token_in_its_header(ws: Workspace) -> None:
    treasurer, password = await ws.account("bendahara", "lapas-a")
    other, other_password = await ws.account("bendahara", "lapas-a")
    client = await ws.signed_in(treasurer, password)
    token = csrf_of((await client.get("/")).text)
    others_token = csrf_of((await (await ws.signed_in(other, other_password)).get("/")).text)

    assert (await client.post("/api/v1/proposals")).status_code == 403
    assert (await client.post("/api/v1/proposals", headers={"X-CSRF-Token": others_token})).status_code == 403
    accepted = await client.post("/api/v1/proposals", headers={"X-CSRF-Token": token})
    assert accepted.status_code == 200 and accepted.json() == {"proposed_by": treasurer.name}


def test_users_cli_adds_lists_and_disables(database: RoleUrls) -> None:
    runner, root = CliRunner(), cli_root(database, roles=("service",))

    added = runner.invoke(users_app, ["add", "siti-cli", "--role", "bendahara", "--lapas", "lapas-a"], obj=root)
    assert added.exit_code == 0, added.output
    assert "password: " in added.output
    assert runner.invoke(users_app, ["add", "siti-cli", "--role", "admin"], obj=root).exit_code == 1  # name taken
    refused = runner.invoke(users_app, ["add", "budi-cli", "--role", "auditor_lapas"], obj=root)
    assert refused.exit_code == 2 and "--lapas" in refused.output
    assert runner.invoke(users_app, ["add", "ani-cli", "--role", "admin", "--lapas", "x"], obj=root).exit_code == 2
    stdin = runner.invoke(
        users_app, ["add", "dewi-cli", "--role", "admin", "--password-stdin"], "a-long-password\n", obj=root
    )
    assert stdin.exit_code == 0 and "password:" not in stdin.output

    listed = runner.invoke(users_app, ["list"], obj=root).output
    assert "siti-cli\tbendahara\tlapas-a\tactive" in listed and "dewi-cli\tadmin\t-\tactive" in listed
    assert runner.invoke(users_app, ["disable", "siti-cli"], obj=root).exit_code == 0
    assert "siti-cli\tbendahara\tlapas-a\tdisabled" in runner.invoke(users_app, ["list"], obj=root).output
    assert runner.invoke(users_app, ["disable", "siti-cli"], obj=root).exit_code == 1
    assert runner.invoke(users_app, ["password", "siti-cli"], obj=root).exit_code == 1  # disabled
    reset = runner.invoke(users_app, ["password", "dewi-cli"], obj=root)
    assert reset.exit_code == 0 and reset.output.startswith("new password for dewi-cli: ")

    logged = [
        line.split("\t") for line in runner.invoke(users_app, ["log", "--limit", "5"], obj=root).output.split("\n")
    ]
    assert [(row[1].startswith("cli:"), row[4], row[5]) for row in logged if len(row) == 7][:3] == [
        (True, "password_reset", "dewi-cli"),
        (True, "user_disabled", "siti-cli"),
        (True, "user_added", "dewi-cli (admin)"),
    ]


async def test_a_new_password_ends_the_accounts_sessions(ws: Workspace, database: RoleUrls) -> None:
    user, password = await ws.account("auditor_pusat")
    client = await ws.signed_in(user, password)

    reset = await asyncio.to_thread(CliRunner().invoke, users_app, ["password", user.name], obj=cli_root(database))

    assert (await client.get("/api/v1/whoami")).status_code == 401
    assert (await ws.login(ws.client(), user.name, password)).status_code == 401
    new = reset.output.rsplit(": ", 1)[1].strip()
    assert (await ws.login(ws.client(), user.name, new)).status_code == 303


async def test_a_disabled_account_loses_its_sessions_and_cannot_sign_in(ws: Workspace, database: RoleUrls) -> None:
    user, password = await ws.account("auditor_pusat")
    client = await ws.signed_in(user, password)

    invoked = await asyncio.to_thread(CliRunner().invoke, users_app, ["disable", user.name], obj=cli_root(database))
    assert invoked.exit_code == 0, invoked.output

    assert (await client.get("/api/v1/whoami")).status_code == 401
    assert (await ws.login(ws.client(), user.name, password)).status_code == 401


async def test_the_database_refuses_a_role_without_its_lapas_scope(ws: Workspace) -> None:
    for role, lapas in (("auditor_lapas", None), ("bendahara", None), ("auditor_pusat", "lapas-a"), ("root", None)):
        with pytest.raises(DBAPIError, match="check"):
            async with ws.db.begin() as uow:
                await uow.conn.execute(
                    text(
                        f"INSERT INTO {uow.table('users')} (name, role, lapas, password_hash) VALUES (:n, :r, :l, :h)"
                    ),
                    {"n": f"x-{role}", "r": role, "l": lapas, "h": "$argon2id$v=19$x"},
                )


async def test_the_audit_log_is_append_only_and_other_modules_record_through_it(
    ws: Workspace, admin_db_url: str
) -> None:
    """The workspace's role may not change a row, and even the superuser is stopped by the log's triggers."""
    user, _ = await ws.account("auditor_pusat")
    async with ws.db.engine.begin() as conn:  # a module with only its connection records an export
        await audit.record(conn, user, "export", "trial_balance.csv")

    admin = make_engine(admin_db_url, pool_size=1)
    try:
        for engine, refusal in ((ws.db.engine, "permission denied"), (admin, "append-only")):
            for statement in ("UPDATE {t} SET subject = 'x' WHERE actor = :a", "DELETE FROM {t} WHERE actor = :a"):
                with pytest.raises(DBAPIError, match=refusal):
                    async with engine.begin() as conn:
                        await conn.execute(text(statement.format(t="finance.audit_log")), {"a": user.name})
            with pytest.raises(DBAPIError, match=refusal):
                async with engine.begin() as conn:
                    await conn.execute(text("TRUNCATE finance.audit_log"))
    finally:
        await admin.dispose()
    async with ws.db.read() as uow:
        rows = await audit.recent(uow, actor=user.name)
    assert [(r.action, r.subject, r.role) for r in rows] == [("export", "trial_balance.csv", "auditor_pusat")]


async def test_the_auditor_role_reads_accounts_without_hashes_and_no_sessions(database: RoleUrls) -> None:
    engine = make_engine(database.auditor, pool_size=1)
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT id, name, role, lapas, disabled_at FROM finance.users"))
            await conn.execute(text("SELECT action FROM finance.audit_log LIMIT 1"))
        for forbidden in ("SELECT password_hash FROM finance.users", "SELECT token_hash FROM finance.sessions"):
            with pytest.raises(DBAPIError, match="permission denied"):
                async with engine.connect() as conn:
                    await conn.execute(text(forbidden))
    finally:
        await engine.dispose()


async def test_demo_users_one_per_role_sign_in_with_the_written_passwords(ws: Workspace, tmp_path: Path) -> None:
    credentials = tmp_path / "finance-users.txt"
    await create_demo_users(ws.db, credentials, "lapas-demo")
    again = await create_demo_users(ws.db, credentials, "lapas-demo")  # a second demo run resets the passwords

    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
    lines = [line.split("\t") for line in credentials.read_text().splitlines() if not line.startswith("#")]
    assert [(name, role, lapas) for name, role, lapas, _ in lines] == [
        ("demo-auditor-pusat", "auditor_pusat", "-"),
        ("demo-auditor-lapas", "auditor_lapas", "lapas-demo"),
        ("demo-bendahara", "bendahara", "lapas-demo"),
        ("demo-admin", "admin", "-"),
    ]
    for name, _, _, password in lines:
        assert password == again[name]
        assert (await ws.login(ws.client(), name, password)).status_code == 303
