"""The raw-delivery retention is read from ``KARYA_GATEWAY_RAW_RETENTION_DAYS`` and is at least one day."""

from __future__ import annotations

import pytest

from services.gateway.settings import REQUIRED_SECRETS, GatewayConfigError, env_name, load_settings


def _secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    for field in REQUIRED_SECRETS:
        monkeypatch.setenv(env_name(field), f"value-of-{field}")


def test_the_retention_defaults_to_thirty_days(monkeypatch: pytest.MonkeyPatch) -> None:
    _secrets(monkeypatch)
    monkeypatch.delenv("KARYA_GATEWAY_RAW_RETENTION_DAYS", raising=False)
    assert load_settings().gateway_raw_retention_days == 30


def test_the_retention_is_read_from_the_environment_and_refused_under_a_day(monkeypatch: pytest.MonkeyPatch) -> None:
    _secrets(monkeypatch)
    monkeypatch.setenv("KARYA_GATEWAY_RAW_RETENTION_DAYS", "90")
    assert load_settings().gateway_raw_retention_days == 90
    monkeypatch.setenv("KARYA_GATEWAY_RAW_RETENTION_DAYS", "0")
    with pytest.raises(GatewayConfigError, match="KARYA_GATEWAY_RAW_RETENTION_DAYS"):
        load_settings()
