"""Per-channel rules of the orders service: unpaid-order auto-cancel windows, kept as data.

The channel and status vocabulary (:class:`Channel`, :class:`OrderState`, each channel's status table and
:func:`map_status`) is shared with the gateway and lives in :mod:`services.contracts.channels`; it is re-exported
here for the orders code that reads it beside these rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Final

from services.contracts.channels import (
    BLIBLI_STATUSES,
    BUKALAPAK_STATUSES,
    DEFAULT_MAPPER,
    SHOPEE_STATUSES,
    STATUS_TABLES,
    TIKTOK_SHOP_STATUSES,
    TOKOPEDIA_STATUSES,
    Channel,
    RawStatus,
    StatusMapper,
    UnmappableStatus,
    map_status,
)

__all__ = [
    "AUTO_CANCEL_WINDOWS",
    "BLIBLI_STATUSES",
    "BUKALAPAK_STATUSES",
    "DEFAULT_MAPPER",
    "SHOPEE_STATUSES",
    "STATUS_TABLES",
    "TIKTOK_SHOP_STATUSES",
    "TOKOPEDIA_STATUSES",
    "Channel",
    "RawStatus",
    "StatusMapper",
    "UnmappableStatus",
    "auto_cancel_window",
    "map_status",
    "soft_reservation_expiry",
]


# How long an unpaid order holds a soft reservation. (uncertain) Marketplaces set the payment deadline per
# payment method (e.g. minutes for cards, a day or more for bank transfer and convenience-store payment);
# these defaults take the long end because expiring too early frees stock that a late payment then needs.
# Tokopedia's legacy API and blibli notify only paid orders and Bukalapak is import-only, so their windows
# matter only if an unpaid status is ever seen.
AUTO_CANCEL_WINDOWS: Final[Mapping[Channel, timedelta]] = MappingProxyType(
    {
        Channel.TOKOPEDIA: timedelta(hours=24),
        Channel.TIKTOK_SHOP: timedelta(hours=24),
        Channel.SHOPEE: timedelta(hours=24),
        Channel.BLIBLI: timedelta(hours=24),
        Channel.BUKALAPAK: timedelta(hours=24),
    }
)


def auto_cancel_window(channel: Channel, overrides: Mapping[Channel, timedelta] | None = None) -> timedelta:
    """The unpaid auto-cancel window of ``channel``: ``overrides`` first, then :data:`AUTO_CANCEL_WINDOWS`."""
    if overrides is not None and channel in overrides:
        return overrides[channel]
    return AUTO_CANCEL_WINDOWS[channel]


def soft_reservation_expiry(
    channel: Channel, placed_at: datetime, overrides: Mapping[Channel, timedelta] | None = None
) -> datetime:
    """When a soft reservation for an order placed at ``placed_at`` (timezone-aware) expires."""
    if placed_at.utcoffset() is None:
        raise ValueError(f"placed_at must be timezone-aware, got {placed_at!r}")
    return placed_at + auto_cancel_window(channel, overrides)
