"""Client settings from the environment and the client factory."""

from __future__ import annotations

import pytest

from services.gateway.clients.blibli import BlibliClient
from services.gateway.clients.factory import aclose_clients, make_clients, make_token_apis
from services.gateway.clients.settings import ClientSettings, ClientSettingsError
from services.gateway.clients.shopee import ShopeeClient
from services.gateway.clients.tiktok_shop import TikTokShopClient
from services.gateway.clients.tokopedia import TokopediaClient
from services.gateway.settings import GatewayConfigError
from services.gateway.shops.auth import ShopeeAuth, TikTokAuth
from services.gateway.shops.wiring import cipher_of
from tests.static_tokens import StaticTokens

ENV = {
    "KARYA_TOKOPEDIA_API_TOKEN": "tp-token",
    "KARYA_TIKTOK_APP_KEY": "tts-key",
    "KARYA_TIKTOK_APP_SECRET": "tts-secret",
    "KARYA_SHOPEE_PARTNER_ID": "2001234",
    "KARYA_SHOPEE_PARTNER_KEY": "shopee-key",
    "KARYA_BLIBLI_API_CLIENT_ID": "mta-api-karya",
    "KARYA_BLIBLI_API_CLIENT_KEY": "mta-api-client-key",
    "KARYA_BLIBLI_API_KEY": "blibli-key",
    "KARYA_BLIBLI_API_SECRET": "blibli-secret",
    "KARYA_TOKEN_KEY": "00" * 32,
}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in [*ENV, "KARYA_SHOPEE_API_URL"]:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_missing_credentials_are_all_named(env: pytest.MonkeyPatch) -> None:
    env.setenv("KARYA_TIKTOK_APP_KEY", "only-this")
    with pytest.raises(ClientSettingsError) as caught:
        ClientSettings.from_env()
    message = str(caught.value)
    for name in set(ENV) - {"KARYA_TIKTOK_APP_KEY"}:
        assert name in message
    assert "KARYA_TIKTOK_APP_KEY" not in message


def test_defaults_point_at_the_simulator_and_secrets_stay_hidden(env: pytest.MonkeyPatch) -> None:
    for name, value in ENV.items():
        env.setenv(name, value)
    settings = ClientSettings.from_env()
    assert settings.shopee_api_url == "http://127.0.0.1:8090/shopee"
    assert settings.blibli_api_url == "http://127.0.0.1:8090/blibli"
    assert settings.shopee_partner_id == 2001234
    assert "shopee-key" not in repr(settings) and "00" * 32 not in repr(settings)


async def test_factory_builds_one_client_per_channel(env: pytest.MonkeyPatch) -> None:
    for name, value in ENV.items():
        env.setenv(name, value)
    clients = make_clients(ClientSettings.from_env(), StaticTokens({}))
    apis = make_token_apis(ClientSettings.from_env())
    try:
        assert {name: type(a) for name, a in apis.items()} == {"shopee": ShopeeAuth, "tiktok_shop": TikTokAuth}
        assert {name: type(c) for name, c in clients.items()} == {
            "tokopedia": TokopediaClient,
            "tiktok_shop": TikTokShopClient,
            "shopee": ShopeeClient,
            "blibli": BlibliClient,
        }
        assert all(c.channel == name for name, c in clients.items())
    finally:
        await aclose_clients(clients)
        await aclose_clients(apis)


def test_the_gateway_refuses_to_start_without_a_usable_token_key(env: pytest.MonkeyPatch) -> None:
    for name, value in ENV.items():
        env.setenv(name, value)
    env.delenv("KARYA_TOKEN_KEY")
    with pytest.raises(ClientSettingsError, match="KARYA_TOKEN_KEY"):
        ClientSettings.from_env()
    env.setenv("KARYA_TOKEN_KEY", "ab" * 8)  # 8 bytes: not an AES-256 key
    with pytest.raises(GatewayConfigError) as caught:
        cipher_of(ClientSettings.from_env())
    assert "KARYA_TOKEN_KEY must be 32 bytes" in str(caught.value) and "ab" * 8 not in str(caught.value)
