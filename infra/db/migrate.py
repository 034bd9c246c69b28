"""Run Alembic programmatically over every service's migration folder (one branch per service)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config

ROOT = Path(__file__).resolve().parents[2]
VERSION_LOCATIONS = [
    ROOT / "services" / "orders" / "migrations",
    ROOT / "services" / "ledger" / "migrations",
    ROOT / "services" / "gateway" / "migrations",
    ROOT / "services" / "finance" / "migrations",
]


def alembic_config(url: str) -> Config:
    """An Alembic config pointing at the shared env and the services' version folders."""
    cfg = Config()
    cfg.set_main_option("script_location", str(ROOT / "infra" / "db" / "migrations"))
    cfg.set_main_option("version_locations", " ".join(str(p) for p in VERSION_LOCATIONS if p.is_dir()))
    cfg.set_main_option("path_separator", "space")
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade_to_head(url: str) -> None:
    """Migrate the database at ``url`` (the migrator role) to every branch's head."""
    command.upgrade(alembic_config(url), "heads")


async def upgrade_to_head_async(url: str) -> None:
    """:func:`upgrade_to_head` from inside a running event loop (Alembic's env runs its own loop)."""
    await asyncio.to_thread(upgrade_to_head, url)
