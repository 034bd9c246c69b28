"""Refunds from the channels' returns APIs (pure parsing): Shopee v2 ``returns`` and TikTok Shop 202309
``return_refund``. Shapes as published (sources and uncertain points in docs/gateway.md, "Returns").

Only a refund that reached the buyer is reported: a return whose status is in the channel's refunded set
(configuration below; other statuses — requested, disputed, cancelled — are skipped and read again later).
Neither returns API says whether marketplace fees or PPh 22 come back to the seller, so both are reported as 0.
A refund counts as **netted** when the order's settlement was made at or after the refund (the payout already
deducted it); a refund after the payout is money the seller owes back (:func:`with_netting`).
Buyer details in an answer (Shopee ``user``, addresses) are never read.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from services.gateway.clients.base import ApiSettlement, MarketplaceApiError
from services.gateway.clients.parsing import get_list, get_mapping, get_str, objects
from services.gateway.clients.refunds import ApiRefund, ApiRefundLine
from services.gateway.values import parse_quantity, parse_rupiah, parse_time

__all__ = [
    "SHOPEE_REFUNDED_STATUSES",
    "TIKTOK_REFUNDED_STATUSES",
    "parse_shopee_return",
    "parse_tiktok_return",
    "split_by_weight",
    "with_netting",
]

#: Shopee return statuses in which the buyer has been refunded (uncertain: the v2 reference lists
#: ``REFUND_PAID``; an SDK's enum names ``COMPLETED``; both are accepted).
SHOPEE_REFUNDED_STATUSES = frozenset({"REFUND_PAID", "COMPLETED"})
#: TikTok Shop return statuses in which the refund is done (uncertain; configuration).
TIKTOK_REFUNDED_STATUSES = frozenset({"RETURN_OR_REFUND_REQUEST_COMPLETE"})


def split_by_weight(total: int, weights: Sequence[int]) -> list[int]:
    """``total`` split in proportion to ``weights`` (non-negative, not all 0): floors first, then one rupiah
    each to the largest remainders, ties to the earlier line; the parts sum to ``total`` exactly."""
    whole = sum(weights)
    if whole <= 0:
        raise ValueError("weights must be non-negative and not all zero")
    parts = [total * w // whole for w in weights]
    order = sorted(range(len(weights)), key=lambda i: (-(total * weights[i] % whole), i))
    for i in order[: total - sum(parts)]:
        parts[i] += 1
    return parts


def _fit(lines: list[ApiRefundLine], amount: int, where: str) -> tuple[ApiRefundLine, ...]:
    """The lines with amounts that fit the refund: kept when they add up to at most ``amount``, else (a
    partial refund priced by item) split over the lines in proportion to their amounts."""
    if not lines or sum(line.amount for line in lines) <= amount:
        return tuple(lines)
    if not any(line.amount for line in lines):
        raise MarketplaceApiError(f"{where}: lines carry no amounts to split {amount} over")
    shares = split_by_weight(amount, [line.amount for line in lines])
    return tuple(dataclasses.replace(line, amount=share) for line, share in zip(lines, shares, strict=True))


def parse_shopee_return(raw: Mapping[str, object], shop_id: str) -> ApiRefund | None:
    """One ``get_return_detail`` answer (or ``get_return_list`` element) as a refund; None unless refunded.

    ``refund_amount`` is the buyer's refund; ``item[]`` are the lines (``item_id``, ``model_id``,
    ``item_sku``/``variation_sku``, ``amount`` = quantity, ``refund_amount`` per item when Shopee gives it, else
    ``item_price`` × quantity, fitted to the refund). ``needs_logistics`` (goods travel back) makes it a return.
    """
    return_sn = get_str(raw, "return_sn", "shopee return")
    where = f"shopee return {return_sn}"
    status = get_str(raw, "status", where)
    if status not in SHOPEE_REFUNDED_STATUSES:
        return None
    amount = parse_rupiah(raw.get("refund_amount"), f"{where}.refund_amount")
    if amount == 0:
        return None
    lines: list[ApiRefundLine] = []
    for index, item in enumerate(objects(get_list(raw, "item", where), f"{where}.item")):
        at = f"{where}.item[{index}]"
        quantity = parse_quantity(item.get("amount"), f"{at}.amount")
        given = item.get("refund_amount")
        line_amount = (
            parse_rupiah(given, f"{at}.refund_amount")
            if given is not None
            else parse_rupiah(item.get("item_price"), f"{at}.item_price") * quantity
        )
        model = get_str(item, "model_id", at) if item.get("model_id") not in (None, 0, "0", "") else None
        sku = item.get("variation_sku") or item.get("item_sku")
        lines.append(
            ApiRefundLine(
                channel_product_id=get_str(item, "item_id", at),
                channel_sku_id=model,
                seller_sku=sku if isinstance(sku, str) and sku else None,
                quantity=quantity,
                amount=line_amount,
            )
        )
    return ApiRefund(
        channel="shopee",
        shop_id=shop_id,
        order_id=get_str(raw, "order_sn", where),
        refund_id=return_sn,
        amount=amount,
        reason="return" if raw.get("needs_logistics") is True else "partial",
        refunded_at=parse_time(raw.get("update_time"), f"{where}.update_time"),
        lines=_fit(lines, amount, where),
    )


def parse_tiktok_return(raw: Mapping[str, object], shop_id: str) -> ApiRefund | None:
    """One element of ``return_orders`` (returns search) as a refund; None unless refunded.

    ``refund_amount.refund_total`` (decimal text) is the buyer's refund; ``return_line_items[]`` are units (one
    per order line item), folded by (``sku_id``, ``seller_sku``) with their ``refund_amount.refund_subtotal``.
    ``return_type`` ``RETURN_AND_REFUND`` makes it a return, anything else (``REFUND``) a partial refund.
    """
    return_id = get_str(raw, "return_id", "tiktok_shop return")
    where = f"tiktok_shop return {return_id}"
    status = get_str(raw, "return_status", where)
    if status not in TIKTOK_REFUNDED_STATUSES:
        return None
    money = get_mapping(raw, "refund_amount", where)
    amount = parse_rupiah(money.get("refund_total"), f"{where}.refund_amount.refund_total")
    if amount == 0:
        return None
    folded: dict[tuple[str | None, str | None], tuple[int, int]] = {}
    items = objects(get_list(raw, "return_line_items", where), f"{where}.return_line_items")
    for index, item in enumerate(items):
        at = f"{where}.return_line_items[{index}]"
        sku_id = item.get("sku_id")
        seller_sku = item.get("seller_sku")
        key = (
            get_str(item, "sku_id", at) if sku_id not in (None, "") else None,
            seller_sku if isinstance(seller_sku, str) and seller_sku else None,
        )
        unit = get_mapping(item, "refund_amount", at)
        part = parse_rupiah(unit.get("refund_subtotal"), f"{at}.refund_amount.refund_subtotal")
        count, total = folded.get(key, (0, 0))
        folded[key] = (count + 1, total + part)
    lines = [
        ApiRefundLine(channel_product_id=None, channel_sku_id=sku, seller_sku=seller, quantity=n, amount=total)
        for (sku, seller), (n, total) in folded.items()
    ]
    return ApiRefund(
        channel="tiktok_shop",
        shop_id=shop_id,
        order_id=get_str(raw, "order_id", where),
        refund_id=return_id,
        amount=amount,
        reason="return" if raw.get("return_type") == "RETURN_AND_REFUND" else "partial",
        refunded_at=parse_time(raw.get("update_time"), f"{where}.update_time"),
        lines=_fit(lines, amount, where),
    )


def with_netting(refunds: Sequence[ApiRefund], settlement: ApiSettlement | None) -> list[ApiRefund]:
    """The refunds, each marked netted when the order was settled at or after it (the payout deducted it)."""
    settled_at = settlement.settled_at if settlement is not None else None
    return [dataclasses.replace(r, netted=settled_at is not None and r.refunded_at <= settled_at) for r in refunds]
