"""Signing in to the finance workspace on the real database: the session cookie, wrong passwords, the throttle,
CSRF, idle expiry and the audit rows each outcome leaves."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text

from infra.db.roles import RoleUrls
from services.finance.auth import audit
from tests.integration.finance_auth_support import Workspace, csrf_of, finance_settings, workspace


@pytest.fixture
async def ws(database: RoleUrls) -> AsyncIterator[Workspace]:
    """The workspace on the session database, as its own role (karya_finance)."""
    async with workspace(database.finance, finance_settings(login_max_failures=3)) as made:
        yield made


async def _actions(ws: Workspace, actor: str) -> list[str]:
    async with ws.db.read() as uow:
        return [row.action for row in reversed(await audit.recent(uow, actor=actor))]


async def test_a_right_password_opens_a_session_with_safe_cookies_and_is_audited(ws: Workspace) -> None:
    user, password = await ws.account("auditor_pusat")
    client = ws.client()

    response = await ws.login(client, user.name, password)

    assert response.status_code == 303 and response.headers["location"] == "/"
    cookie = next(c for c in response.headers.get_list("set-cookie") if c.startswith("karya_session="))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie  # localhost: not Secure
    home = await client.get("/")
    assert home.status_code == 200 and user.name in home.text
    assert await _actions(ws, user.name) == [audit.LOGIN]
    async with ws.db.read() as uow:
        row = (await audit.recent(uow, actor=user.name))[0]
    assert (row.user_id, row.role, row.subject, row.ip) == (user.id, "auditor_pusat", "web", "127.0.0.1")


async def test_signing_in_again_replaces_the_browsers_session(ws: Workspace) -> None:
    user, password = await ws.account("auditor_pusat")
    client = await ws.signed_in(user, password)
    first = client.cookies["karya_session"]

    assert (await ws.login(client, user.name, password)).status_code == 303

    assert client.cookies["karya_session"] != first
    stale = ws.client()
    stale.cookies.set("karya_session", first)
    assert (await stale.get("/")).status_code == 303


async def test_no_page_may_be_framed_by_another_site(ws: Workspace) -> None:
    page = await ws.client().get("/login")

    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["content-security-policy"] == "frame-ancestors 'none'"
    assert page.headers["x-content-type-options"] == "nosniff"


async def test_cookies_are_secure_outside_localhost(ws: Workspace) -> None:
    page = await ws.client(host="finance.example.go.id").get("/login")

    assert page.status_code == 200
    assert all("Secure" in c and "HttpOnly" in c for c in page.headers.get_list("set-cookie"))


async def test_a_wrong_password_is_refused_and_audited(ws: Workspace) -> None:
    user, _ = await ws.account("auditor_lapas", "lapas-a")
    client = ws.client()

    response = await ws.login(client, user.name, "not-the-password")

    assert response.status_code == 401 and "salah" in response.text
    assert "karya_session" not in client.cookies
    assert (await client.get("/")).status_code == 303
    assert await _actions(ws, user.name) == [audit.LOGIN_FAILED]


async def test_repeated_failures_throttle_even_the_right_password(ws: Workspace) -> None:
    user, password = await ws.account("bendahara", "lapas-a")
    client = ws.client()
    for _ in range(3):
        assert (await ws.login(client, user.name, "wrong-password-123")).status_code == 401

    throttled = await ws.login(client, user.name, password)

    assert throttled.status_code == 429
    assert "karya_session" not in client.cookies
    assert await _actions(ws, user.name) == [audit.LOGIN_FAILED] * 3 + [audit.LOGIN_THROTTLED]


async def test_failures_age_out_of_the_throttle_window(ws: Workspace, admin_db_url: str) -> None:
    """The throttle counts failures within the window only (the rows are aged by the superuser: the log is
    append-only for every role, so the test disables its trigger for that one statement)."""
    user, password = await ws.account("admin")
    client = ws.client()
    for _ in range(3):
        await ws.login(client, user.name, "wrong-password-123")
    from infra.db.engine import make_engine

    admin = make_engine(admin_db_url, pool_size=1)
    try:
        async with admin.begin() as conn:
            await conn.execute(text("SET LOCAL session_replication_role = replica"))
            await conn.execute(
                text("UPDATE finance.audit_log SET at = at - interval '16 minutes' WHERE actor = :name"),
                {"name": user.name},
            )
    finally:
        await admin.dispose()

    assert (await ws.login(client, user.name, password)).status_code == 303


async def test_an_unknown_name_is_refused_and_logged_only_as_a_digest(ws: Workspace) -> None:
    """A name no account has is often a password typed into the wrong field: the log keeps a keyed digest of it,
    under which the throttle still counts."""
    client = ws.client()
    for _ in range(4):
        response = await ws.login(client, "Rahasia-Sandi-2026", "whatever-password")
    digest = audit.unknown_name(ws.app.state.settings.secret_key.get_secret_value(), "Rahasia-Sandi-2026")

    assert response.status_code == 429
    assert await _actions(ws, "Rahasia-Sandi-2026") == []
    assert await _actions(ws, digest) == [audit.LOGIN_FAILED] * 3 + [audit.LOGIN_THROTTLED]
    async with ws.db.read() as uow:
        logged = await uow.conn.scalar(
            text(
                f"SELECT count(*) FROM {uow.table('audit_log')} "
                "WHERE actor LIKE '%Rahasia%' OR subject LIKE '%Rahasia%'"
            )
        )
    assert logged == 0 and digest.startswith("unknown:")


@pytest.mark.parametrize("token", [None, "", "forged-token"])
async def test_a_login_without_the_right_csrf_token_is_forbidden(ws: Workspace, token: str | None) -> None:
    user, password = await ws.account("auditor_pusat")
    client = ws.client()
    await client.get("/login")
    form = {"username": user.name, "password": password} | ({} if token is None else {"csrf_token": token})

    response = await client.post("/login", data=form)

    assert response.status_code == 403
    assert await _actions(ws, user.name) == []


async def test_another_browsers_token_is_forbidden(ws: Workspace) -> None:
    user, password = await ws.account("auditor_pusat")
    theirs = csrf_of((await ws.client().get("/login")).text)
    mine = ws.client()
    await mine.get("/login")

    response = await mine.post("/login", data={"csrf_token": theirs, "username": user.name, "password": password})

    assert response.status_code == 403


async def test_logout_needs_the_sessions_csrf_token_and_ends_the_session(ws: Workspace) -> None:
    user, password = await ws.account("auditor_pusat")
    client = await ws.signed_in(user, password)

    assert (await client.post("/logout", data={})).status_code == 403
    token = csrf_of((await client.get("/")).text)
    assert (await client.post("/logout", data={"csrf_token": token})).status_code == 303

    assert (await client.get("/")).status_code == 303
    assert await _actions(ws, user.name) == [audit.LOGIN, audit.LOGOUT]


async def test_an_idle_session_expires_and_a_used_one_stays(ws: Workspace) -> None:
    idle, idle_password = await ws.account("auditor_pusat")
    busy, busy_password = await ws.account("auditor_pusat")
    idle_client = await ws.signed_in(idle, idle_password)
    busy_client = await ws.signed_in(busy, busy_password)
    async with ws.db.begin() as uow:  # 31 minutes pass for one session; the other was used a minute ago
        await uow.conn.execute(
            text(
                f"UPDATE {uow.table('sessions')} SET last_seen_at = now() - "
                "CASE user_id WHEN :idle THEN interval '31 minutes' ELSE interval '1 minute' END "
                "WHERE user_id IN (:idle, :busy)"
            ),
            {"idle": idle.id, "busy": busy.id},
        )

    expired = await idle_client.get("/?month=2026-11")
    assert expired.status_code == 303 and expired.headers["location"] == "/login?next=%2F%3Fmonth%3D2026-11"
    assert (await busy_client.get("/")).status_code == 200


async def test_the_pages_speak_bahasa_indonesia_until_english_is_chosen(ws: Workspace) -> None:
    user, password = await ws.account("auditor_pusat")
    client = ws.client()
    assert "<h1>Masuk</h1>" in (await client.get("/login")).text

    english = await client.get("/login?lang=en")
    refused = await ws.login(client, user.name, "wrong-password-123")

    assert "<h1>Sign in</h1>" in english.text and client.cookies["karya_lang"] == "en"
    assert "Wrong user name or password." in refused.text
    await ws.login(client, user.name, password)
    assert "Welcome" in (await client.get("/")).text
    assert "Selamat datang" in (await client.get("/?lang=id")).text


async def test_the_login_page_sends_nobody_to_another_site(ws: Workspace) -> None:
    user, password = await ws.account("auditor_pusat")
    client = ws.client()
    token = csrf_of((await client.get("/login?next=//evil.example/")).text)

    response = await client.post(
        "/login", data={"csrf_token": token, "username": user.name, "password": password, "next": "//evil.example/"}
    )

    assert response.headers["location"] == "/"
