"""Refunds to buyers (full returns and partial refunds): the value every client's ``refunds()`` returns.

Shopee and TikTok Shop read them from their published returns APIs (:mod:`services.gateway.clients.returns`).
Tokopedia's legacy API publishes no returns endpoint Karya could confirm: its client still reads a ``refunds``
list inside the order-income answer (``[{"refund_id", "amount", "reason": "return"|"partial", "refund_time"}]``),
which only the simulator sends, so against the real Tokopedia no refund is reported (see docs/gateway.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from services.gateway.clients.base import MarketplaceApiError
from services.gateway.clients.parsing import get_str, objects
from services.gateway.values import parse_fee, parse_time

__all__ = ["ApiRefund", "ApiRefundLine", "parse_refunds"]

REASONS = frozenset({"return", "cancellation", "partial", "other"})


@dataclass(frozen=True, slots=True)
class ApiRefundLine:
    """The part of a refund the marketplace attributes to one order line (ids as the order's lines carry them)."""

    channel_product_id: str | None
    channel_sku_id: str | None
    seller_sku: str | None
    quantity: int
    amount: int


@dataclass(frozen=True, slots=True)
class ApiRefund:
    """One refund of ``amount`` rupiah to the buyer of an order, by line when the channel says which.

    ``fees_returned``/``pph22_returned``: what the marketplace gave back to the seller (0 where its returns API
    does not say); ``netted``: already deducted from the order's settlement payout.
    """

    channel: str
    shop_id: str
    order_id: str
    refund_id: str
    amount: int
    reason: str
    refunded_at: datetime
    lines: tuple[ApiRefundLine, ...] = field(default=())
    fees_returned: int = 0
    pph22_returned: int = 0
    netted: bool = False


def parse_refunds(container: Mapping[str, object], channel: str, shop_id: str, order_id: str) -> list[ApiRefund]:
    """The ``refunds`` list of a settlement answer (``[]`` when absent); amounts exact, reasons checked."""
    raw = container.get("refunds")
    if raw is None:
        return []
    where = f"{channel} refunds of {order_id}"
    if not isinstance(raw, list):
        raise MarketplaceApiError(f"{where}: expected a list")
    refunds = []
    for index, item in enumerate(objects(raw, where)):
        at = f"{where}[{index}]"
        amount = parse_fee(item.get("amount"), f"{at}.amount")
        if amount <= 0:
            raise MarketplaceApiError(f"{at}.amount: expected a positive amount, got {item.get('amount')!r}")
        reason = item.get("reason")
        refunds.append(
            ApiRefund(
                channel=channel,
                shop_id=shop_id,
                order_id=order_id,
                refund_id=get_str(item, "refund_id", at),
                amount=amount,
                reason=reason if isinstance(reason, str) and reason in REASONS else "other",
                refunded_at=parse_time(item.get("refund_time"), f"{at}.refund_time"),
            )
        )
    return refunds
