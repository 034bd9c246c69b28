"""Webhook bodies → canonical facts; integral rupiah only (the values themselves: test_gateway_values.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from services.gateway.normalise import ParseError, parse_delivery
from services.gateway.values import BadValue, NonIntegralAmount

T = 1761984000
WHEN = datetime.fromtimestamp(T, UTC)


def notification(**overrides: object) -> bytes:
    doc = {
        "fs_id": 13004,
        "order_id": 987654321,
        "invoice_ref_num": "INV/20261101/MPL/123",
        "shop_id": 11223,
        "order_status": 220,
        "create_time": T,
        "update_time": T,
        "products": [{"id": 456, "Name": "Sarung tangan", "quantity": 2, "price": 25000.0}],
        "amt": {
            "ttl_product_price": 50000,
            "shipping_cost": 9000.0,
            "insurance_cost": 0,
            "ttl_amount": 59000,
            "voucher_amount": 0,
        },
    }
    doc.update(overrides)
    return json.dumps(doc).encode()


# --- webhook bodies --------------------------------------------------------------------------------------


def test_tokopedia_notification_carries_lines_and_gross() -> None:
    notice = parse_delivery("tokopedia", "order_notification", notification())
    assert notice.order_key == "tokopedia:11223:987654321"
    assert (notice.raw_status, notice.update_time, notice.gross_amount) == ("220", WHEN, 50000)
    assert [(ln.channel_product_id, ln.quantity, ln.unit_price) for ln in notice.lines] == [("456", 2, 25000)]


def test_tokopedia_notification_with_half_rupiah_price_is_refused() -> None:
    body = notification(products=[{"id": 456, "Name": "x", "quantity": 2, "price": 150000.5}])
    with pytest.raises(NonIntegralAmount, match=r"products\[0\].price"):
        parse_delivery("tokopedia", "order_notification", body)
    with pytest.raises(NonIntegralAmount, match=r"amt\.shipping_cost"):
        parse_delivery(
            "tokopedia",
            "order_notification",
            notification(amt={"ttl_product_price": 50000, "shipping_cost": 9000.5}),
        )


def test_tokopedia_status_and_cancellation_are_triggers() -> None:
    status = json.dumps({"fs_id": 13004, "order_id": 1, "shop_id": 2, "order_status": 400, "update_time": T})
    notice = parse_delivery("tokopedia", "order_status", status)
    assert (notice.order_key, notice.raw_status, notice.lines, notice.gross_amount) == (
        "tokopedia:2:1",
        "400",
        (),
        None,
    )
    cancel = json.dumps({"fs_id": 1, "order_id": 1, "shop_id": 2, "order_status": 0, "update_time": T, "reason": "x"})
    assert parse_delivery("tokopedia", "order_cancellation", cancel).raw_status == "0"


def test_tiktok_and_shopee_pushes() -> None:
    tiktok = {
        "type": 11,
        "tts_notification_id": "n1",
        "shop_id": "7494",
        "timestamp": T + 5,
        "data": {
            "order_id": "5763",
            "cancellations_role": "BUYER",
            "cancel_status": "CANCELLATION_REQUEST_SUCCESS",
            "cancel_id": "4035",
            "create_time": T - 60,
        },
    }
    notice = parse_delivery("tiktok_shop", "order_cancellation", json.dumps(tiktok))
    assert (notice.order_key, notice.raw_status, notice.update_time) == (
        "tiktok_shop:7494:5763",
        "CANCELLATION_REQUEST_SUCCESS",
        datetime.fromtimestamp(T + 5, UTC),  # the push's time: create_time is when the request was made
    )
    shopee = {
        "data": {"ordersn": "2411019ABCDEF", "status": "COMPLETED", "update_time": T},
        "shop_id": 77001,
        "code": 3,
        "timestamp": T,
    }
    notice = parse_delivery("shopee", "order_status", json.dumps(shopee))
    assert (notice.order_key, notice.raw_status) == ("shopee:77001:2411019ABCDEF", "COMPLETED")


def test_update_time_falls_back_to_the_push_timestamp() -> None:
    tiktok = {
        "type": 1,
        "tts_notification_id": "n",
        "shop_id": "1",
        "timestamp": T,
        "data": {"order_id": "2", "order_status": "UNPAID"},
    }
    assert parse_delivery("tiktok_shop", "order_status", json.dumps(tiktok)).update_time == WHEN


@pytest.mark.parametrize(
    ("channel", "body", "message"),
    [
        ("tokopedia", b"not json", "not JSON"),
        ("tokopedia", b"[]", "not a JSON object"),
        ("tokopedia", json.dumps({"order_id": 1, "order_status": 400, "update_time": T}).encode(), "shop_id"),
        (
            "shopee",
            json.dumps({"data": {"ordersn": "a", "status": "X", "update_time": T}, "shop_id": 1, "code": 4}).encode(),
            "expected 3",
        ),
        (
            "shopee",
            json.dumps({"data": {"status": "X", "update_time": T}, "shop_id": 1, "code": 3}).encode(),
            "data.ordersn",
        ),
        (
            "tiktok_shop",
            json.dumps(
                {"type": 1, "shop_id": "1", "data": {"order_id": "a:b", "order_status": "X", "update_time": T}}
            ).encode(),
            "invalid id",
        ),
        ("tiktok_shop", json.dumps({"shop_id": "1", "data": {"order_id": "a"}}).encode(), "missing field type"),
        ("tiktok_shop", json.dumps({"type": 3, "shop_id": "1", "data": {}}).encode(), "expected 1 .* or 11"),
        (
            "tiktok_shop",
            json.dumps({"type": 11, "shop_id": "1", "timestamp": T, "data": {"order_id": "a"}}).encode(),
            "missing field data.cancel_status",
        ),
    ],
)
def test_malformed_bodies_name_the_problem(channel: str, body: bytes, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        parse_delivery(channel, "order_status", body)


def test_notification_without_products_is_refused() -> None:
    with pytest.raises(ParseError, match="products"):
        parse_delivery("tokopedia", "order_notification", notification(products=[]))


@pytest.mark.parametrize(
    ("products", "amt", "field"),
    [
        ([{"id": 1, "quantity": 2, "price": " 25000"}], None, r"products\[0\]\.price"),
        ([{"id": 1, "quantity": 2, "price": "abc"}], None, r"products\[0\]\.price"),
        ([{"id": 1, "quantity": "2 ", "price": 25000}], None, r"products\[0\]\.quantity"),
        (None, {"ttl_product_price": "5e4"}, r"amt\.ttl_product_price"),
    ],
)
def test_padded_or_unparseable_values_in_a_body_are_bad_values(products: object, amt: object, field: str) -> None:
    overrides = {k: v for k, v in (("products", products), ("amt", amt)) if v is not None}
    with pytest.raises(BadValue, match=f"^{field}: ") as info:
        parse_delivery("tokopedia", "order_notification", notification(**overrides))
    assert not isinstance(info.value, NonIntegralAmount)


@pytest.mark.parametrize("update_time", [T * 1000, str(T), "2025-11-01T15:00:00+07:00"])
def test_webhook_times_in_milliseconds_or_iso_read_as_the_same_instant(update_time: object) -> None:
    notice = parse_delivery("tokopedia", "order_notification", notification(update_time=update_time))
    assert notice.update_time == WHEN


@pytest.mark.parametrize("update_time", [T + 0.5, "2025-11-01T08:00:00", "soon", 10**15])
def test_other_webhook_times_are_bad_values(update_time: object) -> None:
    with pytest.raises(BadValue, match=r"^update_time: "):
        parse_delivery("tokopedia", "order_notification", notification(update_time=update_time))


def test_tokopedia_published_status_body_without_a_time_is_dated_by_its_arrival() -> None:
    published = {"fs_id": 13398, "order_status": 500, "order_id": 582220328, "shop_id": 8212734, "warehouse_id": 1}
    arrived = datetime(2026, 11, 1, 9, 30, tzinfo=UTC)
    notice = parse_delivery("tokopedia", "order_status", json.dumps(published), arrived)
    assert (notice.raw_status, notice.update_time) == ("500", arrived)
    with pytest.raises(ParseError, match="missing field update_time"):
        parse_delivery("tokopedia", "order_status", json.dumps(published))  # no arrival known: nothing to order by
