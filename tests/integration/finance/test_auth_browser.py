"""Signing in to the finance workspace in a real browser: Playwright drives Debian's ``chromium`` against the app
served by uvicorn on loopback, on the session database as ``karya_finance``. Each role signs in with the form,
lands on the home page (whichever page the workspace has there) with no console error, its header naming who
is signed in, and signs out with the header's button; a screenshot of each page is saved under the test's tmp
path."""

from __future__ import annotations

import asyncio
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import sync_playwright

from infra.db.engine import make_engine
from infra.db.roles import RoleUrls
from infra.db.unit_of_work import Database
from services.finance.app import SCHEMA, create_app
from services.finance.auth.passwords import generate_password, hash_password
from services.finance.auth.users import add_user
from tests.integration.finance_auth_support import finance_settings

ACCOUNTS = (("auditor_pusat", None), ("auditor_lapas", "lapas-a"), ("bendahara", "lapas-a"), ("admin", None))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _accounts(url: str, run: str) -> list[tuple[str, str, str]]:
    engine = make_engine(url, pool_size=1)
    made = []
    try:
        async with Database(engine, SCHEMA).begin() as uow:
            for role, lapas in ACCOUNTS:
                password = generate_password()
                user = await add_user(uow, f"web-{role}-{run}", role, lapas, hash_password(password))
                made.append((role, user.name, password))
    finally:
        await engine.dispose()
    return made


@pytest.fixture
def served(database: RoleUrls) -> Iterator[str]:
    """The workspace on loopback (uvicorn in a thread of its own, with its own event loop and engine)."""
    port = _free_port()
    engine = make_engine(database.finance, pool_size=2)  # connects lazily, in the server's loop
    server = uvicorn.Server(
        uvicorn.Config(create_app(engine, finance_settings()), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the workspace did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def test_every_role_signs_in_and_out_in_a_browser(served: str, database: RoleUrls, tmp_path: Path) -> None:
    executable = shutil.which("chromium")
    assert executable, "Debian's chromium is not installed: run `make browser` (a prerequisite of `make test`)"
    accounts = asyncio.run(_accounts(database.finance, str(_free_port())))
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            for role, name, password in accounts:
                page = browser.new_context().new_page()
                page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
                page.on("pageerror", lambda e: errors.append(str(e)))
                page.goto(f"{served}/")  # not signed in: sent to the login page
                assert page.url == f"{served}/login?next=%2F"
                page.screenshot(path=str(tmp_path / f"login-{role}.png"), full_page=True)
                page.fill("input[name=username]", name)
                page.fill("input[name=password]", password)
                page.click("button[type=submit]")
                page.wait_for_url(f"{served}/")
                who = page.locator("header .who").inner_text()  # every page's header names who is signed in
                assert name in who and role in who
                page.screenshot(path=str(tmp_path / f"home-{role}.png"), full_page=True)
                page.click("header button[type=submit]")  # Keluar: the logout form, with its CSRF token
                page.wait_for_url(f"{served}/login")
                page.goto(f"{served}/")
                assert page.url.startswith(f"{served}/login")
                page.context.close()
        finally:
            browser.close()
    assert errors == []
    assert len(list(tmp_path.glob("*.png"))) == 2 * len(ACCOUNTS)
