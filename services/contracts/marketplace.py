"""Canonical marketplace events produced by the gateway (one shape whatever the channel)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field, model_validator

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
    """The marketplace paid out (or reported the payout of) one order.

    ``settlement_id`` names this settlement's *content*: the gateway derives it from the marketplace's id and a
    hash of the order and the money fields, so a later settlement or adjustment that a channel reports under a
    reused id gets an id of its own (and is published), while a re-fetch of the same answer is the same id.
    The amounts are the marketplace's current totals for ``marketplace_settlement_id``: a later event with the
    same marketplace id supersedes an earlier one (its difference is what is new).
    """

    order_key: OrderKey
    channel: Channel
    settlement_id: str = Field(description="Differs per distinct settlement content; use it in posting keys.")
    marketplace_settlement_id: str | None = Field(
        default=None, description="The channel's own settlement id, which some channels reuse; None before v1.1."
    )
    gross_amount: Rupiah
    fees: list[SettlementFee] = Field(default_factory=list)
    pph22_withheld: Rupiah = 0
    net_payout: Rupiah
    settled_at: datetime
    historical: bool = False
    invoice_number: str | None = Field(
        default=None,
        max_length=100,
        description="The marketplace's invoice number for this settlement, when the channel reports one: the PPh 22 "
        "withholding slip reference (PMK 37/2025).",
    )


class RefundLine(Payload):
    """One refunded order line: which listing (the ids the order's lines carry), how many units and how much.

    ``quantity`` is the units the refund covers (returned or compensated); ``amount`` the part of the refund
    attributed to this line by the marketplace, integer rupiah.
    """

    channel_product_id: str | None = None
    channel_sku_id: str | None = None
    seller_sku: str | None = Field(default=None, description="The seller's SKU as the marketplace lists it.")
    quantity: int = Field(gt=0)
    amount: Rupiah


class RefundReported(Payload):
    """A (partial or full) refund to the buyer of one order.

    Older producers send only ``amount``: no lines (the refund is not attributed to lines), nothing given back
    by the marketplace, not netted. The gateway fills every field it can read from the channel's returns API.
    """

    order_key: OrderKey
    channel: Channel
    refund_id: str
    amount: Rupiah = Field(gt=0, description="What the buyer got back in total.")
    reason: Literal["return", "cancellation", "partial", "other"] = "other"
    refunded_at: datetime
    lines: list[RefundLine] = Field(default_factory=list, description="Empty when the channel names no lines.")
    fees_returned: Rupiah = Field(default=0, description="Marketplace fees given back to the seller.")
    pph22_returned: Rupiah = Field(default=0, description="PPh 22 withholding given back to the seller.")
    netted_in_settlement: bool = Field(
        default=False, description="Already deducted from a settlement's net payout (do not pay it again)."
    )

    @model_validator(mode="after")
    def _lines_within_amount(self) -> RefundReported:
        if sum(line.amount for line in self.lines) > self.amount:
            raise ValueError("the lines' amounts exceed the refund's amount")
        return self
