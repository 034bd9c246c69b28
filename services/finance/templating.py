"""Server-rendered pages: the Jinja2 environment of ``services/finance/templates`` and :func:`render`.

Every page extends ``base.html`` and is rendered through :func:`render`, which hands the template the signed-in
user (``user``, None on the login page), the language (``lang``: ``id`` or ``en``, :func:`page_lang`; the header
has the switch) and the form token (``csrf_token``: every ``<form method="post">`` puts it
in a hidden field named ``csrf_token``), and sets the pre-login CSRF cookie when the page made one. The
presentation's filters (``rupiah``, ``rupiah_side``, ``in_zone``, ``t``) are registered on the environment.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from services.finance.auth.csrf import csrf_token, issue_nonce, set_cookie
from services.finance.auth.deps import optional_user
from services.finance.presentation import FILTERS
from services.presentation.messages import Lang, lang_of

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
TEMPLATES.env.filters.update(FILTERS)  # rupiah, rupiah_side, in_zone, t (services.finance.presentation)
LANG_COOKIE = "karya_lang"


def page_lang(request: Request) -> Lang:
    """The page's language: ``?lang=en|id`` (remembered by :func:`render` in a cookie), else the cookie, else
    Bahasa Indonesia."""
    return lang_of(request.query_params.get("lang") or request.cookies.get(LANG_COOKIE))


async def render(
    request: Request, name: str, context: dict[str, Any] | None = None, status_code: int = 200
) -> HTMLResponse:
    """The page ``name`` for ``request`` with ``context``, the signed-in user and the CSRF token."""
    lang = page_lang(request)
    page = {"user": await optional_user(request), "csrf_token": csrf_token(request), "lang": lang, **(context or {})}
    response = TEMPLATES.TemplateResponse(request, name, page, status_code=status_code)
    response.headers.setdefault("Cache-Control", "no-store")
    issue_nonce(request, response)
    if "lang" in request.query_params:
        set_cookie(request, response, LANG_COOKIE, lang)
    return response
