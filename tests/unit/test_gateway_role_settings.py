"""The gateway connects as its own role: its URL is its own setting, required, never the service role's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from infra.db.roles import GATEWAY, PASSWORD_ENV, ROLES, role_urls
from infra.environment import StackEnvironment, local_passwords
from karya.services import database_url

SERVICE_URL = "postgresql+asyncpg://karya_service:s@127.0.0.1:1/karya"
GATEWAY_URL = "postgresql+asyncpg://karya_gateway:g@127.0.0.1:1/karya"


def test_the_gateway_reads_its_own_url_and_the_others_database_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", SERVICE_URL)
    monkeypatch.setenv("KARYA_GATEWAY_DATABASE_URL", GATEWAY_URL)
    assert database_url("gateway") == GATEWAY_URL
    assert database_url("orders") == database_url("ledger") == SERVICE_URL


@pytest.mark.parametrize("value", [None, "", "  "])
def test_the_gateway_refuses_to_start_without_its_url(monkeypatch: pytest.MonkeyPatch, value: str | None) -> None:
    monkeypatch.setenv("DATABASE_URL", SERVICE_URL)  # never a fallback
    if value is None:
        monkeypatch.delenv("KARYA_GATEWAY_DATABASE_URL", raising=False)
    else:
        monkeypatch.setenv("KARYA_GATEWAY_DATABASE_URL", value)
    with pytest.raises(SystemExit) as refused:
        database_url("gateway")
    assert "KARYA_GATEWAY_DATABASE_URL" in str(refused.value) and GATEWAY in str(refused.value)


def test_the_stack_environment_names_the_gateway_role() -> None:
    passwords = {r: f"pw-{r}" for r in ROLES}
    urls = role_urls("postgresql://postgres:x@127.0.0.1:1/postgres", passwords, "karya")
    env = StackEnvironment("127.0.0.1:2", "postgresql://postgres:x@127.0.0.1:1/karya", urls, passwords).as_env()
    gateway = make_url(env["KARYA_GATEWAY_DATABASE_URL"])
    assert (gateway.username, gateway.password, gateway.database) == (GATEWAY, f"pw-{GATEWAY}", "karya")
    assert make_url(env["DATABASE_URL"]).username == "karya_service"
    assert env[PASSWORD_ENV[GATEWAY]] == f"pw-{GATEWAY}"


def test_a_new_role_gets_a_password_and_the_stored_ones_stay(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Roles are shared by every database of a server: replacing a stored password would lock out every
    session and shell still using the old one."""
    monkeypatch.setenv("KARYA_STATE_DIR", str(tmp_path))
    for role in ROLES:
        monkeypatch.delenv(PASSWORD_ENV[role], raising=False)
    before = {r: f"kept-{r}" for r in ROLES if r != GATEWAY}
    (tmp_path / "secrets.json").write_text(json.dumps(before))
    passwords = local_passwords()
    assert {r: passwords[r] for r in before} == before
    assert len(passwords[GATEWAY]) >= 24
    assert json.loads((tmp_path / "secrets.json").read_text()) == passwords
    assert local_passwords() == passwords  # generated once
    assert (tmp_path / "secrets.json").stat().st_mode & 0o777 == 0o600
