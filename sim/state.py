"""In-memory marketplace state: orders per channel with their status history, settlements and refunds.

The traffic generator (:mod:`sim.traffic`) writes it; the seller APIs (:mod:`sim.api`) read it. Statuses are
kept in each channel's own vocabulary as strings (Tokopedia's integers as decimal strings) with the unix
second at which the marketplace changed them. Everything runs on one event loop, so no locking.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from services.contracts.channels import Channel
from services.orders.catalogue import Listing
from sim.fees import SettlementAmounts

__all__ = ["SimLine", "SimOrder", "SimRefund", "SimRefundLine", "SimSettlement", "SimState"]


@dataclass(frozen=True, slots=True)
class SimLine:
    """One order line: a catalogue listing, a quantity and the unit price the buyer paid."""

    listing: Listing
    quantity: int
    unit_price: int
    item_no: str  # Blibli's orderItemNo; unique within the order

    @property
    def total(self) -> int:
        """Quantity × unit price."""
        return self.quantity * self.unit_price


@dataclass(frozen=True, slots=True)
class SimSettlement:
    """One payout of an order: a Shopee escrow, a Tokopedia income, a TikTok Shop statement row (the order's
    daily statement, or an adjustment days later), a Blibli item's settlement (``line``: the order line it pays).
    ``parts`` is one amount per order item when one payout covers several items, else one."""

    settlement_id: str
    settled_at: int
    parts: tuple[SettlementAmounts, ...]
    line: int | None = None

    @property
    def gross(self) -> int:
        """Gross settled, summed over the parts."""
        return sum(p.gross for p in self.parts)

    @property
    def fees(self) -> dict[str, int]:
        """Fees by name, summed over the parts."""
        total: dict[str, int] = {}
        for part in self.parts:
            for name, amount in part.fees.items():
                total[name] = total.get(name, 0) + amount
        return total

    @property
    def pph22(self) -> int:
        """PPh 22 withheld, summed over the parts."""
        return sum(p.pph22 for p in self.parts)

    @property
    def net(self) -> int:
        """Net payout, summed over the parts."""
        return sum(p.net for p in self.parts)


@dataclass(frozen=True, slots=True)
class SimRefundLine:
    """The part of a refund that covers one order line: ``line`` indexes the order's lines."""

    line: int
    quantity: int
    amount: int


@dataclass(frozen=True, slots=True)
class SimRefund:
    """Money returned to the buyer: a full return or a partial refund (``reason``: return | partial), by line.

    The channels' returns APIs list it; the lines' amounts add up to ``amount``."""

    refund_id: str
    amount: int
    reason: str
    refunded_at: int
    lines: tuple[SimRefundLine, ...] = ()


@dataclass(slots=True)
class SimOrder:
    """One order as the marketplace holds it."""

    channel: Channel
    shop_id: str
    order_id: str
    lines: tuple[SimLine, ...]
    created_at: int
    shipping_cost: int = 0
    invoice: str = ""
    float_amounts: bool = False  # Tokopedia sometimes sends amounts as JSON floats (25000.0)
    history: list[tuple[str, int]] = field(default_factory=list)
    settlements: list[SimSettlement] = field(default_factory=list)
    refunds: list[SimRefund] = field(default_factory=list)

    @property
    def status(self) -> str:
        """The current status (the channel's own code)."""
        return self.history[-1][0]

    @property
    def settlement(self) -> SimSettlement | None:
        """Every payout taken together (the first one's id, the last one's time), None before the first."""
        if len(self.settlements) < 2:
            return self.settlements[0] if self.settlements else None
        first = self.settlements[0]
        return SimSettlement(
            first.settlement_id,
            max(s.settled_at for s in self.settlements),
            tuple(p for s in self.settlements for p in s.parts),
        )

    @property
    def update_time(self) -> int:
        """Unix second of the latest change (status, settlement or refund)."""
        paid = (s.settled_at for s in self.settlements)
        return max([self.history[-1][1], *paid, *(r.refunded_at for r in self.refunds)])

    @property
    def status_time(self) -> int:
        """Unix second of the latest status change."""
        return self.history[-1][1]

    @property
    def gross(self) -> int:
        """Product total: Σ quantity × unit price."""
        return sum(line.total for line in self.lines)


class SimState:
    """All simulated orders, by channel and order id."""

    def __init__(self) -> None:
        self._orders: dict[Channel, dict[str, SimOrder]] = {c: {} for c in Channel}

    def create(self, order: SimOrder, raw_status: str, at: int) -> SimOrder:
        """Add a new order in its first status; raises ValueError if the order id is taken."""
        book = self._orders[order.channel]
        if order.order_id in book:
            raise ValueError(f"{order.channel.value} order {order.order_id} already exists")
        order.history.append((raw_status, at))
        book[order.order_id] = order
        return order

    def set_status(self, order: SimOrder, raw_status: str, at: int) -> None:
        """Record a status change at unix second ``at`` (never earlier than the previous change)."""
        if at < order.status_time:
            raise ValueError(f"{order.order_id}: status time {at} before {order.status_time}")
        order.history.append((raw_status, at))

    def settle(self, order: SimOrder, settlement: SimSettlement) -> None:
        """Record one payout of an order; raises ValueError if its id was paid before, or its line was settled."""
        for paid in order.settlements:
            if paid.settlement_id == settlement.settlement_id:
                raise ValueError(f"{order.order_id}: settlement {settlement.settlement_id} was made before")
            if settlement.line is not None and paid.line == settlement.line:
                raise ValueError(f"{order.order_id}: line {settlement.line} is already settled")
        order.settlements.append(settlement)

    def refund(self, order: SimOrder, refund: SimRefund) -> None:
        """Record a refund; refunds never exceed the product total."""
        if sum(r.amount for r in order.refunds) + refund.amount > order.gross:
            raise ValueError(f"{order.order_id}: refunds would exceed the product total {order.gross}")
        order.refunds.append(refund)

    def get(self, channel: Channel, order_id: str) -> SimOrder | None:
        """An order by channel and id."""
        return self._orders[channel].get(order_id)

    def find(self, channel: Channel, shop_id: str, order_id: str) -> SimOrder | None:
        """An order of one shop (None if absent or in another shop)."""
        order = self._orders[channel].get(order_id)
        return order if order is not None and order.shop_id == shop_id else None

    def updated_between(self, channel: Channel, shop_id: str, start_ms: int, end_ms: int) -> list[SimOrder]:
        """Orders of a shop whose latest change is in [start_ms, end_ms) (unix ms), oldest first."""
        found = [
            o
            for o in self._orders[channel].values()
            if o.shop_id == shop_id and start_ms <= o.update_time * 1000 < end_ms
        ]
        return sorted(found, key=lambda o: (o.update_time, o.order_id))

    def orders(self, channel: Channel | None = None) -> Iterator[SimOrder]:
        """Every order (of one channel), in creation order."""
        channels = [channel] if channel is not None else list(self._orders)
        for c in channels:
            yield from self._orders[c].values()

    def counts(self) -> Mapping[str, int]:
        """Orders per channel."""
        return {c.value: len(book) for c, book in self._orders.items() if book}
