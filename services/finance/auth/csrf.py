"""CSRF protection of every form, and the workspace's cookies.

The token of a form is an HMAC (the workspace's secret key) of the browser's session token, or — before login —
of a random nonce in its own cookie: a page from another site cannot read it, and a token is worth nothing with
another browser's cookies. :func:`csrf_protect` refuses (403) a state-changing request without the right token.
Cookies are HttpOnly and SameSite=Lax, and Secure unless the request is to localhost.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from urllib.parse import parse_qs

from fastapi import HTTPException, Request, Response

SESSION_COOKIE = "karya_session"
NONCE_COOKIE = "karya_csrf"
FIELD = "csrf_token"
HEADER = "X-CSRF-Token"
_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


def secure_cookies(request: Request) -> bool:
    """Whether cookies set for ``request`` are marked Secure (everywhere but localhost)."""
    return request.url.hostname not in _LOCAL_HOSTS


def set_cookie(request: Request, response: Response, name: str, value: str) -> None:
    """Set a session-lifetime cookie: HttpOnly, SameSite=Lax, Secure outside localhost."""
    response.set_cookie(name, value, httponly=True, samesite="lax", secure=secure_cookies(request), path="/")


def _secret(request: Request) -> bytes:
    return request.app.state.settings.secret_key.get_secret_value().encode()  # type: ignore[no-any-return]


def _token_of(request: Request, bound: str) -> str:
    return hmac.new(_secret(request), bound.encode(), hashlib.sha256).hexdigest()


def csrf_token(request: Request) -> str:
    """The token forms of this page carry; before login, a new nonce is made for the page's response to set
    (:func:`issue_nonce`)."""
    session = request.cookies.get(SESSION_COOKIE)
    if session:
        return _token_of(request, "s:" + session)
    nonce = request.cookies.get(NONCE_COOKIE) or getattr(request.state, "csrf_nonce", None)
    if nonce is None:
        nonce = secrets.token_urlsafe(24)
        request.state.csrf_nonce = nonce
    return _token_of(request, "n:" + nonce)


def issue_nonce(request: Request, response: Response) -> None:
    """Set the nonce cookie :func:`csrf_token` made for this request, if it made one."""
    nonce = getattr(request.state, "csrf_nonce", None)
    if nonce is not None:
        set_cookie(request, response, NONCE_COOKIE, nonce)


def _expected(request: Request) -> list[str]:
    bound = []
    if session := request.cookies.get(SESSION_COOKIE):
        bound.append("s:" + session)
    if nonce := request.cookies.get(NONCE_COOKIE):
        bound.append("n:" + nonce)
    return [_token_of(request, b) for b in bound]


async def form_fields(request: Request) -> dict[str, str]:
    """The fields of a form body (``application/x-www-form-urlencoded``; the first value of each)."""
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return {}
    parsed = parse_qs((await request.body()).decode("utf-8", "replace"), keep_blank_values=True)
    return {key: values[0] for key, values in parsed.items()}


async def csrf_protect(request: Request) -> None:
    """Refuse (403) a request whose ``csrf_token`` form field or ``X-CSRF-Token`` header is missing or is not the
    token of this browser's session (or pre-login nonce)."""
    given = request.headers.get(HEADER) or (await form_fields(request)).get(FIELD, "")
    if not given or not any(hmac.compare_digest(given, want) for want in _expected(request)):
        raise HTTPException(status_code=403, detail="missing or wrong CSRF token: reload the page and try again")
