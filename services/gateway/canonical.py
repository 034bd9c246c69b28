"""Channel facts → canonical events (pure): status events, settlement events, and their emission keys.

Statuses are validated here with the shared status tables (:mod:`services.contracts.channels`) so that an
unmappable status is dead-lettered at the gateway with the raw delivery at hand; the orders service maps the
same status with the same tables when it folds the event. Whether a state makes settlement due
(:func:`classify`) is the gateway's own rule and stays here.

Settlement is fetched once an order reaches completion: Tokopedia 700, TikTok Shop and Shopee
``COMPLETED``, Bukalapak ``remitted`` and blibli.com ``D`` (blibli.com reports no later state and settles
delivered items, so ``D`` completes the sale) — all map to the canonical COMPLETED.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from services.contracts.base import order_key
from services.contracts.channels import OrderState, UnmappableStatus, map_status
from services.contracts.marketplace import (
    OrderLine,
    OrderStatusChanged,
    RefundLine,
    RefundReported,
    SettlementFee,
    SettlementReported,
)
from services.gateway.clients.base import ApiOrder, ApiSettlement
from services.gateway.clients.refunds import ApiRefund
from services.gateway.normalise.notices import Notice

__all__ = [
    "UnmappableStatus",
    "Verdict",
    "classify",
    "merge_api_orders",
    "notice_from_api",
    "refund_event",
    "settlement_content_id",
    "settlement_emission_key",
    "settlement_event",
    "status_emission_key",
    "status_event",
]

# Raw statuses that settle although their canonical state is not COMPLETED (none today; kept as configuration).
_SETTLES_AT: frozenset[tuple[str, str]] = frozenset()


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a raw status means to the gateway: the canonical state, and whether settlement is due."""

    state: OrderState
    completion: bool


def classify(channel: str, raw_status: str) -> Verdict:
    """The canonical state of ``raw_status`` and whether the order has reached completion.

    Raises:
        UnmappableStatus: a status (or channel) without a canonical state.
    """
    state = map_status(channel, raw_status)
    completion = state is OrderState.COMPLETED or (channel, raw_status.strip().upper()) in _SETTLES_AT
    return Verdict(state, completion)


def status_event(
    notice: Notice,
    *,
    lines: Sequence[OrderLine] = (),
    gross_amount: int | None = None,
    historical: bool = False,
) -> OrderStatusChanged:
    """The canonical status event of ``notice``; ``lines``/``gross_amount`` complete a trigger-only notice."""
    return OrderStatusChanged(
        order_key=notice.order_key,
        channel=notice.channel,
        shop_id=notice.shop_id,
        order_id=notice.order_id,
        raw_status=notice.raw_status,
        update_time=notice.update_time,
        lines=list(notice.lines or lines),
        gross_amount=notice.gross_amount if notice.gross_amount is not None else gross_amount,
        historical=historical,
    )


def api_lines(order: ApiOrder) -> list[OrderLine]:
    """The order-detail lines as canonical lines."""
    return [
        OrderLine(
            channel_product_id=line.channel_product_id,
            channel_sku_id=line.channel_sku_id or None,
            quantity=line.quantity,
            unit_price=line.unit_price,
        )
        for line in order.lines
    ]


def notice_from_api(order: ApiOrder) -> Notice:
    """What an order-detail (or order-list) answer says, as a notice with its lines."""
    return Notice(
        channel=order.channel,
        shop_id=order.shop_id,
        order_id=order.order_id,
        raw_status=order.raw_status,
        update_time=order.update_time,
        lines=tuple(api_lines(order)),
        gross_amount=order.gross_amount,
    )


def merge_api_orders(orders: Sequence[ApiOrder]) -> list[ApiOrder]:
    """One order per (shop, order, status): lines of per-item answers are joined, exact repeats dropped.

    blibli.com lists one row per order item; a client may return them as separate orders.
    """
    merged: dict[tuple[str, str, str], ApiOrder] = {}
    seen: set[ApiOrder] = set()
    for order in orders:
        if order in seen:
            continue
        seen.add(order)
        key = (order.shop_id, order.order_id, order.raw_status.strip().upper())
        have = merged.get(key)
        if have is None:
            merged[key] = order
            continue
        merged[key] = ApiOrder(
            channel=have.channel,
            shop_id=have.shop_id,
            order_id=have.order_id,
            raw_status=have.raw_status,
            update_time=max(have.update_time, order.update_time),
            lines=have.lines + order.lines,
            gross_amount=have.gross_amount + order.gross_amount,
        )
    return list(merged.values())


_FEE_CHARS = re.compile(r"[^a-z0-9]+")


def fee_type(name: str) -> str:
    """A channel's fee name as a fee type (``seller_transaction_fee``, ``service_fee``, …)."""
    return _FEE_CHARS.sub("_", name.strip().lower()).strip("_") or "fee"


def settlement_event(
    settlement: ApiSettlement, channel: str, key: str, *, historical: bool = False
) -> SettlementReported | None:
    """The canonical settlement, or None while the marketplace has not settled (no ``settled_at``).

    Fees are reported as positive amounts by their own type; zero fees are left out. The event's
    ``settlement_id`` is :func:`settlement_content_id` (the marketplace's id is kept as
    ``marketplace_settlement_id``), so a reused marketplace id with other money is a settlement of its own.

    Raises:
        pydantic.ValidationError: a negative amount.
    """
    if settlement.settled_at is None:
        return None
    fees: dict[str, int] = {}
    for name, amount in settlement.fees.items():
        if amount:
            fees[fee_type(name)] = fees.get(fee_type(name), 0) + abs(amount)
    pph22 = abs(settlement.pph22_withheld)
    return SettlementReported(
        order_key=key,
        channel=channel,
        settlement_id=settlement_content_id(
            key, settlement.settlement_id, settlement.gross_amount, fees, pph22, settlement.net_payout
        ),
        marketplace_settlement_id=settlement.settlement_id,
        gross_amount=settlement.gross_amount,
        fees=[SettlementFee(fee_type=k, amount=v) for k, v in sorted(fees.items())],
        pph22_withheld=pph22,
        net_payout=settlement.net_payout,
        settled_at=settlement.settled_at,
        historical=historical,
    )


def status_emission_key(key: str, raw_status: str, update_time: datetime) -> str:
    """Emission key of a status fact: the same status at the same marketplace time is published once."""
    return f"status|{key}|{raw_status.strip().upper()}|{update_time.isoformat()}"


def settlement_content_id(
    key: str, marketplace_id: str, gross: int, fees: Mapping[str, int], pph22: int, net: int
) -> str:
    """``<marketplace id>-<16 hex>``: the hex is SHA-256 of the order key and the money fields (gross, fees by
    type, PPh 22, net), so the same answer fetched twice has one id and any change of money a new one. The
    settlement time is left out: a re-read of an unchanged payout is the same settlement."""
    content = json.dumps([key, gross, sorted(fees.items()), pph22, net], separators=(",", ":"))
    return f"{marketplace_id}-{hashlib.sha256(content.encode()).hexdigest()[:16]}"


def settlement_emission_key(key: str, settlement_id: str) -> str:
    """Emission key of a settlement: one per order and settlement content id (:func:`settlement_content_id`)."""
    return f"settlement|{key}|{settlement_id}"


def polled_status_key(channel: str, shop_id: str, order_id: str, raw_status: str) -> str:
    """Emission key of a polled or imported status: (order, status), as blibli.com and Bukalapak dedupe."""
    return f"status|{order_key(channel, shop_id, order_id)}|{raw_status.strip().upper()}"


def refund_event(refund: ApiRefund, key: str) -> RefundReported:
    """The canonical refund of ``key``: total, lines, what the marketplace gave back and whether it was netted.

    Raises:
        pydantic.ValidationError: an invalid amount, or lines adding up to more than the refund.
    """
    return RefundReported(
        order_key=key,
        channel=refund.channel,
        refund_id=refund.refund_id,
        amount=refund.amount,
        reason=refund.reason,
        refunded_at=refund.refunded_at,
        lines=[
            RefundLine(
                channel_product_id=line.channel_product_id,
                channel_sku_id=line.channel_sku_id,
                seller_sku=line.seller_sku,
                quantity=line.quantity,
                amount=line.amount,
            )
            for line in refund.lines
        ],
        fees_returned=refund.fees_returned,
        pph22_returned=refund.pph22_returned,
        netted_in_settlement=refund.netted,
    )
