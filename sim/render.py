"""Channel-shaped JSON for simulated orders: webhook bodies and seller-API answers (pure, no I/O).

Shapes follow the channel contract. Shopee and TikTok Shop refunds are served by their returns APIs
(:mod:`sim.returns_api`); only Tokopedia's order-income answer still carries a ``refunds`` list (refund id,
amount, reason, time), a simulator extension its client reads with ``refunds()``.
"""

from __future__ import annotations

from typing import Any

from sim.fees import SettlementAmounts
from sim.state import SimOrder

__all__ = [
    "blibli_rows",
    "shopee_escrow",
    "shopee_order",
    "shopee_webhook",
    "tiktok_order",
    "tiktok_statement",
    "tiktok_webhook",
    "tokopedia_income",
    "tokopedia_order",
    "tokopedia_webhook",
]

Json = dict[str, Any]
TOKOPEDIA_WAREHOUSE_ID = 0  # the shop's main warehouse (Tokopedia sends 0 for shops without warehouses)
TIKTOK_CANCELLED = frozenset({"CANCELLED", "CANCEL"})


def _money(order: SimOrder, amount: int) -> int | float:
    """Tokopedia sends some orders' amounts as integral JSON floats (``25000.0``)."""
    return float(amount) if order.float_amounts else amount


def _refunds(order: SimOrder) -> list[Json]:
    return [
        {
            "refund_id": r.refund_id,
            "amount": r.amount,
            "reason": r.reason,
            "refund_time": r.refunded_at,
        }
        for r in order.refunds
    ]


# ---------------------------------------------------------------- Tokopedia


def tokopedia_order(order: SimOrder, fs_id: int) -> Json:
    """Single-order answer (``data``) and the base of the order-notification webhook."""
    products = [
        {
            "id": int(line.listing.channel_product_id),
            "Name": line.listing.sku,
            "quantity": line.quantity,
            "price": _money(order, line.unit_price),
        }
        for line in order.lines
    ]
    gross = order.gross
    return {
        "fs_id": fs_id,
        "order_id": int(order.order_id),
        "invoice_ref_num": order.invoice,
        "shop_id": int(order.shop_id),
        "order_status": int(order.status),
        "create_time": order.created_at,
        "update_time": order.update_time,
        "products": products,
        "amt": {
            "ttl_product_price": _money(order, gross),
            "shipping_cost": _money(order, order.shipping_cost),
            "insurance_cost": 0,
            "ttl_amount": _money(order, gross + order.shipping_cost),
            "voucher_amount": 0,
        },
    }


def tokopedia_webhook(order: SimOrder, fs_id: int, kind: str, reason: str = "") -> Json:
    """Webhook body of ``kind`` notification | status | cancellation, for the order's current status.

    Status as published (``fs_id, order_status, order_id, shop_id, warehouse_id, product_details``): no time.
    The cancellation body is not published; assumed the same with the buyer's ``reason`` (uncertain).
    """
    if kind == "notification":
        return tokopedia_order(order, fs_id)
    body: Json = {
        "fs_id": fs_id,
        "order_status": int(order.status),
        "order_id": int(order.order_id),
        "shop_id": int(order.shop_id),
        "warehouse_id": TOKOPEDIA_WAREHOUSE_ID,
        "product_details": [
            {
                "id": int(line.listing.channel_product_id),
                "Name": line.listing.sku,
                "notes": "",
                "currency": "Rp.",
                "price": _money(order, line.unit_price),
                "total_price": _money(order, line.unit_price * line.quantity),
                "quantity": line.quantity,
                "sku": line.listing.sku,
            }
            for line in order.lines
        ],
    }
    if kind == "cancellation":
        body["reason"] = reason or "Pesanan dibatalkan"
    return body


def tokopedia_income(order: SimOrder) -> Json:
    """Order income (``data``); amounts null-free, ``settled_at`` null until settled."""
    s = order.settlement
    return {
        "order_id": int(order.order_id),
        "gross_amount": s.gross if s else order.gross,
        "fees": s.fees if s else {},
        "pph22": s.pph22 if s else 0,
        "net_income": s.net if s else 0,
        "settled_at": s.settled_at if s else None,
        "refunds": _refunds(order),
    }


# ---------------------------------------------------------------- TikTok Shop


def tiktok_order(order: SimOrder) -> Json:
    """One order of the order-detail answer: one line item per unit, prices as decimal strings."""
    items = [
        {
            "id": f"{line.item_no}{unit:02d}",
            "product_id": line.listing.channel_product_id,
            "sku_id": line.listing.channel_sku_id or "",
            "seller_sku": line.listing.sku,
            "sale_price": str(line.unit_price),
            "currency": "IDR",
        }
        for line in order.lines
        for unit in range(line.quantity)
    ]
    return {
        "id": order.order_id,
        "status": order.status,
        "create_time": order.created_at,
        "update_time": order.update_time,
        "payment": {
            "currency": "IDR",
            "sub_total": str(order.gross),
            "shipping_fee": str(order.shipping_cost),
            "total_amount": str(order.gross + order.shipping_cost),
        },
        "line_items": items,
    }


def tiktok_statement(order: SimOrder) -> list[Json]:
    """Statement transactions of an order, one per statement that paid it (the daily statement, a later
    adjustment), each with its own id; empty until settled; fee deductions as negative strings. A claw-back row
    (negative gross and net) gives its fees and PPh 22 back: they are sent positive."""
    return [
        {
            "id": s.settlement_id,
            "order_id": order.order_id,
            "revenue_amount": str(s.gross),
            "platform_commission_amount": str(-s.fees.get("platform_commission", 0)),
            "transaction_fee_amount": str(-s.fees.get("transaction_fee", 0)),
            "affiliate_commission_amount": str(-s.fees.get("affiliate_commission", 0)),
            "withholding_tax_amount": str(-s.pph22),
            "settlement_amount": str(s.net),
            "statement_time": s.settled_at,
            "currency": "IDR",
        }
        for s in order.settlements
    ]


def tiktok_webhook(order: SimOrder, kind: str, notification_id: str, timestamp: int, reason: str = "") -> Json:
    """Type 1 (order status change) or type 11 (cancellation status change) body, as published.

    Type 11 carries no ``order_status``: ``cancel_status`` is ``CANCELLATION_REQUEST_COMPLETE`` once the order is
    cancelled, else ``CANCELLATION_REQUEST_PENDING`` (the buyer asked; the order still awaits shipment).
    ``reason`` is not part of the webhook (the cancel reason is read through the API).
    """
    data: Json
    if kind == "cancellation":
        done = order.status in TIKTOK_CANCELLED
        data = {
            "order_id": order.order_id,
            "cancellations_role": "BUYER",
            "cancel_status": "CANCELLATION_REQUEST_COMPLETE" if done else "CANCELLATION_REQUEST_PENDING",
            "cancel_id": f"{order.order_id}9",
            "create_time": order.status_time,
        }
    else:
        data = {
            "order_id": order.order_id,
            "order_status": order.status,
            "is_on_hold_order": order.status == "ON_HOLD",
            "update_time": order.update_time,
        }
    return {
        "type": 11 if kind == "cancellation" else 1,
        "tts_notification_id": notification_id,
        "shop_id": order.shop_id,
        "timestamp": timestamp,
        "data": data,
    }


# ---------------------------------------------------------------- Shopee


def shopee_order(order: SimOrder) -> Json:
    """One order of ``get_order_detail``; ``model_id`` 0 when the listing has no variant."""
    return {
        "order_sn": order.order_id,
        "order_status": order.status,
        "create_time": order.created_at,
        "update_time": order.update_time,
        "currency": "IDR",
        "total_amount": order.gross + order.shipping_cost,
        "item_list": [
            {
                "item_id": int(line.listing.channel_product_id),
                "model_id": int(line.listing.channel_sku_id or 0),
                "item_sku": line.listing.sku,
                "model_quantity_purchased": line.quantity,
                "model_discounted_price": line.unit_price,
            }
            for line in order.lines
        ],
    }


def shopee_escrow(order: SimOrder) -> Json:
    """``get_escrow_detail`` response; ``escrow_release_time`` 0 while not released."""
    s = order.settlement
    fees = s.fees if s else {}
    return {
        "order_sn": order.order_id,
        "order_income": {
            "order_original_price": s.gross if s else order.gross,
            "commission_fee": fees.get("commission_fee", 0),
            "service_fee": fees.get("service_fee", 0),
            "seller_transaction_fee": fees.get("seller_transaction_fee", 0),
            "campaign_fee": fees.get("campaign_fee", 0),
            "withholding_tax": s.pph22 if s else 0,
            "escrow_amount": s.net if s else 0,
            "escrow_release_time": s.settled_at if s else 0,
            # refunds the escrow deducted (made before its release), negative as Shopee reports it
            "seller_return_refund": -sum(r.amount for r in order.refunds if s and r.refunded_at <= s.settled_at),
        },
    }


def shopee_webhook(order: SimOrder, timestamp: int) -> Json:
    """Push code 3 (order status) body."""
    return {
        "data": {"ordersn": order.order_id, "status": order.status, "update_time": order.update_time},
        "shop_id": int(order.shop_id),
        "code": 3,
        "timestamp": timestamp,
    }


# ---------------------------------------------------------------- Blibli


def _blibli_item(order: SimOrder, index: int) -> tuple[SettlementAmounts, int] | None:
    """The settlement of item ``index`` and its time, None while not settled."""
    for s in order.settlements:
        if s.line == index or (s.line is None and index < len(s.parts)):
            return (s.parts[0] if s.line == index else s.parts[index]), s.settled_at
    return None


def blibli_rows(order: SimOrder) -> list[Json]:
    """Order-list rows, one per order item, with the item's settlement once paid out (items may be settled on
    different days)."""
    rows = []
    for index, line in enumerate(order.lines):
        paid = _blibli_item(order, index)
        rows.append(
            {
                "orderNo": order.order_id,
                "orderItemNo": line.item_no,
                "merchantSku": line.listing.channel_sku_id or line.listing.sku,
                "productItemCode": line.listing.channel_product_id,
                "storeCode": order.shop_id,
                "qty": line.quantity,
                "itemPrice": line.unit_price,
                "orderStatus": order.status,
                "orderStatusUpdatedDate": order.status_time * 1000,
                "orderDate": order.created_at * 1000,
                "settlement": None
                if paid is None
                else {
                    "gross": paid[0].gross,
                    "fees": dict(paid[0].fees),
                    "pph22": paid[0].pph22,
                    "net": paid[0].net,
                    "settledAt": paid[1] * 1000,
                },
            }
        )
    return rows
