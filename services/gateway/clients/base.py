"""The interface every marketplace API client implements (used by the normaliser and the pollers)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol


class MarketplaceApiError(Exception):
    """The marketplace API answered with an error or an unusable body (the message says which)."""


@dataclass(frozen=True, slots=True)
class ApiOrderLine:
    """One line of an order as the marketplace's order-detail API lists it."""

    channel_product_id: str
    channel_sku_id: str | None
    quantity: int
    unit_price: int


@dataclass(frozen=True, slots=True)
class ApiOrder:
    """Order detail: status in the channel's own vocabulary, its update time, lines and product total."""

    channel: str
    shop_id: str
    order_id: str
    raw_status: str
    update_time: datetime
    lines: tuple[ApiOrderLine, ...]
    gross_amount: int


@dataclass(frozen=True, slots=True)
class ApiSettlement:
    """What the marketplace paid out for one order (Shopee escrow detail, TikTok Shop statement transaction)."""

    channel: str
    shop_id: str
    order_id: str
    settlement_id: str
    gross_amount: int
    fees: dict[str, int] = field(default_factory=dict)
    pph22_withheld: int = 0
    net_payout: int = 0
    settled_at: datetime | None = None


class MarketplaceClient(Protocol):
    """Read access to one channel's seller API."""

    channel: str

    async def order_detail(self, shop_id: str, order_id: str) -> ApiOrder:
        """The order as the marketplace sees it now."""
        ...

    async def settlement(self, shop_id: str, order_id: str) -> ApiSettlement | None:
        """The payout of one order, or None while it is not settled yet. A channel that pays an order in several
        payouts under their own ids (TikTok Shop statement rows) also has ``payouts()``: publish through
        :func:`settlements_of`."""
        ...

    async def orders_updated_between(self, shop_id: str, start: datetime, end: datetime) -> list[ApiOrder]:
        """Orders whose status changed in [start, end) (Blibli's order list; backstop polling elsewhere)."""
        ...


async def settlements_of(client: MarketplaceClient, shop_id: str, order_id: str) -> list[ApiSettlement]:
    """Every payout of one order, each to be published as a settlement of its own: the client's
    ``payouts()`` where it has one (TikTok Shop: one per statement row), else its one ``settlement()``."""
    several = getattr(client, "payouts", None)
    if several is not None:
        return list(await several(shop_id, order_id))
    one = await client.settlement(shop_id, order_id)
    return [] if one is None else [one]
