"""Which database the demo resets: one of its own, never the local stack's shared ``karya`` database.

Every demo run drops its database and creates it again (a fresh day). ``make demo`` sources ``.local/stack.env``,
whose URLs name ``karya`` — where an operator may have loaded a catalogue or posted a payout — so the demo moves
every URL to ``karya_demo`` instead. A shell that points ``DATABASE_URL`` at another database (the e2e tests do)
keeps it; ``--database NAME`` / ``KARYA_DEMO_DATABASE`` chooses one, except ``karya``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from sqlalchemy.engine import make_url

SHARED_DATABASE = "karya"
DEFAULT_DEMO_DATABASE = "karya_demo"
URL_VARS = ("DATABASE_URL", "KARYA_MIGRATOR_URL", "KARYA_AUDITOR_URL", "KARYA_DB_ADMIN_URL")


class SharedDatabaseRefused(ValueError):
    """The demo was asked to reset the stack's shared database."""


def demo_database(database_url: str, requested: str | None = None) -> str:
    """The database the demo resets: ``requested``, else ``DATABASE_URL``'s unless that is the shared ``karya``."""
    if requested:
        if requested == SHARED_DATABASE:
            raise SharedDatabaseRefused(
                f"the demo drops and recreates its database; {SHARED_DATABASE!r} is the local stack's shared one"
            )
        return requested
    named = make_url(database_url).database or SHARED_DATABASE
    return DEFAULT_DEMO_DATABASE if named == SHARED_DATABASE else named


def demo_urls(environ: Mapping[str, str], database: str) -> dict[str, str]:
    """Every database URL of ``environ`` (service, migrator, auditor, admin) moved to ``database``."""
    return {
        name: make_url(environ[name]).set(database=database).render_as_string(hide_password=False)
        for name in URL_VARS
        if environ.get(name)
    }


def write_demo_env(path: Path, values: Mapping[str, str]) -> Path:
    """``export`` lines for a shell that wants to query the demo's database (mode 0600: they hold passwords)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.writelines(f"export {name}='{value}'\n" for name, value in sorted(values.items()))
    return path
