"""Workspace accounts: who a user is, their role and lapas, and the SQL that keeps them (``finance.users``).

A role's lapas scope is a rule of the account, checked here and by the table's CHECK constraint:
``auditor_lapas`` and ``bendahara`` have exactly one lapas, ``auditor_pusat`` and ``admin`` none (every lapas).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, cast, get_args

from sqlalchemy import text

from infra.db.unit_of_work import UnitOfWork

Role = Literal["auditor_pusat", "auditor_lapas", "bendahara", "admin"]
ROLES: tuple[Role, ...] = get_args(Role)
SCOPED_ROLES: frozenset[Role] = frozenset({"auditor_lapas", "bendahara"})
"""Roles that hold exactly one lapas."""


class AccountError(ValueError):
    """An account that cannot exist (a bad role, a lapas missing or not allowed, a name taken)."""


@dataclass(frozen=True, slots=True)
class User:
    """A signed-in (or listed) account: what routes authorise and scope on."""

    id: int
    name: str
    role: Role
    lapas: str | None

    @property
    def lapas_scope(self) -> str | None:
        """The one lapas this user may see; None: every lapas (``auditor_pusat``, ``admin``)."""
        return self.lapas if self.role in SCOPED_ROLES else None


@dataclass(frozen=True, slots=True)
class Account:
    """A row of ``finance.users`` as ``karya users list`` shows it."""

    user: User
    disabled: bool


def check_account(name: str, role: str, lapas: str | None) -> tuple[str, Role, str | None]:
    """``(name, role, lapas)`` normalised, or :class:`AccountError` naming what is wrong."""
    name = name.strip()
    if not name or len(name) > 64 or any(c.isspace() for c in name):
        raise AccountError("a user name is 1 to 64 characters without spaces")
    if role not in ROLES:
        raise AccountError(f"unknown role {role!r}; choose one of {', '.join(ROLES)}")
    lapas = (lapas or "").strip() or None
    if role in SCOPED_ROLES and lapas is None:
        raise AccountError(f"a {role} belongs to exactly one lapas: give --lapas")
    if role not in SCOPED_ROLES and lapas is not None:
        raise AccountError(f"a {role} sees every lapas: do not give --lapas")
    return name, role, lapas


def _user(row: object) -> User:
    r = cast(tuple[int, str, str, str | None], row)
    return User(r[0], r[1], cast(Role, r[2]), r[3])


async def add_user(uow: UnitOfWork, name: str, role: str, lapas: str | None, password_hash: str) -> User:
    """Create an account (:class:`AccountError` if the name is taken or the account cannot exist)."""
    name, checked, lapas = check_account(name, role, lapas)
    row = (
        await uow.conn.execute(
            text(
                f"INSERT INTO {uow.table('users')} (name, role, lapas, password_hash) "
                "VALUES (:name, :role, :lapas, :hash) ON CONFLICT (name) DO NOTHING RETURNING id"
            ),
            {"name": name, "role": checked, "lapas": lapas, "hash": password_hash},
        )
    ).first()
    if row is None:
        raise AccountError(f"a user named {name!r} exists already")
    return User(int(row[0]), name, checked, lapas)


async def find_for_login(uow: UnitOfWork, name: str) -> tuple[User, str] | None:
    """The enabled account named ``name`` and its password hash, or None."""
    row = (
        await uow.conn.execute(
            text(
                f"SELECT id, name, role, lapas, password_hash FROM {uow.table('users')} "
                "WHERE name = :name AND disabled_at IS NULL"
            ),
            {"name": name},
        )
    ).first()
    return None if row is None else (_user(row[:4]), str(row[4]))


async def set_password_hash(uow: UnitOfWork, user_id: int, password_hash: str) -> None:
    """Replace a user's hash (after a login found it hashed with older parameters)."""
    await uow.conn.execute(
        text(f"UPDATE {uow.table('users')} SET password_hash = :hash WHERE id = :id"),
        {"hash": password_hash, "id": user_id},
    )


async def reset_password(uow: UnitOfWork, name: str, password_hash: str) -> bool:
    """Give the enabled account ``name`` a new hash and end its sessions; False when there is no such account."""
    row = (
        await uow.conn.execute(
            text(
                f"UPDATE {uow.table('users')} SET password_hash = :hash "
                "WHERE name = :name AND disabled_at IS NULL RETURNING id"
            ),
            {"name": name, "hash": password_hash},
        )
    ).first()
    if row is not None:
        await _end_sessions(uow, int(row[0]))
    return row is not None


async def _end_sessions(uow: UnitOfWork, user_id: int) -> None:
    await uow.conn.execute(text(f"DELETE FROM {uow.table('sessions')} WHERE user_id = :id"), {"id": user_id})


async def list_accounts(uow: UnitOfWork) -> list[Account]:
    """Every account, by name."""
    rows = await uow.conn.execute(
        text(f"SELECT id, name, role, lapas, disabled_at IS NOT NULL FROM {uow.table('users')} ORDER BY name")
    )
    return [Account(_user(r[:4]), bool(r[4])) for r in rows]


async def disable_user(uow: UnitOfWork, name: str) -> bool:
    """Disable ``name`` and end its sessions; False when there is no such enabled account."""
    row = (
        await uow.conn.execute(
            text(
                f"UPDATE {uow.table('users')} SET disabled_at = now() "
                "WHERE name = :name AND disabled_at IS NULL RETURNING id"
            ),
            {"name": name},
        )
    ).first()
    if row is None:
        return False
    await _end_sessions(uow, int(row[0]))
    return True
