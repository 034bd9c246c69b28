"""Admission at the edge: usable content, and the replay window where the channel sends the push's time."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from services.gateway.normalise.admission import admit, rejected_key, sent_time

NOW = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
WINDOW, SKEW = 86_400.0, 300.0


def _tiktok(pushed: datetime) -> bytes:
    data = {"order_id": "5763", "order_status": "AWAITING_SHIPMENT", "update_time": int(pushed.timestamp())}
    doc = {"type": 1, "tts_notification_id": "n1", "shop_id": "7494", "timestamp": int(pushed.timestamp())}
    return json.dumps(doc | {"data": data}).encode()


def _shopee(pushed: datetime) -> bytes:
    t = int(pushed.timestamp())
    doc = {"data": {"ordersn": "24A", "status": "SHIPPED", "update_time": t}, "shop_id": 1, "code": 3, "timestamp": t}
    return json.dumps(doc).encode()


def test_pushes_inside_the_window_are_admitted() -> None:
    for body, channel in ((_tiktok(NOW - timedelta(hours=15)), "tiktok_shop"), (_shopee(NOW), "shopee")):
        verdict = admit(channel, "order_status", body, NOW, window_s=WINDOW, skew_s=SKEW)
        assert verdict.notice is not None and not verdict.replay, verdict.problem


def test_pushes_outside_the_window_are_replays() -> None:
    old = admit("tiktok_shop", "order_status", _tiktok(NOW - timedelta(days=2)), NOW, window_s=WINDOW, skew_s=SKEW)
    assert old.replay and old.notice is None and "replay" in old.problem
    future = admit("shopee", "order_status", _shopee(NOW + timedelta(hours=1)), NOW, window_s=WINDOW, skew_s=SKEW)
    assert future.replay and "future" in future.problem


def test_tokopedia_sends_no_push_time_so_no_window_applies() -> None:
    body = json.dumps({"fs_id": 1, "order_status": 500, "order_id": 2, "shop_id": 3, "warehouse_id": 0}).encode()
    assert sent_time("tokopedia", body) is None
    verdict = admit("tokopedia", "order_status", body, NOW, window_s=WINDOW, skew_s=SKEW)
    assert verdict.notice is not None and verdict.notice.update_time == NOW  # dated by its arrival


def test_unusable_content_is_named_without_its_values() -> None:
    body = json.dumps(
        {
            "fs_id": 1,
            "order_id": 2,
            "shop_id": 3,
            "order_status": 220,
            "create_time": 1,
            "products": [{"id": 4, "Name": "Budi Santoso", "quantity": 1, "price": 150000.5}],
            "amt": {"ttl_product_price": 150000.5},
        }
    ).encode()
    verdict = admit("tokopedia", "order_notification", body, NOW, window_s=WINDOW, skew_s=SKEW)
    assert verdict.notice is None and not verdict.replay
    assert "non-integral amount" in verdict.problem and "products[0].price" in verdict.problem
    assert "150000.5" not in verdict.problem and "Budi" not in verdict.problem
    broken = admit("shopee", "order_status", b"{not json", NOW, window_s=WINDOW, skew_s=SKEW)
    assert broken.notice is None and "not JSON" in broken.problem


def test_a_refused_body_is_keyed_by_its_bytes_never_by_its_dedupe_identity() -> None:
    assert rejected_key("tokopedia", "order_status", b"a") == rejected_key("tokopedia", "order_status", b"a")
    assert rejected_key("tokopedia", "order_status", b"a") != rejected_key("tokopedia", "order_status", b"b")
    assert ":rejected:" in rejected_key("shopee", "order_status", b"a")
