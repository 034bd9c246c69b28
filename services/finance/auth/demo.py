"""Demo accounts of the finance workspace: one per role, with generated passwords written to a file of the
caller's (``make demo`` puts it under ``.local/``), readable by its owner only."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import text

from infra.db.unit_of_work import Database
from services.finance.auth.passwords import generate_password, hash_password
from services.finance.auth.users import ROLES, SCOPED_ROLES, check_account


async def create_demo_users(db: Database, credentials: Path, lapas: str) -> dict[str, str]:
    """Make (or reset the password of) ``demo-<role>`` for every role — the scoped ones in ``lapas`` — and write
    ``name role lapas password`` lines to ``credentials`` (mode 0600); returns the passwords by name."""
    passwords: dict[str, str] = {}
    rows = []
    for role in ROLES:
        name, checked, scope = check_account(
            f"demo-{role.replace('_', '-')}", role, lapas if role in SCOPED_ROLES else None
        )
        passwords[name] = generate_password()
        rows.append({"name": name, "role": checked, "lapas": scope, "hash": hash_password(passwords[name])})
    async with db.begin() as uow:
        await uow.conn.execute(
            text(
                f"INSERT INTO {uow.table('users')} (name, role, lapas, password_hash) "
                "VALUES (:name, :role, :lapas, :hash) ON CONFLICT (name) DO UPDATE SET role = excluded.role, "
                "lapas = excluded.lapas, password_hash = excluded.password_hash, disabled_at = NULL"
            ),
            rows,
        )
    _write_private(
        credentials, [f"{r['name']}\t{r['role']}\t{r['lapas'] or '-'}\t{passwords[str(r['name'])]}" for r in rows]
    )
    return passwords


def _write_private(path: Path, lines: Sequence[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write("# name\trole\tlapas\tpassword (finance workspace demo accounts)\n")
        out.writelines(line + "\n" for line in lines)
    path.chmod(0o600)
