"""The simulated seller APIs: each channel's authentication and error shape, and the control endpoints."""

from __future__ import annotations

import asyncio

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
                "sign": "0" * 64,
                "order_sn_list": "X",
            },
        )
        assert shopee.status_code == 403 and shopee.json()["error"] == "error_sign"
        tiktok = await http.get(
            "/tiktok_shop/order/202309/orders",
            params={"app_key": "tts-app-key", "timestamp": NOW, "shop_id": "1", "sign": "bad", "ids": "1"},
        )
        assert tiktok.status_code == 401 and tiktok.json()["code"] == 106001 and tiktok.json()["data"] is None
        tokopedia = await http.get("/tokopedia/v2/fs/13004/order", params={"order_id": "1"})
        assert tokopedia.status_code == 401 and tokopedia.json()["header"]["error_code"] == "UNAUTHORIZED"
        blibli = await http.get("/blibli/proxy/mta/api/businesspartner/v1/order/orderList", params={"storeCode": "S"})
        assert blibli.status_code == 401 and blibli.json()["success"] is False


async def test_shopee_sign_covers_the_shop() -> None:
    state = SimState()
    order = add_order(state, Channel.SHOPEE, "261101SIGNED01", ["UNPAID"])
    path = "/api/v2/order/get_order_detail"
    sign = shopee_api_signature("shopee-partner-key", 2001234, path, NOW, order.shop_id)
    params: dict[str, str | int] = {
        "partner_id": 2001234,
        "timestamp": NOW,
        "sign": sign,
        "order_sn_list": order.order_id,
    }
    async with api(state) as http:
        good = await http.get("/shopee" + path, params={**params, "shop_id": order.shop_id})
        assert good.status_code == 200 and good.json()["response"]["order_list"][0]["order_sn"] == order.order_id
        other_shop = await http.get("/shopee" + path, params={**params, "shop_id": "1"})
        assert other_shop.status_code == 403


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
