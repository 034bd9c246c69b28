"""Simulated returns APIs: Shopee v2 ``returns`` (``get_return_list``, ``get_return_detail``) and TikTok Shop
202309 ``return_refund`` (returns search), in the published shapes, over the refunds in :class:`SimState`.

Every refund is served as a finished return (Shopee ``REFUND_PAID``, TikTok ``RETURN_OR_REFUND_REQUEST_COMPLETE``)
with its lines. Requests are authenticated by the same signing checks as the rest of the channel's API
(:func:`sim.api.create_app` passes them in), so a wrongly signed request gets the channel's error.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request

from services.contracts.channels import Channel
from sim.state import SimOrder, SimRefund, SimState

__all__ = ["add_return_routes", "shopee_return", "tiktok_return"]

Json = dict[str, Any]
SHOPEE_REFUNDED = "REFUND_PAID"
TIKTOK_REFUNDED = "RETURN_OR_REFUND_REQUEST_COMPLETE"


def shopee_return(order: SimOrder, refund: SimRefund) -> Json:
    """One return as ``get_return_detail`` lists it (the buyer's ``user`` carries no real data here)."""
    items = []
    for part in refund.lines:
        line = order.lines[part.line]
        items.append(
            {
                "item_id": int(line.listing.channel_product_id),
                "model_id": int(line.listing.channel_sku_id or 0),
                "name": line.listing.sku,
                "images": [],
                "amount": part.quantity,
                "item_price": line.unit_price,
                "is_add_on_deal": False,
                "is_main_item": False,
                "add_on_deal_id": 0,
                "item_sku": line.listing.sku,
                "variation_sku": "",
                "refund_amount": part.amount,
            }
        )
    goods_back = refund.reason == "return"
    return {
        "image": [],
        "reason": "NOT_RECEIPT" if goods_back else "DAMAGED_PRODUCT",
        "text_reason": "",
        "return_sn": refund.refund_id,
        "refund_amount": refund.amount,
        "currency": "IDR",
        "create_time": refund.refunded_at,
        "update_time": refund.refunded_at,
        "status": SHOPEE_REFUNDED,
        "due_date": 0,
        "tracking_number": "",
        "needs_logistics": goods_back,
        "amount_before_discount": refund.amount,
        "user": {"username": "sim-buyer", "email": "", "portrait": ""},
        "item": items,
        "order_sn": order.order_id,
        "return_ship_due_date": 0,
        "return_seller_due_date": 0,
    }


def tiktok_return(order: SimOrder, refund: SimRefund) -> Json:
    """One element of the returns search's ``return_orders``: one return line item per unit, amounts as text."""
    items = []
    for part in refund.lines:
        line = order.lines[part.line]
        base, extra = divmod(part.amount, part.quantity)
        for unit in range(part.quantity):
            amount = str(base + (1 if unit < extra else 0))
            items.append(
                {
                    "return_line_item_id": f"{refund.refund_id}{part.line:02d}{unit:02d}",
                    "order_line_item_id": f"{line.item_no}{unit:02d}",
                    "product_name": line.listing.sku,
                    "sku_id": line.listing.channel_sku_id or "",
                    "sku_name": "",
                    "seller_sku": line.listing.sku,
                    "refund_amount": {"currency": "IDR", "refund_total": amount, "refund_subtotal": amount},
                }
            )
    total = str(refund.amount)
    return {
        "return_id": refund.refund_id,
        "order_id": order.order_id,
        "return_type": "RETURN_AND_REFUND" if refund.reason == "return" else "REFUND",
        "return_status": TIKTOK_REFUNDED,
        "role": "BUYER",
        "create_time": refund.refunded_at,
        "update_time": refund.refunded_at,
        "refund_amount": {
            "currency": "IDR",
            "refund_total": total,
            "refund_subtotal": total,
            "refund_shipping_fee": "0",
            "refund_tax": "0",
        },
        "return_line_items": items,
    }


def add_return_routes(
    app: FastAPI,
    state: SimState,
    shopee: tuple[Callable[[Request, str], str], Callable[[str], Exception], Callable[[Json], Json]],
    tiktok: tuple[Callable[[Request, str], Awaitable[str]], Callable[[str], Exception], Callable[[Json], Json]],
) -> None:
    """Mount the returns endpoints; ``shopee``/``tiktok`` are each (authenticate → shop id, bad request error,
    success envelope) of :func:`sim.api.create_app`."""
    shopee_auth, shopee_bad, shopee_ok = shopee
    tiktok_auth, tiktok_bad, tiktok_ok = tiktok

    def returns_of(channel: Channel, shop_id: str) -> list[tuple[SimOrder, SimRefund]]:
        return [(o, r) for o in state.orders(channel) if o.shop_id == shop_id for r in o.refunds]

    def number(request: Request, name: str, default: int | None = None) -> int:
        raw = request.query_params.get(name)
        if raw in (None, "") and default is not None:
            return default
        if raw is None or not raw.isdigit():
            raise shopee_bad(f"parameter {name} must be a whole number")
        return int(raw)

    @app.get("/shopee/api/v2/returns/get_return_list")
    async def shopee_return_list(request: Request) -> Json:
        shop_id = shopee_auth(request, "/api/v2/returns/get_return_list")
        page, size = number(request, "page_no"), min(number(request, "page_size"), 100)
        start, end = number(request, "update_time_from", 0), number(request, "update_time_to", 2**62)
        found = [(o, r) for o, r in returns_of(Channel.SHOPEE, shop_id) if start <= r.refunded_at <= end]
        chunk = found[page * size : (page + 1) * size]
        more = (page + 1) * size < len(found)
        return shopee_ok({"more": more, "return": [shopee_return(o, r) for o, r in chunk]})

    @app.get("/shopee/api/v2/returns/get_return_detail")
    async def shopee_return_detail(request: Request) -> Json:
        shop_id = shopee_auth(request, "/api/v2/returns/get_return_detail")
        return_sn = request.query_params.get("return_sn") or ""
        for order, refund in returns_of(Channel.SHOPEE, shop_id):
            if refund.refund_id == return_sn:
                return shopee_ok(shopee_return(order, refund))
        raise shopee_bad(f"return not found: {return_sn!r}")

    @app.post("/tiktok_shop/return_refund/202309/returns/search")
    async def tiktok_returns_search(request: Request) -> Json:
        shop_id = await tiktok_auth(request, "/return_refund/202309/returns/search")
        try:
            wanted = json.loads(await request.body() or b"{}").get("order_ids") or []
            orders = {str(i) for i in wanted}
        except (ValueError, AttributeError) as exc:
            raise tiktok_bad(f"bad search body: {exc}") from None
        size = min(int(request.query_params.get("page_size") or 20), 100)
        token = request.query_params.get("page_token") or "0"
        offset = int(token) if token.isdigit() else 0
        found = [(o, r) for o, r in returns_of(Channel.TIKTOK_SHOP, shop_id) if not orders or o.order_id in orders]
        chunk = found[offset : offset + size]
        more = offset + size < len(found)
        return tiktok_ok(
            {
                "return_orders": [tiktok_return(o, r) for o, r in chunk],
                "next_page_token": str(offset + size) if more else "",
                "total_count": len(found),
            }
        )
