"""Webhook bodies and amounts → canonical facts; integral rupiah only."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.gateway.normalise import (
    NonIntegralAmount,
    ParseError,
    parse_delivery,
    to_quantity,
    to_rupiah,
    unix_time,
)

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


# --- amounts ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [150000, 150000.0, "150000", "150000.00", " 150000 ", "1.5E5"])
def test_integral_amounts_in_every_shape_are_accepted(value: object) -> None:
    assert to_rupiah(value, "amount") == 150000


@pytest.mark.parametrize("value", [150000.5, "150000.5", "150000.50", 0.1, "0.01"])
def test_fractional_amounts_are_refused(value: object) -> None:
    with pytest.raises(NonIntegralAmount, match="not a whole number"):
        to_rupiah(value, "products[0].price")


@pytest.mark.parametrize("value", [True, None, "abc", "", float("nan"), float("inf"), "NaN", [1], {"a": 1}])
def test_non_numbers_are_refused(value: object) -> None:
    with pytest.raises(ValueError) as info:
        to_rupiah(value, "amt.ttl_amount")
    assert not isinstance(info.value, NonIntegralAmount)
    assert "amt.ttl_amount" in str(info.value)


def test_negative_amounts_need_permission() -> None:
    with pytest.raises(ValueError, match="negative"):
        to_rupiah(-1500, "fee")
    assert to_rupiah("-1500", "fee", allow_negative=True) == -1500
    assert to_rupiah("-1500.00", "fee", allow_negative=True) == -1500


def test_tiktok_decimal_strings_are_exact_beyond_float_precision() -> None:
    assert to_rupiah("9007199254740993", "sub_total") == 9007199254740993  # 2**53 + 1: a float would lose it
    assert to_rupiah("9007199254740993.000", "sub_total") == 9007199254740993
    with pytest.raises(NonIntegralAmount):
        to_rupiah("9007199254740993.001", "sub_total")


@given(st.integers(min_value=0, max_value=2**53))
def test_integral_floats_and_strings_round_trip(n: int) -> None:
    assert to_rupiah(float(n), "x") == n
    assert to_rupiah(str(n), "x") == n
    assert to_rupiah(f"{n}.00", "x") == n


@given(st.integers(min_value=0, max_value=2**40), st.sampled_from([0.5, 0.25, 0.75]))
def test_half_rupiah_is_always_refused(n: int, fraction: float) -> None:
    with pytest.raises(NonIntegralAmount):
        to_rupiah(n + fraction, "x")
    with pytest.raises(NonIntegralAmount):
        to_rupiah(f"{n}{str(fraction)[1:]}", "x")


def test_quantities_and_times() -> None:
    assert to_quantity(2.0, "q") == 2
    for bad in (0, -1, 1.5, "x"):
        with pytest.raises(ValueError):
            to_quantity(bad, "q")
    assert unix_time(T, "t") == WHEN
    assert unix_time(float(T), "t") == WHEN
    with pytest.raises(ValueError, match="not a unix time"):
        unix_time(T * 1000, "t")  # milliseconds by mistake


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
        "data": {"order_id": "5763", "order_status": "CANCEL", "cancel_reason": "buyer", "update_time": T},
    }
    notice = parse_delivery("tiktok_shop", "order_cancellation", json.dumps(tiktok))
    assert (notice.order_key, notice.raw_status, notice.update_time) == (
        "tiktok_shop:7494:5763",
        "CANCEL",
        WHEN,
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
            json.dumps({"shop_id": "1", "data": {"order_id": "a:b", "order_status": "X", "update_time": T}}).encode(),
            "invalid id",
        ),
    ],
)
def test_malformed_bodies_name_the_problem(channel: str, body: bytes, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        parse_delivery(channel, "order_status", body)


def test_notification_without_products_is_refused() -> None:
    with pytest.raises(ParseError, match="products"):
        parse_delivery("tokopedia", "order_notification", notification(products=[]))
