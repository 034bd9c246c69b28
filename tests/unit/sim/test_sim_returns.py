"""The simulated returns APIs: signed like the rest of each channel's API (anything else refused in the channel's
error shape), and what the gateway clients read from them — lines, and netting against the payout."""

from __future__ import annotations

import hashlib
import hmac
import json

import httpx

from services.contracts.channels import Channel
from services.gateway.clients.shopee import ShopeeClient
from services.gateway.clients.tiktok_shop import TikTokShopClient
from sim.signing import tiktok_api_signature
from sim.state import SimRefund, SimRefundLine, SimSettlement, SimState
from tests.unit.sim.sim_support import (
    NOW,
    SETTINGS,
    add_order,
    fixed_clock,
    simulator_app,
    tokens_for,
    transport,
)


async def test_returns_endpoints_refuse_requests_signed_any_other_way() -> None:
    state = SimState()
    shopee_order = add_order(state, Channel.SHOPEE, "261101RETSIG01", ["UNPAID", "COMPLETED"], refunds=[5_000])
    tts_order = add_order(state, Channel.TIKTOK_SHOP, "576000000000000901", ["UNPAID", "COMPLETED"], refunds=[5_000])
    app = simulator_app(state)
    issued = app.state.tokens
    shopee_token = issued.exchange("shopee", issued.authorize("shopee", shopee_order.shop_id)).access_token
    tts_token = issued.exchange("tiktok_shop", issued.authorize("tiktok_shop", tts_order.shop_id)).access_token
    path = "/api/v2/returns/get_return_list"
    # Signed without access_token and shop_id (partner-level), which a shop-level call may not be.
    partner_only = hmac.new(
        SETTINGS.shopee_partner_key.encode(), f"{SETTINGS.shopee_partner_id}{path}{NOW}".encode(), hashlib.sha256
    ).hexdigest()
    tts_path = "/return_refund/202309/returns/search"
    cipher = issued.cipher(tts_order.shop_id)
    query = {"app_key": SETTINGS.tiktok_app_key, "timestamp": str(NOW), "shop_cipher": cipher, "page_size": "50"}
    body = json.dumps({"order_ids": [tts_order.order_id]}).encode()
    without_body = tiktok_api_signature(SETTINGS.tiktok_app_secret, tts_path, query, b"")
    async with httpx.AsyncClient(transport=transport(app), base_url="http://sim") as http:
        shopee = await http.get(
            "/shopee" + path,
            params={
                "partner_id": SETTINGS.shopee_partner_id,
                "timestamp": NOW,
                "access_token": shopee_token,
                "shop_id": shopee_order.shop_id,
                "sign": partner_only,
                "page_no": 0,
                "page_size": 50,
            },
        )
        assert shopee.status_code == 403 and shopee.json()["error"] == "error_sign"
        tts = await http.post(
            "/tiktok_shop" + tts_path,
            params={**query, "sign": without_body},
            content=body,
            headers={"x-tts-access-token": tts_token, "Content-Type": "application/json"},
        )
        assert tts.status_code == 401 and tts.json()["code"] == 106001
        assert "return_orders" not in tts.text and "return" not in shopee.json()


async def test_a_refund_made_before_the_payout_is_read_as_netted_by_both_clients() -> None:
    state = SimState()
    for channel, order_id in ((Channel.SHOPEE, "261101NETTED01"), (Channel.TIKTOK_SHOP, "576000000000000902")):
        order = add_order(state, channel, order_id, ["UNPAID", "COMPLETED"], lines=((2, 25_000), (1, 40_000)))
        state.refund(order, SimRefund(f"RF{order_id}", 40_000, "return", NOW - 60, (SimRefundLine(1, 1, 40_000),)))
        state.settle(order, SimSettlement("7" + order_id[-6:], NOW, ()))
    app = simulator_app(state)
    shop_shopee = state.get(Channel.SHOPEE, "261101NETTED01").shop_id  # type: ignore[union-attr]
    shop_tts = state.get(Channel.TIKTOK_SHOP, "576000000000000902").shop_id  # type: ignore[union-attr]
    shopee = ShopeeClient(
        "http://sim/shopee",
        SETTINGS.shopee_partner_id,
        SETTINGS.shopee_partner_key,
        tokens_for(app, "shopee", shop_shopee),
        transport=transport(app),
        clock=fixed_clock(NOW),
    )
    tts = TikTokShopClient(
        "http://sim/tiktok_shop",
        SETTINGS.tiktok_app_key,
        SETTINGS.tiktok_app_secret,
        tokens_for(app, "tiktok_shop", shop_tts),
        transport=transport(app),
        clock=fixed_clock(NOW),
    )
    for refunds in (
        await shopee.refunds(shop_shopee, "261101NETTED01"),
        await tts.refunds(shop_tts, "576000000000000902"),
    ):
        assert [(r.amount, r.reason, r.netted) for r in refunds] == [(40_000, "return", True)]
        assert [(x.quantity, x.amount) for x in refunds[0].lines] == [(1, 40_000)]
    await shopee.aclose()
    await tts.aclose()
