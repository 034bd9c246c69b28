"""Settings honour both the environment and explicit values (an ignored keyword once sent a test's consumer to
another broker)."""

from __future__ import annotations

import pytest

from infra.settings import DatabaseSettings, KafkaSettings


def test_explicit_bootstrap_servers_win_over_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    assert KafkaSettings(bootstrap_servers="127.0.0.1:1").bootstrap_servers == "127.0.0.1:1"


def test_environment_names_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:2")
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:p@127.0.0.1:3/x")
    assert KafkaSettings().bootstrap_servers == "127.0.0.1:2"
    assert DatabaseSettings().url.endswith(":3/x")


def test_explicit_database_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert DatabaseSettings(url="postgresql://a@127.0.0.1/b").url == "postgresql://a@127.0.0.1/b"


def test_role_urls_never_show_passwords_in_their_repr() -> None:
    from infra.db.roles import RoleUrls

    urls = RoleUrls(
        "postgresql://m:pw1@h/db",
        "postgresql://s:pw2@h/db",
        "postgresql://a:pw3@h/db",
        "postgresql://g:pw4@h/db",
        "postgresql://f:pw5@h/db",
    )
    assert not any(pw in repr(urls) for pw in ("pw1", "pw2", "pw3", "pw4"))
    assert urls.service == "postgresql://s:pw2@h/db"
