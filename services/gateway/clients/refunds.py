"""Refunds to buyers (full returns and partial refunds), from the ``refunds`` list of settlement answers.

The channel contract has no refund endpoint yet. The simulator lists refunds inside the settlement answers
(Shopee escrow detail, TikTok Shop statement transactions, Tokopedia order income) as
``[{"refund_id", "amount", "reason": "return"|"partial", "refund_time"}]``; the clients' ``refunds()``
read that list. Real marketplaces publish refunds through their returns APIs instead (Shopee
``/api/v2/returns/get_return_list``, TikTok Shop ``/return_refund/202309/returns``): against them the list
is absent and ``refunds()`` returns ``[]`` until those endpoints are wired in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from services.gateway.clients.base import MarketplaceApiError
from services.gateway.clients.parsing import get_str, objects
from services.gateway.values import parse_fee, parse_time

__all__ = ["ApiRefund", "parse_refunds"]

REASONS = frozenset({"return", "cancellation", "partial", "other"})


@dataclass(frozen=True, slots=True)
class ApiRefund:
    """One refund of ``amount`` rupiah to the buyer of an order."""

    channel: str
    shop_id: str
    order_id: str
    refund_id: str
    amount: int
    reason: str
    refunded_at: datetime


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
