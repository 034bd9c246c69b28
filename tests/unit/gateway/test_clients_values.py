"""API answers go through the gateway's one value parser: a millisecond time is read, a bad value is a BadValue
(rejected at once by the normaliser), never a bare ValueError (which would be retried and end as "failed")."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx
import pytest

from services.gateway.clients.tiktok_shop import TikTokShopClient
from services.gateway.clients.tokens import ShopAccess
from services.gateway.values import BadValue, NonIntegralAmount, rejection_context
from tests.static_tokens import StaticTokens

T = 1761984000
ORDER = "576000000000000009"


def client(update_time: object, sub_total: object = "50000") -> TikTokShopClient:
    answer = {
        "code": 0,
        "message": "Success",
        "data": {
            "orders": [
                {
                    "id": ORDER,
                    "status": "AWAITING_SHIPMENT",
                    "update_time": update_time,
                    "line_items": [{"product_id": "p1", "sku_id": "s1", "sale_price": "50000"}],
                    "payment": {"sub_total": sub_total},
                }
            ]
        },
    }
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=json.dumps(answer).encode()))
    tokens = StaticTokens({("tiktok_shop", "shop"): ShopAccess("token", "ROW_cipher")})
    return TikTokShopClient("http://tts.test", "app-key", "s" * 16, tokens, transport=transport, clock=lambda: T)


@pytest.mark.parametrize("update_time", [T, T * 1000, str(T), "2025-11-01T08:00:00Z"])
async def test_seconds_milliseconds_and_iso_times_in_an_answer_are_read(update_time: object) -> None:
    order = await client(update_time).order_detail("shop", ORDER)
    assert order.update_time == datetime.fromtimestamp(T, UTC)
    assert order.gross_amount == 50000


@pytest.mark.parametrize(
    ("update_time", "sub_total", "problem"),
    [
        ("soon", "50000", "unparseable"),
        (10**15, "50000", "unparseable"),  # beyond milliseconds: used to be a bare ValueError from datetime
        (T, " 50000", "unparseable"),
        (T, "abc", "unparseable"),
        (T, "50000.5", "non-integral amount"),
    ],
)
async def test_bad_values_in_an_answer_are_rejections(update_time: object, sub_total: object, problem: str) -> None:
    with pytest.raises(BadValue) as info:
        await client(update_time, sub_total).order_detail("shop", ORDER)
    assert rejection_context(info.value) == problem
    assert isinstance(info.value, NonIntegralAmount) == (problem == "non-integral amount")
    assert "abc" not in str(info.value) and "soon" not in str(info.value)
