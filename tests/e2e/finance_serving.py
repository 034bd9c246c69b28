"""The finance workspace served for a browser: uvicorn on a free loopback port in a thread of the test; an account
made for the test, chromium, and a browser page signed in as that account that collects the console's errors."""

from __future__ import annotations

import shutil
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI
from playwright.sync_api import sync_playwright

from infra.db.engine import make_engine
from infra.db.unit_of_work import Database
from services.finance.app import SCHEMA
from services.finance.auth.passwords import generate_password, hash_password
from services.finance.auth.users import add_user


@contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """Serve ``app`` (its lifespan on) on a free loopback port while the block runs; yields its base URL. The
    server is stopped, and its lifespan's shutdown run, when the block ends."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        while not server.started:
            thread.join(0.05)
            assert thread.is_alive(), "uvicorn stopped before it started"
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()
    assert not thread.is_alive()


@contextmanager
def chromium() -> Iterator[Any]:
    """Debian's chromium through Playwright, closed when the block ends."""
    executable = shutil.which("chromium")
    assert executable, "Debian's chromium is not installed: run `make browser` (a prerequisite of `make test`)"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


async def new_account(url: str, role: str, lapas: str | None) -> tuple[str, str]:
    """A new account of ``role`` (``url``: the finance role's database URL): its name and password."""
    engine = make_engine(url, pool_size=1)
    password = generate_password()
    try:
        async with Database(engine, SCHEMA).begin() as uow:
            user = await add_user(uow, f"web-{role}-{password[:6]}", role, lapas, hash_password(password))
    finally:
        await engine.dispose()
    return user.name, password


def signed_in_page(context: Any, base_url: str, name: str, password: str, errors: list[str]) -> Any:
    """A new page of the browser ``context`` signed in through the login form; its console errors and uncaught
    exceptions go to ``errors``."""
    page = context.new_page()
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{base_url}/login")
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", password)
    with page.expect_navigation():
        page.click("button[type=submit]")
    return page
