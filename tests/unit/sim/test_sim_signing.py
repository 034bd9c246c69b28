"""The simulator's signing helpers produce exactly what the channel contract says."""

from __future__ import annotations

import base64
import hashlib
import hmac

from hypothesis import given
from hypothesis import strategies as st

from sim.signing import (
    blibli_api_signature,
    shopee_api_signature,
    shopee_webhook_signature,
    signature_matches,
    tiktok_api_signature,
    tiktok_webhook_signature,
    tokopedia_webhook_signature,
)
from tests.unit.sim.sim_support import reference_hmac

BODY = b'{"fs_id":13004,"order_id":987654321,"order_status":220}'


def test_tokopedia_webhook_is_hmac_of_the_raw_body() -> None:
    assert tokopedia_webhook_signature("s3cret", BODY) == reference_hmac(b"s3cret", BODY)


def test_tiktok_webhook_prefixes_the_app_key() -> None:
    assert tiktok_webhook_signature("key123", "sec456", BODY) == reference_hmac(b"sec456", b"key123" + BODY)


def test_shopee_webhook_signs_callback_url_pipe_body() -> None:
    url = "http://127.0.0.1:8083/webhooks/shopee/order-status"
    assert shopee_webhook_signature("pk", url, BODY) == reference_hmac(b"pk", url.encode() + b"|" + BODY)


def test_api_signatures() -> None:
    partner = b"2001/api/v2/auth/token/get1761984000"
    assert shopee_api_signature("pk", 2001, "/api/v2/auth/token/get", 1761984000) == reference_hmac(b"pk", partner)
    shop = b"2001/api/v2/order/get_order_detail1761984000tok77001"
    assert shopee_api_signature("pk", 2001, "/api/v2/order/get_order_detail", 1761984000, "tok", 77001) == (
        reference_hmac(b"pk", shop)
    )
    query = {"timestamp": "1761984000", "app_key": "key", "sign": "x", "access_token": "t", "ids": "9"}
    assert tiktok_api_signature("sec", "/order/202309/orders", query) == reference_hmac(
        b"sec", b"sec/order/202309/ordersapp_keykeyids9timestamp1761984000sec"
    )
    # The raw string of seller-api.blibli.com's example date (2020-05-12T09:28:52Z in Jakarta), GET: no body, no type.
    raw = b"GET\n\n\nTue May 12 16:28:52 WIB 2020\n/mtaapi/api/businesspartner/v1/order/orderList"
    expected = base64.b64encode(hmac.new(b"bs", raw, hashlib.sha256).digest()).decode()
    signed = blibli_api_signature("bs", "get", b"", "", 1589275732000, "/mtaapi/api/businesspartner/v1/order/orderList")
    assert signed == expected


@given(st.binary(max_size=300), st.text(min_size=1, max_size=40))
def test_signatures_are_lowercase_hex_and_match_only_themselves(body: bytes, secret: str) -> None:
    signature = tokopedia_webhook_signature(secret, body)
    assert len(signature) == 64 and signature == signature.lower()
    assert signature == reference_hmac(secret.encode(), body)
    assert signature_matches(signature, signature.upper())
    assert not signature_matches(signature, tokopedia_webhook_signature(secret + "x", body))
    assert not signature_matches(signature, None)
    assert not signature_matches(signature, "")
