"""The append-only audit log of the workspace (``finance.audit_log``): logins, exports, approvals.

Every module records through :func:`record`, in the transaction of the work it records (an export's row commits
with nothing else to roll back; an approval's commits with the approval). The table refuses UPDATE, DELETE and
TRUNCATE (migration ``finance_0001``), so a row once committed stays.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from infra.db.unit_of_work import UnitOfWork
from services.finance.auth.users import User

LOGIN = "login"
LOGIN_FAILED = "login_failed"
LOGIN_THROTTLED = "login_throttled"
LOGOUT = "logout"


@dataclass(frozen=True, slots=True)
class AuditRow:
    """One recorded action, as :func:`recent` reads it back."""

    at: datetime
    actor: str
    user_id: int | None
    role: str | None
    lapas: str | None
    action: str
    subject: str
    ip: str | None


def unknown_name(secret: str, name: str) -> str:
    """How the log names a login attempt under a name no account has: ``unknown:`` and a digest keyed with the
    workspace's secret (the same name gives the same digest, so the throttle still counts its failures; the name
    itself, often a password typed into the wrong field, is not kept and cannot be guessed back offline)."""
    digest = hmac.new(secret.encode(), b"login-name:" + name.encode(), hashlib.sha256).hexdigest()
    return f"unknown:{digest[:16]}"


def _unit(conn: AsyncConnection | UnitOfWork) -> UnitOfWork:
    if isinstance(conn, UnitOfWork):
        return conn
    from services.finance.app import SCHEMA  # the workspace's schema, named once by its app module

    return UnitOfWork(conn, SCHEMA)


async def record(
    conn: AsyncConnection | UnitOfWork, user: User | str, action: str, subject: str, *, ip: str | None = None
) -> None:
    """Append ``user`` did ``action`` to ``subject`` (``"export"``, ``"trial_balance.csv"``; ``"approve"``, a
    proposal id) to the audit log in ``conn``'s transaction. ``user`` is a name when no account is known (a
    failed login); ``ip``: the client's address, when the caller has one."""
    uow = _unit(conn)
    account = user if isinstance(user, User) else None
    await uow.conn.execute(
        text(
            f"INSERT INTO {uow.table('audit_log')} (actor, user_id, role, lapas, action, subject, ip) "
            "VALUES (:actor, :user_id, :role, :lapas, :action, :subject, :ip)"
        ),
        {
            "actor": account.name if account else str(user),
            "user_id": account.id if account else None,
            "role": account.role if account else None,
            "lapas": account.lapas if account else None,
            "action": action,
            "subject": subject,
            "ip": ip,
        },
    )


async def recent(conn: AsyncConnection | UnitOfWork, *, actor: str | None = None, limit: int = 100) -> list[AuditRow]:
    """The latest ``limit`` rows, newest first (of ``actor`` only, if given)."""
    uow = _unit(conn)
    rows = await uow.conn.execute(
        text(
            f"SELECT at, actor, user_id, role, lapas, action, subject, ip FROM {uow.table('audit_log')} "
            f"{'' if actor is None else 'WHERE actor = :actor '}ORDER BY id DESC LIMIT :limit"
        ),
        {"actor": actor, "limit": limit},
    )
    return [AuditRow(*r) for r in rows]


async def failures_within(uow: UnitOfWork, name: str, ip: str | None, minutes: int) -> int:
    """Failed logins of ``name`` from ``ip`` in the last ``minutes`` (what the login throttle counts)."""
    value = await uow.conn.scalar(
        text(
            f"SELECT count(*) FROM {uow.table('audit_log')} WHERE action = :action AND actor = :name "
            "AND ip IS NOT DISTINCT FROM :ip AND at > now() - make_interval(mins => :minutes)"
        ),
        {"action": LOGIN_FAILED, "name": name, "ip": ip, "minutes": minutes},
    )
    return int(value or 0)
