"""The seller-API clients' real HTTP requests, checked against the marketplaces' published signing rules.

Each rule is implemented again here, from the published documentation only (Shopee Open Platform v2
"Authorization and Authentication"; TikTok Shop Partner API "Sign your API request" (202309); Blibli Seller API
"Signature" and its PHP client's ``GenerateSignature.php``), independently of ``services.gateway.clients.signing``
and of the simulator. The clients talk to a recording transport; every captured request must carry what the rule
requires and a signature equal to the one computed here from the request as it went on the wire.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from services.gateway.clients.blibli import BlibliClient, BlibliCredentials
from services.gateway.clients.shopee import ShopeeClient
from services.gateway.clients.tiktok_shop import TikTokShopClient
from services.gateway.clients.tokens import ShopAccess
from services.gateway.shops.auth import ShopeeAuth, TikTokAuth
from tests.static_tokens import StaticTokens

T = 1_761_984_000
PARTNER_ID, PARTNER_KEY, SHOP, TOKEN = 2_001_234, "shopee-partner-key-01", "77001", "shop-access-token-1"
APP_KEY, APP_SECRET, CIPHER = "tts-app-key", "tts-app-secret-0001", "ROW_cipher_77001"


# ---------------------------------------------------------------- the published rules, written out again


def published_shopee_sign(key: str, partner_id: str, path: str, ts: str, token: str = "", shop: str = "") -> str:
    """sign = HMAC-SHA256(partner_key, partner_id + api path + timestamp [+ access_token + shop_id]), hex."""
    return hmac.new(key.encode(), (partner_id + path + ts + token + shop).encode(), hashlib.sha256).hexdigest()


def published_tiktok_sign(secret: str, path: str, query: dict[str, str], body: bytes) -> str:
    """Wrap app_secret around path + sorted key+value of the query (no sign, no access_token) + body."""
    keys = sorted(k for k in query if k not in ("sign", "access_token"))
    inner = path + "".join(k + query[k] for k in keys)
    return hmac.new(secret.encode(), (secret + inner).encode() + body + secret.encode(), hashlib.sha256).hexdigest()


def published_blibli_signature(key: str, method: str, body: bytes, content_type: str, millis: str, url: str) -> str:
    """Base64 HMAC-SHA256 over METHOD / md5(body) / content type / Jakarta date / URL after /proxy (/mta→/mtaapi)."""
    date = datetime.fromtimestamp(int(millis) / 1000, timezone(timedelta(hours=7)))
    stamp = f"{date:%a} {date:%b} {date:%d} {date:%H:%M:%S} WIB {date.year}"
    md5 = hashlib.md5(body, usedforsecurity=False).hexdigest() if body else ""
    path = url.split("/proxy", 1)[1].replace("/mta", "/mtaapi")
    raw = f"{method}\n{md5}\n{content_type}\n{stamp}\n{path}"
    return base64.b64encode(hmac.new(key.encode(), raw.encode(), hashlib.sha256).digest()).decode()


# ---------------------------------------------------------------- capturing the requests


def recorder(answer: Callable[[httpx.Request], object]) -> tuple[httpx.MockTransport, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=json.dumps(answer(request)).encode())

    return httpx.MockTransport(handle), seen


def query_of(request: httpx.Request) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(str(request.url)).query, keep_blank_values=True))


def api_path(request: httpx.Request, prefix: str) -> str:
    return request.url.path.removeprefix(prefix)


# ---------------------------------------------------------------- Shopee


def _shopee_answer(request: httpx.Request) -> object:
    if request.url.path.endswith("get_order_list"):
        return {"error": "", "response": {"more": False, "next_cursor": "", "order_list": [{"order_sn": "SN1"}]}}
    if request.url.path.endswith("get_escrow_detail"):
        return {"error": "", "response": {"order_income": {"escrow_release_time": 0}}}
    if "/auth/" in request.url.path:
        return {"error": "", "access_token": "new-access", "refresh_token": "new-refresh", "expire_in": 14_400}
    item = {"item_id": 1, "model_id": 0, "model_quantity_purchased": 1, "model_discounted_price": 5000}
    order = {"order_sn": "SN1", "order_status": "READY_TO_SHIP", "update_time": T, "item_list": [item]}
    return {"error": "", "response": {"order_list": [order]}}


async def test_shopee_shop_level_calls_carry_and_sign_access_token_and_shop_id() -> None:
    transport, seen = recorder(_shopee_answer)
    tokens = StaticTokens({("shopee", SHOP): ShopAccess(TOKEN)})
    client = ShopeeClient("https://partner.test/base", PARTNER_ID, PARTNER_KEY, tokens, transport=transport)
    await client.order_detail(SHOP, "SN1")
    await client.settlement(SHOP, "SN1")
    await client.orders_updated_between(SHOP, datetime.fromtimestamp(T, UTC), datetime.fromtimestamp(T + 60, UTC))
    await client.aclose()
    assert len(seen) == 4  # detail, escrow, list, detail of the listed order
    for request in seen:
        query, path = query_of(request), api_path(request, "/base")
        assert path.startswith("/api/v2/")
        assert query["partner_id"] == str(PARTNER_ID) and query["shop_id"] == SHOP and query["access_token"] == TOKEN
        expected = published_shopee_sign(PARTNER_KEY, query["partner_id"], path, query["timestamp"], TOKEN, SHOP)
        assert query["sign"] == expected, path


async def test_shopee_token_calls_are_partner_level_signed() -> None:
    transport, seen = recorder(_shopee_answer)
    auth = ShopeeAuth(
        "https://partner.test", (PARTNER_ID, PARTNER_KEY), "https://karya.test/shops", transport=transport
    )
    await auth.exchange("the-code", SHOP)
    await auth.refresh("old-refresh", SHOP)
    link = httpx.URL(auth.authorize_url("st"))
    await auth.aclose()
    assert [r.url.path for r in seen] == ["/api/v2/auth/token/get", "/api/v2/auth/access_token/get"]
    for request in seen:
        query = query_of(request)
        assert "access_token" not in query and "shop_id" not in query
        assert query["sign"] == published_shopee_sign(
            PARTNER_KEY, str(PARTNER_ID), request.url.path, query["timestamp"]
        )
    assert json.loads(seen[0].content) == {"code": "the-code", "shop_id": int(SHOP), "partner_id": PARTNER_ID}
    assert json.loads(seen[1].content) == {
        "refresh_token": "old-refresh",
        "shop_id": int(SHOP),
        "partner_id": PARTNER_ID,
    }
    link_query = dict(link.params)
    assert link.path == "/api/v2/shop/auth_partner"
    assert link_query["sign"] == published_shopee_sign(PARTNER_KEY, str(PARTNER_ID), link.path, link_query["timestamp"])


# ---------------------------------------------------------------- TikTok Shop


def _tiktok_answer(request: httpx.Request) -> object:
    if request.url.path.endswith("/search"):
        token = query_of(request).get("page_token")
        return {"code": 0, "data": {"orders": [], "next_page_token": "" if token else "p2"}}
    if "statement_transactions" in request.url.path:
        return {"code": 0, "data": {"statement_transactions": []}}
    if "/token/" in request.url.path:
        data = {
            "access_token": "a",
            "refresh_token": "r",
            "access_token_expire_in": T + 9,
            "refresh_token_expire_in": T,
        }
        return {"code": 0, "data": data}
    if request.url.path.endswith("/shops"):
        return {"code": 0, "data": {"shops": [{"id": SHOP, "cipher": CIPHER, "name": "Toko"}]}}
    line = {"product_id": "p", "sku_id": "s", "sale_price": "5000"}
    order = {"id": "O1", "status": "AWAITING_SHIPMENT", "update_time": T, "line_items": [line]}
    return {"code": 0, "data": {"orders": [{**order, "payment": {"sub_total": "5000"}}]}}


async def test_tiktok_calls_sign_every_sorted_query_parameter_and_the_body() -> None:
    transport, seen = recorder(_tiktok_answer)
    tokens = StaticTokens({("tiktok_shop", SHOP): ShopAccess(TOKEN, CIPHER)})
    client = TikTokShopClient("https://open-api.test", APP_KEY, APP_SECRET, tokens, transport=transport)
    await client.order_detail(SHOP, "O1")
    await client.settlement(SHOP, "O1")
    await client.orders_updated_between(SHOP, datetime.fromtimestamp(T, UTC), datetime.fromtimestamp(T + 60, UTC))
    await client.aclose()
    assert len(seen) == 4  # detail, statement, two search pages
    assert seen[-1].method == "POST" and seen[-1].content and query_of(seen[-1])["page_token"] == "p2"
    for request in seen:
        query = query_of(request)
        assert query["app_key"] == APP_KEY and query["shop_cipher"] == CIPHER and "shop_id" not in query
        assert "access_token" not in query and request.headers["x-tts-access-token"] == TOKEN
        assert query["sign"] == published_tiktok_sign(APP_SECRET, request.url.path, query, request.content)


async def test_tiktok_token_endpoints_and_the_authorised_shops() -> None:
    transport, seen = recorder(_tiktok_answer)
    auth = TikTokAuth(
        "https://auth.test",
        "https://open-api.test",
        "https://services.test",
        APP_KEY,
        APP_SECRET,
        "svc",
        transport=transport,
    )
    grant = await auth.exchange("the-code", SHOP)
    await auth.refresh("r", SHOP, CIPHER)
    await auth.aclose()
    assert (grant.shop_id, grant.shop_cipher, grant.access_expires_at) == (
        SHOP,
        CIPHER,
        datetime.fromtimestamp(T + 9, UTC),
    )
    token_get, shops, refresh = seen
    assert (token_get.url.host, token_get.url.path) == ("auth.test", "/api/v2/token/get")
    assert query_of(token_get) == {
        "app_key": APP_KEY,
        "app_secret": APP_SECRET,
        "auth_code": "the-code",
        "grant_type": "authorized_code",
    }
    assert query_of(refresh)["grant_type"] == "refresh_token" and refresh.url.path == "/api/v2/token/refresh"
    shops_query = query_of(shops)
    assert shops.url.path == "/authorization/202309/shops" and shops.headers["x-tts-access-token"] == "a"
    assert shops_query["sign"] == published_tiktok_sign(APP_SECRET, shops.url.path, shops_query, b"")


# ---------------------------------------------------------------- Blibli


def _blibli_answer(request: httpx.Request) -> object:
    row = {
        "orderNo": "B1",
        "orderItemNo": "B1-1",
        "merchantSku": "SKU",
        "productItemCode": "P",
        "qty": 1,
        "itemPrice": 5000,
        "orderStatus": "FP",
        "orderStatusUpdatedDate": T * 1000,
    }
    return {"success": True, "content": [row], "pageMetaData": {"totalRecords": 1}}


@pytest.mark.parametrize("username", [None, "seller@example.test"])
async def test_blibli_calls_use_basic_auth_seller_key_and_the_published_signature(username: str | None) -> None:
    transport, seen = recorder(_blibli_answer)
    creds = BlibliCredentials("mta-api-karya", "client-key-0001", "SELLERKEY", "signature-key-01", "karya", username)
    client = BlibliClient("https://api.blibli.test/v2", creds, transport=transport)
    await client.order_detail("STORE-1", "B1")
    await client.orders_updated_between("STORE-1", datetime.fromtimestamp(T, UTC), datetime.fromtimestamp(T + 60, UTC))
    await client.aclose()
    assert len(seen) == 2
    basic = "Basic " + base64.b64encode(b"mta-api-karya:client-key-0001").decode()
    for request in seen:
        headers, query = request.headers, query_of(request)
        assert headers["authorization"] == basic and headers["api-seller-key"] == "SELLERKEY"
        expected = published_blibli_signature(
            "signature-key-01", "GET", b"", "", headers["signature-time"], request.url.path
        )
        assert headers["signature"] == expected
        assert query["storeId"] == "10001" and query["storeCode"] == "STORE-1" and query["channelId"] == "karya"
        assert query["requestId"].startswith("karya-") and query.get("username") == username


def test_the_blibli_rule_reproduces_the_documented_raw_string_date() -> None:
    """seller-api.blibli.com's example raw string is dated ``Tue May 12 16:28:52 WIB 2020`` (09:28:52 UTC)."""
    millis = str(int(datetime(2020, 5, 12, 9, 28, 52, tzinfo=UTC).timestamp() * 1000))
    raw = b"GET\n\n\nTue May 12 16:28:52 WIB 2020\n/mtaapi/api/businesspartner/v1/order/orderList"
    documented = base64.b64encode(hmac.new(b"k", raw, hashlib.sha256).digest()).decode()
    url = "/v2/proxy/mta/api/businesspartner/v1/order/orderList"
    assert published_blibli_signature("k", "GET", b"", "", millis, url) == documented


# ---------------------------------------------------------------- returns APIs (Shopee v2 returns, TikTok 202309)

RETURNS = Path(__file__).parents[2] / "contract" / "published"


def _published_answer(channel: str, name: str) -> dict[str, Any]:
    answer: dict[str, Any] = json.loads((RETURNS / channel / f"returns_{name}.json").read_text())["answer"]
    return answer


def _shopee_returns_answer(request: httpx.Request) -> object:
    if request.url.path.endswith("get_return_list"):
        listed = _published_answer("shopee", "get_return_list")
        listed["response"]["return"][0]["order_sn"] = "SN1"
        return listed
    if request.url.path.endswith("get_return_detail"):
        detail = _published_answer("shopee", "get_return_detail")
        detail["response"].update(order_sn="SN1", return_sn=query_of(request)["return_sn"])
        return detail
    return _shopee_answer(request)


async def test_shopee_returns_calls_are_shop_level_signed_and_read_the_published_answers() -> None:
    transport, seen = recorder(_shopee_returns_answer)
    tokens = StaticTokens({("shopee", SHOP): ShopAccess(TOKEN)})
    client = ShopeeClient(
        "https://partner.test/base", PARTNER_ID, PARTNER_KEY, tokens, transport=transport, clock=lambda: T
    )
    refunds = await client.refunds(SHOP, "SN1")
    await client.aclose()
    paths = [api_path(r, "/base") for r in seen]
    assert paths == [
        "/api/v2/returns/get_return_list",
        "/api/v2/returns/get_return_detail",
        "/api/v2/payment/get_escrow_detail",
    ]
    listed = query_of(seen[0])
    assert listed["page_no"] == "0" and int(listed["update_time_to"]) == T
    assert int(listed["update_time_to"]) - int(listed["update_time_from"]) == 15 * 86_400
    for request in seen:
        query, path = query_of(request), api_path(request, "/base")
        assert query["shop_id"] == SHOP and query["access_token"] == TOKEN
        expected = published_shopee_sign(PARTNER_KEY, query["partner_id"], path, query["timestamp"], TOKEN, SHOP)
        assert query["sign"] == expected, path
    assert [(r.refund_id, r.amount, len(r.lines), r.netted) for r in refunds] == [("2206170GM3UJW9A", 75000, 2, False)]


def _tiktok_returns_answer(request: httpx.Request) -> object:
    if request.url.path.endswith("/returns/search"):
        answer = _published_answer("tiktok_shop", "search")
        for item in answer["data"]["return_orders"]:
            item["order_id"] = "O1"
        return answer
    return _tiktok_answer(request)


async def test_tiktok_returns_search_is_signed_with_its_body_and_reads_the_published_answer() -> None:
    transport, seen = recorder(_tiktok_returns_answer)
    tokens = StaticTokens({("tiktok_shop", SHOP): ShopAccess(TOKEN, CIPHER)})
    client = TikTokShopClient("https://open-api.test", APP_KEY, APP_SECRET, tokens, transport=transport)
    refunds = await client.refunds(SHOP, "O1")
    await client.aclose()
    assert [r.url.path for r in seen] == [
        "/return_refund/202309/returns/search",
        "/finance/202309/orders/O1/statement_transactions",
    ]
    search = seen[0]
    assert search.method == "POST" and json.loads(search.content) == {"order_ids": ["O1"]}
    for request in seen:
        query = query_of(request)
        assert query["shop_cipher"] == CIPHER and "access_token" not in query
        assert request.headers["x-tts-access-token"] == TOKEN
        assert query["sign"] == published_tiktok_sign(APP_SECRET, request.url.path, query, request.content)
    assert [(r.refund_id, r.amount, r.reason, r.netted) for r in refunds] == [
        ("4035318772201001", 52000, "return", False)
    ]
