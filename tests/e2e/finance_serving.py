"""The finance workspace served for a browser: uvicorn on a free loopback port in a thread of the test; an account
made for the test, chromium, a browser page signed in as that account that collects the console's errors, and the
folder the browser tests keep their screenshots and downloads in (:func:`artifacts`)."""

from __future__ import annotations

import shutil
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI
from playwright.sync_api import sync_playwright

from infra.db.engine import make_engine
from infra.db.unit_of_work import Database
from services.finance.app import SCHEMA
from services.finance.auth.passwords import generate_password, hash_password
from services.finance.auth.users import add_user

#: Screenshots and downloads of the browser tests, kept after the run (``.local/`` is not committed).
ARTIFACTS = Path(__file__).resolve().parents[2] / ".local" / "test-artifacts" / "finance"


def artifacts(name: str) -> Path:
    """The folder of one browser test's artifacts (``ARTIFACTS/<name>``), emptied of a previous run's files."""
    folder = ARTIFACTS / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


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


class Browser:
    """A page of ``context`` signed in as ``name`` (:func:`signed_in_page`) that screenshots the pages it visits
    into ``shots`` as ``<who>-<shot>.png``; its console errors and uncaught exceptions are in ``errors``."""

    def __init__(self, context: Any, base: str, login: tuple[str, str], shots: Path, who: str) -> None:
        self.base, self.shots, self.who = base, shots, who
        self.errors: list[str] = []
        self.page = signed_in_page(context, base, *login, self.errors)
        assert self.page.url == f"{base}/", self.page.content()

    def visit(self, path: str, shot: str, status: int = 200) -> Any:
        """Open ``path`` (``status`` expected) and screenshot it."""
        response = self.page.goto(f"{self.base}{path}")
        assert response is not None and response.status == status, (path, response and response.text())
        return self.shoot(shot)

    def shoot(self, shot: str) -> Any:
        """Screenshot the current page, whole."""
        self.page.screenshot(path=str(self.shots / f"{self.who}-{shot}.png"), full_page=True)
        return self.page

    def text(self, selector: str) -> str:
        """The text of one element of the current page."""
        return str(self.page.locator(selector).inner_text()).strip()

    def api(self, path: str) -> Any:
        """A read API answer with this browser's session."""
        response = self.page.request.get(f"{self.base}{path}")
        assert response.status == 200, (path, response.text())
        return response.json()

    def status(self, path: str) -> int:
        """The status of ``path`` with this browser's session (no navigation, so no console noise)."""
        return int(self.page.request.get(f"{self.base}{path}").status)

    def download(self, selector: str) -> Path:
        """Click the link ``selector``, save what the browser downloads into ``shots`` under its suggested name."""
        with self.page.expect_download() as caught:
            self.page.click(selector)
        target = self.shots / f"{self.who}-{caught.value.suggested_filename}"
        caught.value.save_as(target)
        return target
