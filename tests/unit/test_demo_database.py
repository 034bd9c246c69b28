"""The demo resets a database of its own: never the local stack's shared ``karya`` (issue 18, item 7)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
import typer
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from karya.demo_db import SharedDatabaseRefused, demo_database, demo_urls, write_demo_env

STACK = {  # what .local/stack.env gives the shell `make demo` runs in
    "DATABASE_URL": "postgresql+asyncpg://karya_service:s3cret@127.0.0.1:15432/karya",
    "KARYA_MIGRATOR_URL": "postgresql+asyncpg://karya_migrator:m1gr@127.0.0.1:15432/karya",
    "KARYA_AUDITOR_URL": "postgresql+asyncpg://karya_auditor:aud@127.0.0.1:15432/karya",
    "KARYA_DB_ADMIN_URL": "postgresql+asyncpg://postgres:adm@127.0.0.1:15432/karya",
    "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:19092",
}


def test_make_demo_moves_every_url_off_the_shared_database() -> None:
    database = demo_database(STACK["DATABASE_URL"])
    assert database == "karya_demo"
    urls = demo_urls(STACK, database)
    assert set(urls) == {"DATABASE_URL", "KARYA_MIGRATOR_URL", "KARYA_AUDITOR_URL", "KARYA_DB_ADMIN_URL"}
    for name, url in urls.items():
        before, after = make_url(STACK[name]), make_url(url)
        assert after.database == "karya_demo"
        assert (after.username, after.password, after.host, after.port) == (
            before.username,
            before.password,
            before.host,
            before.port,
        )


def test_a_shell_pointing_at_another_database_keeps_it_and_karya_is_refused_by_name() -> None:
    assert demo_database("postgresql+asyncpg://u:p@127.0.0.1:15432/karya_e2e_demo") == "karya_e2e_demo"
    assert demo_database(STACK["DATABASE_URL"], "demo_friday") == "demo_friday"
    with pytest.raises(SharedDatabaseRefused, match="shared"):
        demo_database(STACK["DATABASE_URL"], "karya")


def test_the_demo_command_refuses_to_reset_karya_before_touching_anything(monkeypatch: pytest.MonkeyPatch) -> None:
    from karya.demo import demo

    app = typer.Typer()
    app.command()(demo)
    for name, value in STACK.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("KARYA_DEMO_DATABASE", "karya")
    result = CliRunner().invoke(app, ["--once"])
    assert result.exit_code == 2
    assert "shared" in result.output


def test_the_demo_env_file_is_private(tmp_path: Path) -> None:
    path = write_demo_env(tmp_path / "demo" / "demo.env", {"DATABASE_URL": "postgresql://u:p@h/karya_demo"})
    assert path.read_text() == "export DATABASE_URL='postgresql://u:p@h/karya_demo'\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
