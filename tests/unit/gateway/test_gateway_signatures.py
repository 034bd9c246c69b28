"""Webhook signatures per channel: valid, tampered, wrong secret, missing header, rotation."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.gateway.signatures import (
    SignatureScheme,
    shopee_scheme,
    tiktok_shop_scheme,
    tokopedia_scheme,
    verify_hex,
)
from sim.signing import shopee_webhook_signature, tiktok_webhook_signature, tokopedia_webhook_signature

BODY = b'{"order_id": 987654321, "order_status": 220, "shop_id": 11223}'
CALLBACK = "http://127.0.0.1:8083/webhooks/shopee/order-status"


def _hex(key: str, message: bytes) -> str:
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


# What the channel contract says each sender computes, written out independently of the module under test.
Build = Callable[[str, str | None], SignatureScheme]
Sign = Callable[[str, bytes], str]
CHANNELS: dict[str, tuple[Build, Sign, str]] = {
    "tokopedia": (
        lambda cur, prev: tokopedia_scheme(cur, prev),
        lambda secret, body: _hex(secret, body),
        "authorization-hmac",
    ),
    "tiktok_shop": (
        lambda cur, prev: tiktok_shop_scheme("app-key-1", cur, prev),
        lambda secret, body: _hex(secret, b"app-key-1" + body),
        "authorization",
    ),
    "shopee": (
        lambda cur, prev: shopee_scheme(CALLBACK, cur, prev),
        lambda secret, body: _hex(secret, CALLBACK.encode() + b"|" + body),
        "authorization",
    ),
}


@pytest.mark.parametrize("channel", sorted(CHANNELS))
def test_valid_signature_is_accepted(channel: str) -> None:
    build, sign, header = CHANNELS[channel]
    scheme = build("current-secret", None)
    assert scheme.header == header
    assert scheme.verify(BODY, sign("current-secret", BODY))


SIMULATOR: dict[str, tuple[SignatureScheme, str]] = {
    "tokopedia": (tokopedia_scheme("s"), tokopedia_webhook_signature("s", BODY)),
    "tiktok_shop": (tiktok_shop_scheme("k", "s"), tiktok_webhook_signature("k", "s", BODY)),
    "shopee": (shopee_scheme(CALLBACK, "s"), shopee_webhook_signature("s", CALLBACK, BODY)),
}


@pytest.mark.parametrize("channel", sorted(SIMULATOR))
def test_the_gateway_accepts_what_the_simulator_signs(channel: str) -> None:
    # `make demo` pushes webhooks signed by sim.signing; the gateway must verify them unchanged.
    scheme, signature = SIMULATOR[channel]
    assert scheme.verify(BODY, signature)


@pytest.mark.parametrize("channel", sorted(CHANNELS))
def test_tampered_body_is_rejected(channel: str) -> None:
    build, sign, _ = CHANNELS[channel]
    scheme = build("current-secret", None)
    signature = sign("current-secret", BODY)
    assert not scheme.verify(BODY.replace(b"220", b"700"), signature)
    assert not scheme.verify(BODY + b" ", signature)


@pytest.mark.parametrize("channel", sorted(CHANNELS))
def test_wrong_secret_is_rejected(channel: str) -> None:
    build, sign, _ = CHANNELS[channel]
    assert not build("current-secret", None).verify(BODY, sign("someone-else", BODY))


@pytest.mark.parametrize("channel", sorted(CHANNELS))
@pytest.mark.parametrize("header", [None, "", "   ", "not-hex", "é" * 64])
def test_missing_or_garbage_header_is_rejected(channel: str, header: str | None) -> None:
    build, _, _ = CHANNELS[channel]
    assert not build("current-secret", "previous-secret").verify(BODY, header)


@pytest.mark.parametrize("channel", sorted(CHANNELS))
def test_previous_secret_is_accepted_only_during_rotation(channel: str) -> None:
    build, sign, _ = CHANNELS[channel]
    old_signature = sign("old-secret", BODY)
    assert build("new-secret", "old-secret").verify(BODY, old_signature)
    assert build("new-secret", "old-secret").verify(BODY, sign("new-secret", BODY))
    assert not build("new-secret", None).verify(BODY, old_signature)  # rotation over: the old one is dead


def test_header_case_and_surrounding_space_do_not_matter() -> None:
    assert tokopedia_scheme("s").verify(BODY, f"  {_hex('s', BODY).upper()} ")


def test_tiktok_signs_the_app_key_and_shopee_the_callback_url() -> None:
    # Same secret, same body: the prefix makes the signatures differ, and a wrong URL is a wrong signature.
    tiktok, shopee, tokopedia = (CHANNELS[c][1]("secret", BODY) for c in ("tiktok_shop", "shopee", "tokopedia"))
    assert len({tiktok, shopee, tokopedia}) == 3
    assert shopee_scheme(CALLBACK, "secret").verify(BODY, shopee)
    assert not shopee_scheme("http://elsewhere/webhooks/shopee/order-status", "secret").verify(BODY, shopee)


def test_no_secret_verifies_nothing() -> None:
    assert not verify_hex([], BODY, _hex("x", BODY))
    assert not SignatureScheme("authorization", b"", ()).verify(BODY, _hex("x", BODY))


@given(body=st.binary(max_size=512), secret=st.text(min_size=1, max_size=40), flip=st.integers(min_value=0))
def test_any_body_round_trips_and_any_flipped_byte_fails(body: bytes, secret: str, flip: int) -> None:
    scheme = tokopedia_scheme(secret)
    signature = _hex(secret, body)
    assert scheme.verify(body, signature)
    if body:
        i = flip % len(body)
        tampered = body[:i] + bytes([body[i] ^ 0x01]) + body[i + 1 :]
        assert not scheme.verify(tampered, signature)
