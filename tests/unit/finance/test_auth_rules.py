"""The finance workspace's account rules, password hashing, redirects after login and refusal to start, without a
database."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from services.finance.auth.passwords import generate_password, hash_password, needs_rehash, verify_password
from services.finance.auth.users import ROLES, AccountError, User, check_account
from services.finance.auth.web import _safe_next
from services.finance.settings import FinanceSettings, read_settings


@pytest.mark.parametrize("role", ["auditor_lapas", "bendahara"])
def test_a_scoped_role_has_exactly_one_lapas(role: str) -> None:
    assert check_account(" siti ", role, " lapas-a ") == ("siti", role, "lapas-a")
    with pytest.raises(AccountError, match="--lapas"):
        check_account("siti", role, None)
    assert User(1, "siti", role, "lapas-a").lapas_scope == "lapas-a"  # type: ignore[arg-type]


@pytest.mark.parametrize("role", ["auditor_pusat", "admin"])
def test_a_central_role_sees_every_lapas_and_takes_none(role: str) -> None:
    assert check_account("budi", role, "") == ("budi", role, None)
    with pytest.raises(AccountError, match="every lapas"):
        check_account("budi", role, "lapas-a")
    assert User(1, "budi", role, None).lapas_scope is None  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["", "two words", "x" * 65])
def test_a_bad_name_or_role_is_refused(name: str) -> None:
    with pytest.raises(AccountError):
        check_account(name, "admin", None)
    with pytest.raises(AccountError, match="unknown role"):
        check_account("siti", "superuser", None)
    assert set(ROLES) == {"auditor_pusat", "auditor_lapas", "bendahara", "admin"}


def test_passwords_are_hashed_with_argon2id_and_verified() -> None:
    password = generate_password()
    stored = hash_password(password)

    assert stored.startswith("$argon2id$") and password not in stored
    assert verify_password(stored, password)
    assert not verify_password(stored, password + "x")
    assert not verify_password(None, password)  # no such user: a dummy hash is checked, then refused
    assert not verify_password("not-a-hash", password)
    assert not needs_rehash(stored)
    with pytest.raises(ValueError, match="12 characters"):
        hash_password("short")


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/ledger?x=1", "/ledger?x=1"),
        ("//evil.example", "/"),
        ("/\\evil.example", "/"),
        ("https://e.x/", "/"),
        (None, "/"),
    ],
)
def test_after_login_only_local_paths_are_followed(target: str | None, expected: str) -> None:
    assert _safe_next(target) == expected


def test_the_workspace_refuses_to_start_without_its_url_and_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KARYA_FINANCE_DATABASE_URL", raising=False)
    monkeypatch.setenv("KARYA_FINANCE_SECRET_KEY", "too-short")

    with pytest.raises(SystemExit, match="KARYA_FINANCE_DATABASE_URL, KARYA_FINANCE_SECRET_KEY"):
        read_settings()


def test_the_workspace_reads_its_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KARYA_FINANCE_DATABASE_URL", "postgresql://karya_finance@db/karya")
    monkeypatch.setenv("KARYA_FINANCE_SECRET_KEY", "k" * 32)
    monkeypatch.setenv("KARYA_FINANCE_SESSION_IDLE_MINUTES", "10")

    settings = read_settings()

    assert settings.secret_key == SecretStr("k" * 32) and settings.session_idle_minutes == 10
    assert "karya_finance@db" not in repr(settings)  # the URL (with its password) is a secret too
    assert isinstance(settings, FinanceSettings)


def test_karya_serve_finance_refuses_before_it_connects(monkeypatch: pytest.MonkeyPatch) -> None:
    """The composition root reads the workspace's settings before it creates an engine."""
    from karya.services import build_http_app

    monkeypatch.setenv("KARYA_FINANCE_DATABASE_URL", "postgresql+asyncpg://karya_finance@127.0.0.1:1/karya")
    monkeypatch.delenv("KARYA_FINANCE_SECRET_KEY", raising=False)

    with pytest.raises(SystemExit, match="KARYA_FINANCE_SECRET_KEY"):
        build_http_app("finance")


def test_karya_serve_finance_builds_the_workspace_with_the_topologys_schemas(monkeypatch: pytest.MonkeyPatch) -> None:
    from karya.services import build_http_app

    monkeypatch.setenv("KARYA_FINANCE_DATABASE_URL", "postgresql+asyncpg://karya_finance@127.0.0.1:1/karya")
    monkeypatch.setenv("KARYA_FINANCE_SECRET_KEY", "k" * 32)

    app = build_http_app("finance")  # the engine connects lazily: nothing connects here

    assert app.state.db.schema == "finance"
    assert app.state.schemas == {"orders": "orders", "ledger": "ledger", "gateway": "gateway"}
    assert app.state.settings.session_idle_minutes == 30
