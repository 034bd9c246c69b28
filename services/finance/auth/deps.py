"""The FastAPI dependencies that authenticate and authorise every page and API route."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, HTTPException, Request

from infra.db.unit_of_work import Database
from services.finance.auth import sessions
from services.finance.auth.csrf import SESSION_COOKIE
from services.finance.auth.users import Role, User


def _unauthenticated(request: Request) -> HTTPException:
    if request.url.path.startswith("/api/"):
        return HTTPException(status_code=401, detail="not signed in", headers={"WWW-Authenticate": "Cookie"})
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return HTTPException(status_code=303, headers={"Location": f"/login?next={quote(target, safe='')}"})


async def optional_user(request: Request) -> User | None:
    """The user of the request's live session (refreshing it), or None; looked up once per request."""
    if hasattr(request.state, "user"):
        return request.state.user  # type: ignore[no-any-return]
    user = None
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        db: Database = request.app.state.db
        async with db.begin() as uow:
            user = await sessions.resume(uow, token, request.app.state.settings.session_idle_minutes)
    request.state.user = user
    return user


async def current_user(request: Request) -> User:
    """The signed-in user; without a live session 401 for ``/api/`` and a redirect to the login page otherwise."""
    user = await optional_user(request)
    if user is None:
        raise _unauthenticated(request)
    return user


CurrentUser = Annotated[User, Depends(current_user)]


def require_role(*roles: Role) -> Callable[[Request], Awaitable[User]]:
    """A dependency that gives the signed-in user when their role is one of ``roles``, else 403."""

    async def dependency(request: Request) -> User:
        user = await current_user(request)
        if user.role not in roles:
            raise HTTPException(status_code=403, detail=f"this needs the role {' or '.join(roles)}")
        return user

    return dependency
