"""Admission of a verified delivery at the HTTP edge (pure): is its content usable, is it a replay?

Run after the signature check and before anything is stored, so the sender learns at once what is wrong:

- **content**: the body is parsed as the normaliser will parse it (:func:`parse_delivery`). A body that fails
  is stored for the audit trail under a key of its own (:func:`rejected_key`, the hash of its bytes), never under
  its dedupe key, and answered 422 naming the problem (field paths and codes, never a value). So a corrected
  resend with the same dedupe identity is accepted. A well-formed status that Karya's tables do not know is not
  the sender's error: it is accepted and dead-lettered by the normaliser, to be replayed once the table knows it.
- **replay**: where the channel sends the push's own time (TikTok Shop and Shopee: top-level ``timestamp``), a
  delivery older than ``window_s`` or more than ``skew_s`` in the future is refused (400) and not stored.
  Tokopedia sends no push time (its ``create_time`` is the order's), so only the dedupe store guards it.

Marketplaces retry a push with its original ``timestamp`` (TikTok Shop up to ~15.5 h after the first attempt),
so the window must be longer than the channel's retry schedule: default 24 h (``KARYA_WEBHOOK_REPLAY_WINDOW_S``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson

from infra.errors import error_text
from services.gateway.normalise.notices import Notice, parse_delivery
from services.gateway.values import parse_time, rejection_context

__all__ = ["Admission", "admit", "rejected_key", "sent_time"]

#: Where each channel puts the time the push was sent (absent: the channel sends none).
_SENT_AT = {"tiktok_shop": "timestamp", "shopee": "timestamp"}


@dataclass(frozen=True, slots=True)
class Admission:
    """The verdict on one verified delivery: ``notice`` when usable, else ``problem`` (value-free) and whether
    it is a replay (refused, not stored) or bad content (stored under :func:`rejected_key`, answered 422)."""

    notice: Notice | None
    problem: str = ""
    replay: bool = False


def rejected_key(channel: str, webhook_type: str, body: bytes) -> str:
    """The dedupe key a refused delivery is stored under: the same bytes once, and never a valid delivery's."""
    return f"{channel}:{webhook_type}:rejected:{hashlib.sha256(body).hexdigest()}"


def sent_time(channel: str, body: bytes) -> datetime | None:
    """The push time the channel put in ``body``, or None when it sends none (or the body has none)."""
    field = _SENT_AT.get(channel)
    if field is None:
        return None
    try:
        doc: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(doc, dict) or doc.get(field) is None:
        return None
    return parse_time(doc[field], field)


def admit(
    channel: str,
    webhook_type: str,
    body: bytes,
    now: datetime,
    *,
    window_s: float,
    skew_s: float,
) -> Admission:
    """Parse and classify ``body`` as of ``now``; refuse a push whose own time is outside the window."""
    try:
        notice = parse_delivery(channel, webhook_type, body, received_at=now)
        sent = sent_time(channel, body)
    except Exception as exc:
        problem = rejection_context(exc)
        if problem is None:
            raise
        return Admission(None, error_text(exc, context=problem))
    if sent is not None:
        if sent < now - timedelta(seconds=window_s):
            return Admission(None, f"replay: pushed more than {window_s:g} s ago", replay=True)
        if sent > now + timedelta(seconds=skew_s):
            return Admission(None, f"replay: pushed more than {skew_s:g} s in the future", replay=True)
    return Admission(notice)
