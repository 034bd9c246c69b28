"""The gateway refuses to start without its secrets, naming each missing variable."""

from __future__ import annotations

import pytest

from services.gateway.settings import REQUIRED_SECRETS, GatewayConfigError, env_name, load_settings

SECRETS = {env_name(f): f"value-{f}" for f in REQUIRED_SECRETS}


def test_all_secrets_present(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("KARYA_BLIBLI_STORE_CODES", " LPC-60021, LPK-60047 ,,")
    settings = load_settings()
    assert settings.tokopedia_webhook_secret.get_secret_value() == "value-tokopedia_webhook_secret"
    assert settings.tiktok_app_secret_previous is None
    assert settings.blibli_stores == ("LPC-60021", "LPK-60047")
    assert "value-shopee_partner_key" not in repr(settings)  # secrets never show in logs


def test_missing_and_empty_secrets_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("KARYA_SHOPEE_PARTNER_KEY")
    monkeypatch.setenv("KARYA_TOKOPEDIA_WEBHOOK_SECRET", "")
    monkeypatch.setenv("KARYA_BACKSTOP_BATCH", "many")
    with pytest.raises(GatewayConfigError) as info:
        load_settings()
    message = str(info.value)
    assert "refuses to start" in message
    assert "KARYA_SHOPEE_PARTNER_KEY" in message and "KARYA_TOKOPEDIA_WEBHOOK_SECRET" in message
    assert "KARYA_BACKSTOP_BATCH" in message
    assert "KARYA_TIKTOK_APP_SECRET" not in message
