"""Names a test session invents on the shared Kafka broker.

Every topic (and topic prefix) a session makes starts with :data:`SESSION_PREFIX`, ``t<session tag>-``, drawn once
per session (per process). At the end of the session ``pytest_sessionfinish`` in ``tests/conftest.py`` deletes the
topics that start with it — this session's own and no other's, while other sessions keep running on the broker.
"""

from __future__ import annotations

import re
import secrets
import uuid
from typing import Final

SESSION_TAG: Final = secrets.token_hex(4)
"""Eight random hex digits, the same for every name this session (this process) makes."""

SESSION_PREFIX: Final = f"t{SESSION_TAG}-"
"""What every topic of this session starts with."""

SESSION_PREFIX_SHAPE: Final = re.compile(r"t[0-9a-f]{8}-")
"""The shape of :data:`SESSION_PREFIX`: what the end-of-session clean-up checks before it deletes anything."""


def unique_suffix() -> str:
    """Eight fresh random hex digits (for ids and names; not tagged with the session)."""
    return uuid.uuid4().hex[:8]


def topic_prefix(kind: str = "") -> str:
    """A fresh topic prefix of this session, ``t<tag>-<kind><8 hex>.``: topics ``<prefix><base>`` (and their
    dead-letter twins) are deleted when the session ends."""
    return f"{SESSION_PREFIX}{kind}{unique_suffix()}."


def session_topic(name: str) -> str:
    """A fresh topic name of this session, ``t<tag>-<name>.<8 hex>``, deleted when the session ends."""
    return f"{SESSION_PREFIX}{name}.{unique_suffix()}"
