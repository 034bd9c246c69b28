"""Canonical marketplace events produced by the gateway (one shape whatever the channel)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from services.contracts.base import Channel, OrderKey, Payload, Rupiah

ORDER_STATUS_CHANGED = "karya.marketplace.order_status_changed.v1"
SETTLEMENT_REPORTED = "karya.marketplace.settlement_reported.v1"
REFUND_REPORTED = "karya.marketplace.refund_reported.v1"


class OrderLine(Payload):
    """One line as the marketplace lists it; the orders service maps the listing to our SKU."""

    channel_product_id: str = Field(min_length=1)
    channel_sku_id: str | None = None
    quantity: int = Field(gt=0)
    unit_price: Rupiah


class OrderStatusChanged(Payload):
    """A marketplace says an order is now in ``raw_status`` (as of ``update_time``)."""

    order_key: OrderKey
    channel: Channel
    shop_id: str
    order_id: str
    raw_status: str = Field(description="The channel's own status code, kept for audit.")
    update_time: datetime = Field(description="The marketplace's update time, used to ignore stale events.")
    lines: list[OrderLine] = Field(default_factory=list, description="Present when the channel sent them.")
    gross_amount: Rupiah | None = Field(default=None, description="Buyer-paid product total, when known.")
    historical: bool = Field(default=False, description="Imported from a past export (Bukalapak history).")


class SettlementFee(Payload):
    """A fee the marketplace deducted, by its own fee type."""

    fee_type: str = Field(pattern=r"^[a-z0-9_]+$")
    amount: Rupiah


class SettlementReported(Payload):
    """The marketplace paid out (or reported the payout of) one order."""

    order_key: OrderKey
    channel: Channel
    settlement_id: str
    gross_amount: Rupiah
    fees: list[SettlementFee] = Field(default_factory=list)
    pph22_withheld: Rupiah = 0
    net_payout: Rupiah
    settled_at: datetime
    historical: bool = False


class RefundReported(Payload):
    """A (partial or full) refund to the buyer of one order."""

    order_key: OrderKey
    channel: Channel
    refund_id: str
    amount: Rupiah = Field(gt=0)
    reason: Literal["return", "cancellation", "partial", "other"] = "other"
    refunded_at: datetime
