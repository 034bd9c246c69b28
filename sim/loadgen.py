"""Canonical order lifecycles straight into Kafka: the direct mode of the demo and the load of `make bench`.

Deterministic for a seed. Each order gets a lifecycle — paid → shipped → delivered → completed → settled
(the common case), sometimes a partial refund after settlement, a cancellation after payment, or an unpaid
order that never pays — on Tokopedia, Shopee or TikTok Shop, from the catalogue's listings. Money is exact:
fees are whole rupiah, PPh 22 is 0.5% of gross rounded half up, net = gross − fees − PPh 22.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from infra.messaging.envelope import Envelope, make_envelope
from infra.messaging.topics import MARKETPLACE_ORDER_EVENTS, MARKETPLACE_SETTLEMENTS
from services.contracts.marketplace import (
    ORDER_STATUS_CHANGED,
    REFUND_REPORTED,
    SETTLEMENT_REPORTED,
    OrderLine,
    OrderStatusChanged,
    RefundReported,
    SettlementFee,
    SettlementReported,
)
from services.orders.catalogue import Catalogue, Listing

STATUSES = {
    "tokopedia": {"paid": "220", "shipped": "500", "delivered": "600", "completed": "700", "cancelled": "10"},
    "shopee": {
        "unpaid": "UNPAID",
        "paid": "READY_TO_SHIP",
        "shipped": "SHIPPED",
        "delivered": "TO_CONFIRM_RECEIVE",
        "completed": "COMPLETED",
        "cancelled": "CANCELLED",
    },
    "tiktok_shop": {
        "unpaid": "UNPAID",
        "paid": "AWAITING_SHIPMENT",
        "shipped": "IN_TRANSIT",
        "delivered": "DELIVERED",
        "completed": "COMPLETED",
        "cancelled": "CANCELLED",
    },
}
CHANNEL_WEIGHTS = {"shopee": 0.4, "tiktok_shop": 0.35, "tokopedia": 0.25}
T0 = datetime(2026, 11, 27, 0, 0, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Message:
    """One record to publish: topic, key, envelope."""

    topic: str
    envelope: Envelope


def pph22(gross: int) -> int:
    """PPh 22 at 0.5% of gross, in whole rupiah, rounded half up."""
    return (gross * 5 + 500) // 1000


def _fees(gross: int, channel: str) -> list[SettlementFee]:
    rate = {"shopee": (60, 20), "tiktok_shop": (50, 25), "tokopedia": (45, 15)}[channel]
    return [
        SettlementFee(fee_type="commission_fee", amount=gross * rate[0] // 1000),
        SettlementFee(fee_type="service_fee", amount=gross * rate[1] // 1000),
    ]


def lifecycles(
    catalogue: Catalogue, orders: int, seed: int = 7, start: datetime = T0, run_id: str = "b"
) -> Iterator[list[Message]]:
    """Yield, per order, its messages in marketplace time order."""
    rng = random.Random(seed)
    by_channel: dict[str, list[Listing]] = {
        ch: [x for x in catalogue.listings if x.channel.value == ch] for ch in CHANNEL_WEIGHTS
    }
    prices = {p.sku: p.list_price_idr for p in catalogue.products}
    channels = list(CHANNEL_WEIGHTS)
    weights = [CHANNEL_WEIGHTS[c] for c in channels]
    for n in range(orders):
        channel = rng.choices(channels, weights)[0]
        listing = rng.choice(by_channel[channel])
        qty = rng.choice((1, 1, 1, 2, 2, 3))
        price = prices[listing.sku]
        order_id = f"{run_id}{n:07d}"
        key = f"{channel}:{listing.shop_id}:{order_id}"
        t = start + timedelta(seconds=n)
        lines = [
            OrderLine(
                channel_product_id=listing.channel_product_id,
                channel_sku_id=listing.channel_sku_id,
                quantity=qty,
                unit_price=price,
            )
        ]
        gross = qty * price
        roll = rng.random()
        if roll < 0.05 and "unpaid" in STATUSES[channel]:
            path = ["unpaid"]
        elif roll < 0.12:
            path = ["paid", "cancelled"]
        else:
            path = ["paid", "shipped", "delivered", "completed"]
        out: list[Message] = []
        for step, state in enumerate(path):
            data = OrderStatusChanged(
                order_key=key,
                channel=channel,
                shop_id=listing.shop_id,
                order_id=order_id,
                raw_status=STATUSES[channel][state],
                update_time=t + timedelta(hours=step),
                lines=lines,
                gross_amount=gross,
            )
            out.append(Message(MARKETPLACE_ORDER_EVENTS, _env(ORDER_STATUS_CHANGED, key, data.model_dump(mode="json"))))
        if path[-1] == "completed":
            fees = _fees(gross, channel)
            tax = pph22(gross)
            settled = SettlementReported(
                order_key=key,
                channel=channel,
                settlement_id=f"S-{order_id}",
                gross_amount=gross,
                fees=fees,
                pph22_withheld=tax,
                net_payout=gross - sum(f.amount for f in fees) - tax,
                settled_at=t + timedelta(days=3),
            )
            out.append(
                Message(MARKETPLACE_SETTLEMENTS, _env(SETTLEMENT_REPORTED, key, settled.model_dump(mode="json")))
            )
            if rng.random() < 0.05:
                refund = RefundReported(
                    order_key=key,
                    channel=channel,
                    refund_id=f"R-{order_id}",
                    amount=max(1, gross // 4),
                    reason="partial",
                    refunded_at=t + timedelta(days=4),
                )
                out.append(Message(MARKETPLACE_SETTLEMENTS, _env(REFUND_REPORTED, key, refund.model_dump(mode="json"))))
        yield out


def _env(type_name: str, key: str, data: dict[str, object]) -> Envelope:
    return make_envelope(type=type_name, source="karya/loadgen", subject=key, data=data)


def interleave(per_order: Sequence[list[Message]], window: int = 50) -> list[Message]:
    """Publish order: lifecycles of ``window`` consecutive orders interleaved, each order's steps in order."""
    out: list[Message] = []
    for i in range(0, len(per_order), window):
        group = [list(x) for x in per_order[i : i + window]]
        while any(group):
            for msgs in group:
                if msgs:
                    out.append(msgs.pop(0))
    return out
