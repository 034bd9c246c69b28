"""The finance workspace as its tests drive it: an app on the session database, accounts and signed-in clients.

Tests of the read API and the pages use it too: ``async with workspace(database.finance) as ws`` gives the app
and its database, ``await ws.account("bendahara", "lapas-a")`` a user with a fresh password, and
``await ws.signed_in(user, password)`` an HTTP client (httpx over ASGI, host ``localhost``) with its session.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import APIRouter, FastAPI
from pydantic import SecretStr

from infra.db.engine import make_engine
from infra.db.unit_of_work import Database
from services.finance.app import create_app
from services.finance.auth.passwords import generate_password, hash_password
from services.finance.auth.users import User, add_user
from services.finance.settings import FinanceSettings

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def finance_settings(**overrides: Any) -> FinanceSettings:
    """The workspace's settings for a test (a fixed test secret; ``overrides``: the rules under test; the URL is
    not used: :func:`workspace` hands the app an engine of its own)."""
    fixed = {"secret_key": SecretStr("test-secret-" + "x" * 32), "database_url": SecretStr("postgresql://unused")}
    return FinanceSettings(**(fixed | overrides))


def csrf_of(html: str) -> str:
    """The CSRF token of the first form of a page."""
    found = _CSRF.search(html)
    assert found is not None, "the page has no form with a CSRF token"
    return found.group(1)


@dataclass
class Workspace:
    """The app on the test database, and what it made for the test."""

    app: FastAPI
    db: Database
    clients: list[httpx.AsyncClient] = field(default_factory=list)

    async def account(self, role: str, lapas: str | None = None) -> tuple[User, str]:
        """A new account of ``role`` (a unique name) and its password."""
        password = generate_password()
        async with self.db.begin() as uow:
            user = await add_user(uow, f"{role}-{uuid.uuid4().hex[:8]}", role, lapas, hash_password(password))
        return user, password

    def client(self, host: str = "localhost") -> httpx.AsyncClient:
        """A client of the app at ``http://host`` (closed with the workspace)."""
        made = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url=f"http://{host}")
        self.clients.append(made)
        return made

    async def login(self, client: httpx.AsyncClient, name: str, password: str) -> httpx.Response:
        """Submit the login form as a browser would (the form's CSRF token included)."""
        token = csrf_of((await client.get("/login")).text)
        form = {"csrf_token": token, "username": name, "password": password, "next": "/"}
        return await client.post("/login", data=form)

    async def signed_in(self, user: User, password: str) -> httpx.AsyncClient:
        """A client with a live session of ``user``."""
        client = self.client()
        response = await self.login(client, user.name, password)
        assert response.status_code == 303, response.text
        return client


@asynccontextmanager
async def workspace(
    url: str, settings: FinanceSettings | None = None, routers: Sequence[APIRouter] = ()
) -> AsyncIterator[Workspace]:
    """The workspace app connected with ``url`` (``database.finance``: the role ``karya serve finance`` uses;
    ``routers``: extra routes a test adds)."""
    engine = make_engine(url, pool_size=2)
    app = create_app(engine, settings or finance_settings())
    for router in routers:
        app.include_router(router)
    ws = Workspace(app, app.state.db)
    try:
        yield ws
    finally:
        for client in ws.clients:
            await client.aclose()
        await engine.dispose()
