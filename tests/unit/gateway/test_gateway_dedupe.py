"""Dedupe keys per channel: the same delivery gives the same key, a different fact a different key."""

from __future__ import annotations

import hashlib
import json

from services.gateway.dedupe import delivery_keys

TOKOPEDIA = {
    "fs_id": 13004,
    "order_id": 987654321,
    "shop_id": 11223,
    "order_status": 400,
    "update_time": 1761984000,
}
TIKTOK = {
    "type": 1,
    "tts_notification_id": "7327000001",
    "shop_id": "7494033665013839814",
    "timestamp": 1761984000,
    "data": {"order_id": "576300001", "order_status": "AWAITING_SHIPMENT", "update_time": 1761984000},
}
SHOPEE = {
    "data": {"ordersn": "2411019ABCDEF", "status": "READY_TO_SHIP", "update_time": 1761984000},
    "shop_id": 77001,
    "code": 3,
    "timestamp": 1761984005,
}


def _b(doc: object, **dumps: object) -> bytes:
    return json.dumps(doc, **dumps).encode()  # type: ignore[arg-type]


def test_tokopedia_key_is_fs_order_type_status() -> None:
    keys = delivery_keys("tokopedia", "order_status", _b(TOKOPEDIA))
    assert keys.dedupe_key == "tokopedia:13004:987654321:status:400"
    assert keys.order_key == "tokopedia:11223:987654321"
    notification = delivery_keys("tokopedia", "order_notification", _b({**TOKOPEDIA, "order_status": 220}))
    assert notification.dedupe_key == "tokopedia:13004:987654321:notification:220"
    cancellation = delivery_keys("tokopedia", "order_cancellation", _b({**TOKOPEDIA, "order_status": 0}))
    assert cancellation.dedupe_key == "tokopedia:13004:987654321:cancellation:0"


def test_tokopedia_redelivery_with_a_new_update_time_is_the_same_fact() -> None:
    again = delivery_keys("tokopedia", "order_status", _b({**TOKOPEDIA, "update_time": 1761999999}))
    assert again == delivery_keys("tokopedia", "order_status", _b(TOKOPEDIA))
    other = delivery_keys("tokopedia", "order_status", _b({**TOKOPEDIA, "order_status": 450}))
    assert other.dedupe_key != again.dedupe_key


def test_tiktok_key_is_the_notification_id() -> None:
    keys = delivery_keys("tiktok_shop", "order_status", _b(TIKTOK))
    assert keys.dedupe_key == "tiktok_shop:7327000001"
    assert keys.order_key == "tiktok_shop:7494033665013839814:576300001"
    retry = delivery_keys("tiktok_shop", "order_status", _b({**TIKTOK, "timestamp": 1761984120}))
    assert retry.dedupe_key == keys.dedupe_key
    other = delivery_keys("tiktok_shop", "order_status", _b({**TIKTOK, "tts_notification_id": "7327000002"}))
    assert other.dedupe_key != keys.dedupe_key


def test_shopee_key_hashes_shop_code_ordersn_status_update_time() -> None:
    keys = delivery_keys("shopee", "order_status", _b(SHOPEE))
    expected = hashlib.sha256("\x1f".join(["77001", "3", "2411019ABCDEF", "READY_TO_SHIP", "1761984000"]).encode())
    assert keys.dedupe_key == f"shopee:{expected.hexdigest()}"
    assert keys.order_key == "shopee:77001:2411019ABCDEF"
    # A retry differs only in the push timestamp and formatting: same key.
    reformatted = _b({**SHOPEE, "timestamp": 1761984999}, indent=2, sort_keys=True)
    assert delivery_keys("shopee", "order_status", reformatted) == keys
    shipped = {**SHOPEE, "data": {**SHOPEE["data"], "status": "SHIPPED"}}  # type: ignore[dict-item]
    assert delivery_keys("shopee", "order_status", _b(shipped)).dedupe_key != keys.dedupe_key


def test_unparseable_body_is_keyed_by_its_bytes() -> None:
    garbage = b"\x00not json"
    keys = delivery_keys("shopee", "order_status", garbage)
    assert keys.dedupe_key == f"shopee:order_status:body:{hashlib.sha256(garbage).hexdigest()}"
    assert keys.order_key is None
    assert delivery_keys("shopee", "order_status", garbage) == keys
    assert delivery_keys("tokopedia", "order_status", b"[1, 2]").order_key is None


def test_missing_key_fields_fall_back_to_the_body_hash_but_keep_the_order_key() -> None:
    body = _b({k: v for k, v in TOKOPEDIA.items() if k != "fs_id"})
    keys = delivery_keys("tokopedia", "order_status", body)
    assert keys.dedupe_key.startswith("tokopedia:order_status:body:")
    assert keys.order_key == "tokopedia:11223:987654321"


def test_ids_with_colons_give_no_order_key() -> None:
    keys = delivery_keys("tiktok_shop", "order_status", _b({**TIKTOK, "shop_id": "a:b"}))
    assert keys.order_key is None
    assert keys.dedupe_key == "tiktok_shop:7327000001"
