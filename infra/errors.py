"""Loggable facts about an exception, without the values it may quote.

An exception's text can carry personal data: pydantic quotes the offending input (a buyer's name, address or
phone from a marketplace payload), PostgreSQL quotes the value it refused (``invalid input syntax for type uuid:
"..."``, ``Key (x)=(...)``), a marketplace API error quotes its answer. Logs get :func:`describe_error` instead of
``str(exc)``, ``repr(exc)`` or a traceback; the full text is kept only where access is controlled (the
``dead_letters`` table and the DLQ topic).

What is *stored* or *sent* about an error (a dead letter's ``error`` column, the ``karya-dlq-error`` header, a
rejection reason) is :func:`error_text`: the same facts as one line of text, so nothing anywhere carries input
values (UU PDP: buyer names, phones and addresses stay in the raw delivery, which is redacted and purged).

An exception class may declare ``loggable_message = True`` when every message it is raised with names only
codes, keys, states and amounts (order keys, account codes, pseudonymous inmate ids: never a buyer's name,
address or phone, nor a registry field); its message is then logged as ``detail``.
"""

from __future__ import annotations

import re
import types
from pathlib import Path

from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError

__all__ = ["describe_error", "error_text", "quoted_code", "sqlstate_of"]

_ROOT = Path(__file__).parent.parent
_MAX_FIELDS = 10
_MAX_CAUSES = 4
_MAX_FRAMES = 3
_DETAIL_CHARS = 300
# A location part that looks like a schema field name is kept; anything else (a free-form mapping's key, which
# is input) is replaced by "*".
_FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,63}")
# A marketplace status code or event type as sent (``400``, ``READY_TO_SHIP``, ``paid``, ``karya.x.y.v1``) may be
# quoted in a message; anything else in that place (a name, a phone number) is described by its length only.
_CODE = re.compile(r"[0-9]{1,4}|[A-Z][A-Z0-9_]{0,39}|[a-z][a-z0-9_.]{0,79}")


def sqlstate_of(exc: BaseException) -> str | None:
    """The SQLSTATE of a database error (SQLAlchemy's wrapper over asyncpg), else None."""
    if not isinstance(exc, DBAPIError):
        return None
    orig = exc.orig
    state = getattr(orig, "sqlstate", None) or getattr(getattr(orig, "__cause__", None), "sqlstate", None)
    return state if isinstance(state, str) else None


def quoted_code(value: object) -> str:
    """``value`` quoted when it looks like a code, else a value-free description of it (its length)."""
    text = str(value)
    if _CODE.fullmatch(text):
        return repr(text)
    return f"(not a code: {len(text)} characters)"


def describe_error(exc: BaseException) -> dict[str, object]:
    """Value-free facts about ``exc``, to pass to a log call as keyword arguments.

    ``error``: the class name; ``sqlstate``: for database errors; ``model`` and ``fields`` (location and error
    type of each failed field, never the input or pydantic's message): for pydantic errors; ``causes``: the
    class names along the explicit ``__cause__`` chain; ``at``: the innermost project frames as ``path:line``
    (library frames and the message are left out); ``detail``: the message, only for classes that declare
    ``loggable_message = True``.
    """
    facts: dict[str, object] = {"error": type(exc).__name__}
    state = sqlstate_of(exc)
    if state is not None:
        facts["sqlstate"] = state
    if isinstance(exc, ValidationError):
        facts["model"] = exc.title
        facts["fields"] = [
            {"loc": ".".join(_loc_part(p) for p in e["loc"]), "type": e["type"]}
            for e in exc.errors(include_url=False, include_context=False, include_input=False)[:_MAX_FIELDS]
        ]
    causes: list[str] = []
    cause = exc.__cause__
    while cause is not None and len(causes) < _MAX_CAUSES:
        causes.append(type(cause).__name__)
        cause = cause.__cause__
    if causes:
        facts["causes"] = causes
    frames = _project_frames(exc.__traceback__)
    if frames:
        facts["at"] = frames
    if getattr(exc, "loggable_message", False) is True:
        facts["detail"] = str(exc)[:_DETAIL_CHARS]
    return facts


def _loc_part(part: object) -> str:
    if isinstance(part, int):
        return str(part)
    return part if isinstance(part, str) and _FIELD_NAME.fullmatch(part) else "*"


def _project_frames(tb: types.TracebackType | None) -> list[str]:
    """``path:line`` of the innermost frames in this project's code (not in installed libraries)."""
    found: list[str] = []
    while tb is not None:
        path = Path(tb.tb_frame.f_code.co_filename)
        if path.is_relative_to(_ROOT) and "site-packages" not in path.parts:
            found.append(f"{path.relative_to(_ROOT)}:{tb.tb_lineno}")
        tb = tb.tb_next
    return found[-_MAX_FRAMES:]


def error_text(exc: BaseException, *, context: str | None = None) -> str:
    """One value-free line about ``exc`` to store or send (dead letters, DLQ headers, rejection reasons).

    Built from :func:`describe_error`: the class, SQLSTATE, pydantic field paths and error types, and the
    message only for classes that declare ``loggable_message = True``. ``context`` (a code or key chosen by the
    caller, never input) is put first, e.g. ``error_text(exc, context="unparseable settlement")``.
    """
    facts = describe_error(exc)
    head = str(facts["error"])
    if "sqlstate" in facts:
        head += f" [sqlstate {facts['sqlstate']}]"
    if context:
        head = f"{context}: {head}"
    parts: list[str] = [head]
    if "detail" in facts:
        parts.append(str(facts["detail"]))
    fields = facts.get("fields")
    if isinstance(fields, list) and fields:
        parts.append("fields " + ", ".join(f"{f['loc']} ({f['type']})" for f in fields))
    causes = facts.get("causes")
    if isinstance(causes, list) and causes:
        parts.append("caused by " + " <- ".join(causes))
    if "detail" in facts:
        parts[0] += f": {parts.pop(1)}"
    return "; ".join(parts)
