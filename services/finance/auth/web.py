"""The login and logout pages: the only routes that create and end sessions.

``POST /login`` checks the CSRF token, the throttle (failed logins of this name from this address within
``KARYA_FINANCE_LOGIN_WINDOW_MINUTES``: at ``KARYA_FINANCE_LOGIN_MAX_FAILURES`` even the right password is
refused with 429 until they age out), then the password (argon2id); every outcome is a row of the audit log. A
name no account has is logged as a keyed digest (:func:`audit.unknown_name`), never as typed: it is often a
password typed into the wrong field.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from infra.db.unit_of_work import Database
from services.finance.auth import audit, sessions, users
from services.finance.auth.csrf import NONCE_COOKIE, SESSION_COOKIE, csrf_protect, form_fields, set_cookie
from services.finance.auth.deps import CurrentUser
from services.finance.auth.passwords import hash_password, needs_rehash, verify_password
from services.finance.settings import FinanceSettings
from services.finance.templating import page_lang, render

router = APIRouter(tags=["session"])
REFUSALS = {
    401: {"id": "Nama pengguna atau kata sandi salah.", "en": "Wrong user name or password."},
    429: {"id": "Terlalu banyak percobaan gagal. Coba lagi nanti.", "en": "Too many failed attempts. Try again later."},
}


def _safe_next(target: str | None) -> str:
    """A local path to go to after login (never another site: ``//host`` and ``/\\host`` are refused)."""
    if target and target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return "/"


@router.get("/login", response_class=HTMLResponse, include_in_schema=False)
async def login_page(request: Request, next: str = "/") -> Response:
    """The login form."""
    return await render(request, "login.html", {"next": _safe_next(next)})


@router.post("/login", dependencies=[Depends(csrf_protect)], include_in_schema=False)
async def login(request: Request) -> Response:
    """Sign in: a session cookie and a redirect on success, the form again with 401 (or 429 when throttled)."""
    form = await form_fields(request)
    name, password, target = form.get("username", "").strip(), form.get("password", ""), _safe_next(form.get("next"))
    ip = request.client.host if request.client else None
    db: Database = request.app.state.db
    settings: FinanceSettings = request.app.state.settings
    async with db.begin() as uow:
        found = await users.find_for_login(uow, name)
        # What the log names: the account, or a keyed digest of a name no account has (often a mistyped password).
        actor = name if found else audit.unknown_name(settings.secret_key.get_secret_value(), name)
        if await audit.failures_within(uow, actor, ip, settings.login_window_minutes) >= settings.login_max_failures:
            await audit.record(uow, actor, audit.LOGIN_THROTTLED, "web", ip=ip)
            throttled = True
        else:
            throttled = False
            if verify_password(found[1] if found else None, password) and found is not None:
                user, stored = found
                if needs_rehash(stored):
                    await users.set_password_hash(uow, user.id, hash_password(password))
                if previous := request.cookies.get(SESSION_COOKIE):
                    await sessions.end(uow, previous)  # signing in again replaces this browser's session
                token = await sessions.start(uow, user, ip, settings.session_idle_minutes)
                await audit.record(uow, user, audit.LOGIN, "web", ip=ip)
                response = RedirectResponse(target, status_code=303)
                set_cookie(request, response, SESSION_COOKIE, token)
                response.delete_cookie(NONCE_COOKIE, path="/")
                return response
            await audit.record(uow, actor, audit.LOGIN_FAILED, "web", ip=ip)
    status = 429 if throttled else 401
    message = REFUSALS[status][page_lang(request)]
    return await render(request, "login.html", {"next": target, "error": message, "username": name}, status)


@router.post("/logout", dependencies=[Depends(csrf_protect)], include_in_schema=False)
async def logout(request: Request, user: CurrentUser) -> Response:
    """End the session and go back to the login page."""
    db: Database = request.app.state.db
    async with db.begin() as uow:
        await sessions.end(uow, request.cookies.get(SESSION_COOKIE, ""))
        await audit.record(uow, user, audit.LOGOUT, "web", ip=request.client.host if request.client else None)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
