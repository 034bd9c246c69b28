"""Events the gateway publishes to itself: verified raw webhook deliveries, before normalisation."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from services.contracts.base import OrderKey, Payload

DELIVERY_RECEIVED = "karya.gateway.delivery_received.v1"

WebhookChannel = Literal["tokopedia", "tiktok_shop", "shopee"]
WebhookType = Literal["order_notification", "order_status", "order_cancellation"]


class DeliveryReceived(Payload):
    """A webhook delivery whose signature was verified and which was stored once (by its dedupe key)."""

    delivery_id: int = Field(gt=0, description="Row id in gateway.raw_deliveries (it keeps the bytes).")
    channel: WebhookChannel
    webhook_type: WebhookType
    dedupe_key: str = Field(min_length=1, description="The channel's dedupe key of this delivery.")
    order_key: OrderKey | None = Field(default=None, description="marketplace:shop:order if known.")
    body: str = Field(description="The raw body as received, decoded as UTF-8.")
    received_at: datetime
