"""Tokens at rest: AES-256-GCM under KARYA_TOKEN_KEY, bound to their shop and column; errors never show a value."""

from __future__ import annotations

import base64
import secrets

import pytest

from services.gateway.clients.tokens import ShopAccess
from services.gateway.shops.auth import TokenGrant
from services.gateway.shops.crypto import TokenCipher, TokenKeyError, WrongTokenKey


def test_a_sealed_token_opens_only_under_its_key_and_context() -> None:
    key = secrets.token_bytes(32)
    cipher = TokenCipher(key)
    sealed = cipher.seal("access-token-value", "shopee:77001:access")
    assert b"access-token-value" not in sealed and len(sealed) == 12 + len("access-token-value") + 16
    assert cipher.open(sealed, "shopee:77001:access", cipher.key_id) == "access-token-value"
    with pytest.raises(WrongTokenKey, match="altered or moved"):
        cipher.open(sealed, "shopee:77002:access", cipher.key_id)  # copied to another shop
    with pytest.raises(WrongTokenKey, match="altered or moved"):
        cipher.open(sealed[:-1] + bytes([sealed[-1] ^ 1]), "shopee:77001:access", cipher.key_id)
    other = TokenCipher(secrets.token_bytes(32))
    with pytest.raises(WrongTokenKey, match=f"sealed under key {cipher.key_id}"):
        other.open(sealed, "shopee:77001:access", cipher.key_id)


def test_the_key_is_hex_or_base64_of_32_bytes_and_never_echoed() -> None:
    key = secrets.token_bytes(32)
    assert TokenCipher.from_text(key.hex()).key_id == TokenCipher(key).key_id
    assert TokenCipher.from_text(base64.urlsafe_b64encode(key).decode().rstrip("=")).key_id == TokenCipher(key).key_id
    for bad in ("", "   ", "zz" * 32, base64.b64encode(b"short").decode()):
        with pytest.raises(TokenKeyError) as caught:
            TokenCipher.from_text(bad)
        assert "KARYA_TOKEN_KEY" in str(caught.value) and (not bad.strip() or bad not in str(caught.value))


def test_tokens_are_never_in_a_repr() -> None:
    from datetime import UTC, datetime

    grant = TokenGrant("shopee", "77001", "acc-secret", "ref-secret", datetime.now(UTC))
    assert "acc-secret" not in repr(grant) and "ref-secret" not in repr(grant)
    assert "acc-secret" not in repr(ShopAccess("acc-secret", "ROW_x"))
