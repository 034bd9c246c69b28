"""Weak secrets stop the gateway at start: too short or all whitespace, named by variable, never by value."""

from __future__ import annotations

import pytest

from services.gateway.settings import (
    MIN_SECRET_LENGTH,
    REQUIRED_SECRETS,
    GatewayConfigError,
    env_name,
    load_settings,
)

STRONG = {env_name(field): f"strong-{field}-0123456789" for field in REQUIRED_SECRETS}
SHORT = "x" * (MIN_SECRET_LENGTH - 1)


@pytest.fixture
def strong_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name, value in STRONG.items():
        monkeypatch.setenv(name, value)
    for name in ("TOKOPEDIA_WEBHOOK_SECRET", "TIKTOK_APP_SECRET", "SHOPEE_PARTNER_KEY"):
        monkeypatch.delenv(f"KARYA_{name}_PREVIOUS", raising=False)
    monkeypatch.delenv("KARYA_TOKOPEDIA_API_TOKEN", raising=False)
    return monkeypatch


def _refusal() -> str:
    with pytest.raises(GatewayConfigError) as info:
        load_settings()
    return str(info.value)


def test_strong_secrets_are_accepted(strong_env: pytest.MonkeyPatch) -> None:
    strong_env.setenv("KARYA_TIKTOK_APP_SECRET", "y" * MIN_SECRET_LENGTH)  # exactly the minimum
    settings = load_settings()
    assert settings.tiktok_app_secret.get_secret_value() == "y" * MIN_SECRET_LENGTH
    assert settings.tokopedia_webhook_secret_previous is None


@pytest.mark.parametrize(
    "variable",
    [
        "KARYA_TOKOPEDIA_WEBHOOK_SECRET",
        "KARYA_TIKTOK_APP_SECRET",
        "KARYA_SHOPEE_PARTNER_KEY",
        "KARYA_BLIBLI_API_SECRET",
        "KARYA_TOKOPEDIA_WEBHOOK_SECRET_PREVIOUS",
        "KARYA_TIKTOK_APP_SECRET_PREVIOUS",
        "KARYA_SHOPEE_PARTNER_KEY_PREVIOUS",
        "KARYA_TOKOPEDIA_API_TOKEN",
    ],
)
@pytest.mark.parametrize("weak", [" ", " " * 40, "\t\n  ", SHORT])
def test_a_weak_secret_is_refused_by_name_not_value(strong_env: pytest.MonkeyPatch, variable: str, weak: str) -> None:
    strong_env.setenv(variable, weak)
    message = _refusal()
    assert "refuses to start" in message
    assert f"{variable} (" in message
    reason = "all whitespace" if not weak.strip() else f"shorter than {MIN_SECRET_LENGTH} characters"
    assert reason in message
    if weak.strip():
        assert weak not in message  # the value never appears, only the variable
    for name, value in STRONG.items():
        assert value not in message
        if name != variable:
            assert f"{name} (" not in message


def test_every_weak_secret_is_named_in_one_message(strong_env: pytest.MonkeyPatch) -> None:
    strong_env.setenv("KARYA_TOKOPEDIA_WEBHOOK_SECRET", " ")
    strong_env.setenv("KARYA_SHOPEE_PARTNER_KEY_PREVIOUS", "short-key")
    strong_env.delenv("KARYA_BLIBLI_API_SECRET")
    message = _refusal()
    assert "KARYA_TOKOPEDIA_WEBHOOK_SECRET (is all whitespace)" in message
    assert f"KARYA_SHOPEE_PARTNER_KEY_PREVIOUS (is shorter than {MIN_SECRET_LENGTH} characters)" in message
    assert "missing or empty environment variables: KARYA_BLIBLI_API_SECRET" in message
    assert "short-key" not in message


def test_an_empty_previous_secret_means_no_rotation(strong_env: pytest.MonkeyPatch) -> None:
    strong_env.setenv("KARYA_TIKTOK_APP_SECRET_PREVIOUS", "")
    strong_env.setenv("KARYA_TOKOPEDIA_API_TOKEN", "")
    settings = load_settings()
    assert settings.tiktok_app_secret_previous is None
    assert settings.tokopedia_api_token is None


@pytest.mark.parametrize("variable", ["KARYA_TIKTOK_APP_KEY", "KARYA_SHOPEE_PARTNER_ID", "KARYA_BLIBLI_API_KEY"])
def test_a_blank_identifier_is_refused(strong_env: pytest.MonkeyPatch, variable: str) -> None:
    strong_env.setenv(variable, "   ")
    assert f"{variable} (is all whitespace)" in _refusal()


def test_an_empty_required_secret_is_reported_missing(strong_env: pytest.MonkeyPatch) -> None:
    strong_env.setenv("KARYA_SHOPEE_PARTNER_KEY", "")
    assert "missing or empty environment variables: KARYA_SHOPEE_PARTNER_KEY" in _refusal()
