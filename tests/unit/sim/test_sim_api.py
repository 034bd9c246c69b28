"""The simulated seller APIs: each channel's authentication and error shape, and the control endpoints."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac

import httpx
import pytest

from services.orders.catalogue import Channel
from sim.server import Simulator
from sim.signing import shopee_api_signature
from sim.state import SimState
from tests.unit.sim.sim_support import (
    NOW,
    SETTINGS,
    FakeGateway,
    add_order,
    catalogue,
    simulator_app,
    transport,
)


def api(state: SimState | None = None) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=transport(simulator_app(state or SimState())), base_url="http://sim")


async def test_each_channel_answers_bad_auth_in_its_own_shape() -> None:
    async with api() as http:
        shopee = await http.get(
            "/shopee/api/v2/order/get_order_detail",
            params={
                "partner_id": 2001234,
                "timestamp": NOW,
                "shop_id": 1,
                "access_token": "t",
                "sign": "0" * 64,
                "order_sn_list": "X",
            },
        )
        assert shopee.status_code == 403 and shopee.json()["error"] == "error_sign"
        tiktok = await http.get(
            "/tiktok_shop/order/202309/orders",
            params={"app_key": "tts-app-key", "timestamp": NOW, "shop_cipher": "c", "sign": "bad", "ids": "1"},
        )
        assert tiktok.status_code == 401 and tiktok.json()["code"] == 106001 and tiktok.json()["data"] is None
        tokopedia = await http.get("/tokopedia/v2/fs/13004/order", params={"order_id": "1"})
        assert tokopedia.status_code == 401 and tokopedia.json()["header"]["error_code"] == "UNAUTHORIZED"
        blibli = await http.get("/blibli/proxy/mta/api/businesspartner/v1/order/orderList", params={"storeCode": "S"})
        assert blibli.status_code == 401 and blibli.json()["success"] is False


async def test_shopee_sign_covers_the_shop_and_its_access_token() -> None:
    state = SimState()
    order = add_order(state, Channel.SHOPEE, "261101SIGNED01", ["UNPAID"])
    app = simulator_app(state)
    token = app.state.tokens.exchange("shopee", app.state.tokens.authorize("shopee", order.shop_id)).access_token
    path = "/api/v2/order/get_order_detail"

    def params(shop: str, access_token: str) -> dict[str, str | int]:
        sign = shopee_api_signature("shopee-partner-key", 2001234, path, NOW, access_token, shop)
        return {
            "partner_id": 2001234,
            "timestamp": NOW,
            "access_token": access_token,
            "shop_id": shop,
            "sign": sign,
            "order_sn_list": order.order_id,
        }

    async with httpx.AsyncClient(transport=transport(app), base_url="http://sim") as http:
        good = await http.get("/shopee" + path, params=params(order.shop_id, token))
        assert good.status_code == 200 and good.json()["response"]["order_list"][0]["order_sn"] == order.order_id
        other_shop = await http.get("/shopee" + path, params=params("1", token))
        assert other_shop.status_code == 403 and other_shop.json()["error"] == "error_auth"
        made_up = await http.get("/shopee" + path, params=params(order.shop_id, "f" * 32))
        assert made_up.status_code == 403 and "Invalid access_token" in made_up.json()["message"]


async def test_control_endpoints_start_a_day_and_report_progress() -> None:
    gateway = FakeGateway()
    simulator = Simulator(catalogue(), SETTINGS, gateway_transport=transport(gateway.app()))
    async with httpx.AsyncClient(transport=transport(simulator.app), base_url="http://sim") as http:
        assert (await http.get("/_sim/traffic")).json()["status"] == "idle"
        started = await http.post("/_sim/traffic", json={"orders": 40, "seed": 3, "tampered": 1})
        assert started.status_code == 202
        assert (await http.post("/_sim/traffic", json={"orders": 1})).status_code == 409
        status = (await http.get("/_sim/traffic")).json()
        for _ in range(2_000):  # bounded wait for the background day; no timing assertion
            if status["status"] != "running":
                break
            await asyncio.sleep(0.01)
            status = (await http.get("/_sim/traffic")).json()
        assert status["status"] == "done", status
        assert status["done"] == status["total"] > 0
        summary = status["summary"]
        assert summary["orders"] == 40 and summary["expected_rejected"] == 1
        assert summary["webhooks_sent"] == len(gateway.received)
        health = (await http.get("/_sim/health")).json()
        assert sum(health["orders"].values()) == 40


async def test_serve_listens_on_loopback_and_stops() -> None:
    simulator = Simulator(catalogue(), SETTINGS)
    async with simulator.serve("127.0.0.1", 0) as server:
        port = server.servers[0].sockets[0].getsockname()[1]
        async with httpx.AsyncClient() as http:
            health = await http.get(f"http://127.0.0.1:{port}/_sim/health")
        assert health.json() == {"status": "ok", "orders": {}}
    assert server.should_exit


async def test_serve_refuses_non_loopback_hosts() -> None:
    simulator = Simulator(catalogue(), SETTINGS)
    with pytest.raises(ValueError, match="loopback"):
        async with simulator.serve("192.0.2.1", 0):
            pass


async def test_requests_signed_any_other_way_are_refused() -> None:
    """The signing Karya used before issue 14 (and similar near misses) no longer passes the simulator."""
    state = SimState()
    shopee_order = add_order(state, Channel.SHOPEE, "261101OLDSIGN1", ["UNPAID"])
    tts_order = add_order(state, Channel.TIKTOK_SHOP, "576000000000000777", ["UNPAID"])
    app = simulator_app(state)
    issued = app.state.tokens
    shopee_token = issued.exchange("shopee", issued.authorize("shopee", shopee_order.shop_id)).access_token
    tts_token = issued.exchange("tiktok_shop", issued.authorize("tiktok_shop", tts_order.shop_id)).access_token
    key, secret = SETTINGS.shopee_partner_key.encode(), SETTINGS.tiktok_app_secret
    path = "/api/v2/order/get_order_detail"
    old_shopee = hmac.new(key, f"2001234{path}{NOW}{shopee_order.shop_id}".encode(), hashlib.sha256).hexdigest()
    tts_path = "/order/202309/orders"
    # Only app_key and timestamp signed: the ids and shop_cipher parameters are left out.
    old_tts = hmac.new(
        secret.encode(), f"{secret}{tts_path}app_key{SETTINGS.tiktok_app_key}timestamp{NOW}{secret}".encode(), "sha256"
    ).hexdigest()
    old_blibli = hmac.new(b"blibli-api-secret-01", f"GET\n/x\n{NOW * 1000}".encode(), hashlib.sha256).hexdigest()
    async with httpx.AsyncClient(transport=transport(app), base_url="http://sim") as http:
        shopee = await http.get(
            "/shopee" + path,
            params={
                "partner_id": 2001234,
                "timestamp": NOW,
                "access_token": shopee_token,
                "shop_id": shopee_order.shop_id,
                "sign": old_shopee,
                "order_sn_list": shopee_order.order_id,
            },
        )
        assert shopee.status_code == 403 and shopee.json()["error"] == "error_sign"
        cipher = issued.cipher(tts_order.shop_id)
        tts = await http.get(
            "/tiktok_shop" + tts_path,
            params={
                "app_key": SETTINGS.tiktok_app_key,
                "timestamp": NOW,
                "shop_cipher": cipher,
                "sign": old_tts,
                "ids": tts_order.order_id,
            },
            headers={"x-tts-access-token": tts_token},
        )
        assert tts.status_code == 401 and tts.json()["code"] == 106001
        no_cipher = await http.get(
            "/tiktok_shop" + tts_path,
            params={"app_key": SETTINGS.tiktok_app_key, "timestamp": NOW, "shop_id": tts_order.shop_id, "ids": "1"},
        )
        assert no_cipher.status_code == 400 and "shop_cipher" in no_cipher.json()["message"]
        basic = base64.b64encode(f"{SETTINGS.blibli_api_client_id}:{SETTINGS.blibli_api_client_key}".encode())
        blibli = await http.get(
            "/blibli/proxy/mta/api/businesspartner/v1/order/orderList",
            params={"storeCode": "S", "requestId": "r", "channelId": "c", "storeId": 10001},
            headers={
                "Authorization": "Basic " + basic.decode(),
                "Api-Seller-Key": SETTINGS.blibli_api_key,
                "Signature": old_blibli,
                "Signature-Time": str(NOW * 1000),
            },
        )
        assert blibli.status_code == 401 and blibli.json()["errorCode"] == "ERR-PA401004"
