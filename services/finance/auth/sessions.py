"""Server-side sessions (``finance.sessions``): a random token in the cookie, only its SHA-256 in the database.

A session is live while it was used within the idle timeout: :func:`resume` refreshes ``last_seen_at`` in the
same statement that checks it, so idle expiry needs no background task; :func:`start` also deletes expired ones.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import cast

from sqlalchemy import text

from infra.db.unit_of_work import UnitOfWork
from services.finance.auth.users import Role, User


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


async def start(uow: UnitOfWork, user: User, ip: str | None, idle_minutes: int) -> str:
    """A new session of ``user``; returns the token for the cookie (expired sessions are swept first)."""
    await uow.conn.execute(
        text(f"DELETE FROM {uow.table('sessions')} WHERE last_seen_at < now() - make_interval(mins => :idle)"),
        {"idle": idle_minutes},
    )
    token = secrets.token_urlsafe(32)
    await uow.conn.execute(
        text(f"INSERT INTO {uow.table('sessions')} (token_hash, user_id, ip) VALUES (:hash, :user_id, :ip)"),
        {"hash": _digest(token), "user_id": user.id, "ip": ip},
    )
    return token


async def resume(uow: UnitOfWork, token: str, idle_minutes: int) -> User | None:
    """The user of a live session (used within ``idle_minutes``, account enabled), refreshing it; else None."""
    row = (
        await uow.conn.execute(
            text(
                f"UPDATE {uow.table('sessions')} AS s SET last_seen_at = now() FROM {uow.table('users')} AS u "
                "WHERE s.token_hash = :hash AND u.id = s.user_id AND u.disabled_at IS NULL "
                "AND s.last_seen_at >= now() - make_interval(mins => :idle) "
                "RETURNING u.id, u.name, u.role, u.lapas"
            ),
            {"hash": _digest(token), "idle": idle_minutes},
        )
    ).first()
    return None if row is None else User(int(row[0]), str(row[1]), cast(Role, row[2]), row[3])


async def end(uow: UnitOfWork, token: str) -> None:
    """End the session of ``token`` (logout)."""
    await uow.conn.execute(
        text(f"DELETE FROM {uow.table('sessions')} WHERE token_hash = :hash"), {"hash": _digest(token)}
    )
