"""The marketplace vocabulary every service shares: the channels, the canonical order states, and what each
channel's own order statuses mean in those states.

This is vocabulary, not rules: the gateway checks an incoming status against these tables (an unmappable status is
dead-lettered there, with the raw delivery at hand), and the orders service folds the same mapped states with its
lifecycle rules (ranks, allowed edges, terminal states: :mod:`services.orders.domain.lifecycle`) and its unpaid
auto-cancel windows (:mod:`services.orders.domain.channels`).

Each table maps a marketplace's raw order status onto an :class:`OrderState`. Lookup ignores surrounding
whitespace and letter case; a purely numeric string is looked up as an integer (Tokopedia sends integers,
CSV exports and query strings give strings). Anything absent raises :class:`UnmappableStatus`, which the
gateway turns into a rejected delivery and the orders service into a parked order plus a dead-lettered event.

Entries marked (uncertain) come from second-hand documentation; override them by passing your own tables to
:class:`StatusMapper` rather than editing the code paths.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import ClassVar, Final

from infra.errors import quoted_code

__all__ = [
    "BLIBLI_STATUSES",
    "BUKALAPAK_STATUSES",
    "DEFAULT_MAPPER",
    "KARYA_STATUSES",
    "RETURN_COMPLETED",
    "SHOPEE_STATUSES",
    "STATUS_TABLES",
    "TIKTOK_SHOP_STATUSES",
    "TOKOPEDIA_STATUSES",
    "Channel",
    "OrderState",
    "RawStatus",
    "StatusMapper",
    "UnmappableStatus",
    "map_status",
]


class Channel(StrEnum):
    """Marketplaces Karya sells on (Bukalapak is historical only). The value is the name used in event keys,
    payloads and configuration."""

    TOKOPEDIA = "tokopedia"
    TIKTOK_SHOP = "tiktok_shop"
    SHOPEE = "shopee"
    BLIBLI = "blibli"
    BUKALAPAK = "bukalapak"


class OrderState(StrEnum):
    """Canonical order states shared by every channel. Their order and the moves between them are the orders
    service's lifecycle rules (:mod:`services.orders.domain.lifecycle`)."""

    PENDING_PAYMENT = "pending_payment"
    AWAITING_FULFILMENT = "awaiting_fulfilment"
    READY_TO_SHIP = "ready_to_ship"
    CANCEL_REQUESTED = "cancel_requested"
    CANCELLED = "cancelled"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    COMPLETED = "completed"
    SETTLED = "settled"
    RETURN_REQUESTED = "return_requested"
    RETURNED = "returned"
    REFUNDED = "refunded"


_S = OrderState

RawStatus = str | int


class UnmappableStatus(ValueError):
    """A raw status (or channel) has no canonical state. The order is parked, the event dead-lettered."""

    # The raw status is quoted only when it looks like a code: a marketplace field can carry anything.
    loggable_message: ClassVar[bool] = True

    def __init__(self, channel: str, raw_status: object) -> None:
        self.channel = channel
        self.raw_status = raw_status
        super().__init__(f"unmappable order status {quoted_code(raw_status)} for channel {quoted_code(channel)}")


# Tokopedia legacy fs API order_status codes. Webhooks fire from 220 (paid) on, so 100/103 are rarely seen.
TOKOPEDIA_STATUSES: Final[Mapping[RawStatus, OrderState]] = MappingProxyType(
    {
        # cancelled family
        0: _S.CANCELLED,  # seller cancelled
        3: _S.CANCELLED,  # rejected: out of stock
        5: _S.CANCELLED,  # cancelled: fraud
        6: _S.CANCELLED,  # rejected automatically
        10: _S.CANCELLED,  # rejected by seller
        15: _S.CANCELLED,  # instant cancel by buyer
        100: _S.PENDING_PAYMENT,  # order created
        103: _S.PENDING_PAYMENT,  # awaiting payment
        220: _S.AWAITING_FULFILMENT,  # payment verified
        221: _S.AWAITING_FULFILMENT,  # awaiting partner approval (uncertain)
        400: _S.AWAITING_FULFILMENT,  # seller accepted, preparing
        450: _S.READY_TO_SHIP,  # awaiting pickup
        # shipping family
        500: _S.SHIPPED,
        501: _S.SHIPPED,
        520: _S.SHIPPED,
        530: _S.SHIPPED,
        540: _S.SHIPPED,  # delivered to pickup point
        550: _S.RETURN_REQUESTED,  # parcel on its way back to the seller
        600: _S.DELIVERED,
        601: _S.RETURN_REQUESTED,  # buyer opened a case; 700 follows if it is rejected
        # 690-699 fraud review: paid, held by Tokopedia; stock stays allocated until cancel or finish
        **dict.fromkeys(range(690, 700), _S.AWAITING_FULFILMENT),
        700: _S.COMPLETED,  # finished
        701: _S.COMPLETED,  # assumed finished (uncertain)
    }
)

# TikTok Shop order_status (API 202309+). CANCEL and CANCELLED are both seen in the wild; both are final.
# Numeric codes are the legacy v1 equivalents (uncertain).
TIKTOK_SHOP_STATUSES: Final[Mapping[RawStatus, OrderState]] = MappingProxyType(
    {
        "UNPAID": _S.PENDING_PAYMENT,
        "ON_HOLD": _S.AWAITING_FULFILMENT,  # paid, in the buyer's free-cancellation window
        "AWAITING_SHIPMENT": _S.AWAITING_FULFILMENT,
        # Order-level: not every package has left, so nothing is consumed until IN_TRANSIT.
        "PARTIALLY_SHIPPING": _S.READY_TO_SHIP,
        "AWAITING_COLLECTION": _S.READY_TO_SHIP,
        "IN_TRANSIT": _S.SHIPPED,
        "DELIVERED": _S.DELIVERED,
        "COMPLETED": _S.COMPLETED,
        "CANCEL": _S.CANCELLED,
        "CANCELLED": _S.CANCELLED,
        # Webhook type 11 (cancellation status change) sends a cancel_status, no order_status (uncertain
        # spellings): requested; approved or done; rejected or withdrawn, which leaves the order awaiting shipment.
        "CANCELLATION_REQUEST_PENDING": _S.CANCEL_REQUESTED,
        "CANCELLATION_REQUEST_SUCCESS": _S.CANCELLED,
        "CANCELLATION_REQUEST_COMPLETE": _S.CANCELLED,
        "CANCELLATION_REQUEST_CANCEL": _S.AWAITING_FULFILMENT,
        "CANCELLATION_REQUEST_CANCELLED": _S.AWAITING_FULFILMENT,
        "CANCELLATION_REQUEST_REJECT": _S.AWAITING_FULFILMENT,
        "CANCELLATION_REQUEST_REJECTED": _S.AWAITING_FULFILMENT,
        100: _S.PENDING_PAYMENT,
        105: _S.AWAITING_FULFILMENT,
        111: _S.AWAITING_FULFILMENT,
        112: _S.READY_TO_SHIP,
        114: _S.READY_TO_SHIP,
        121: _S.SHIPPED,
        122: _S.DELIVERED,
        130: _S.COMPLETED,
        140: _S.CANCELLED,
    }
)

# Shopee order_status. Shopee's READY_TO_SHIP means "paid, arrange shipment"; PROCESSED means the shipping
# label exists and the parcel awaits pickup, which is the canonical READY_TO_SHIP.
SHOPEE_STATUSES: Final[Mapping[RawStatus, OrderState]] = MappingProxyType(
    {
        "UNPAID": _S.PENDING_PAYMENT,
        "READY_TO_SHIP": _S.AWAITING_FULFILMENT,
        "PROCESSED": _S.READY_TO_SHIP,
        "RETRY_SHIP": _S.READY_TO_SHIP,  # pickup failed, to be arranged again
        "SHIPPED": _S.SHIPPED,
        "TO_CONFIRM_RECEIVE": _S.DELIVERED,
        "COMPLETED": _S.COMPLETED,
        "IN_CANCEL": _S.CANCEL_REQUESTED,
        "CANCELLED": _S.CANCELLED,
        "TO_RETURN": _S.RETURN_REQUESTED,
    }
)

# blibli.com order item status codes (uncertain codes, per domain facts).
BLIBLI_STATUSES: Final[Mapping[RawStatus, OrderState]] = MappingProxyType(
    {
        "FP": _S.AWAITING_FULFILMENT,  # paid, to process
        "CX": _S.SHIPPED,
        # Blibli's order list has no later state than D and settles D orders, so D is where the sale is final
        # (uncertain: change to DELIVERED if Blibli turns out to report completion separately).
        "D": _S.COMPLETED,
        "X": _S.CANCELLED,
    }
)

# Bukalapak transaction states, for the historical seller-centre CSV import (uncertain). On Bukalapak
# "delivered" means the seller handed the parcel to the courier and "received" means the buyer got it.
# "remitted" (funds paid to the seller) maps to COMPLETED: SETTLED is set by the ledger when it posts the
# settlement, also for imported history.
BUKALAPAK_STATUSES: Final[Mapping[RawStatus, OrderState]] = MappingProxyType(
    {
        "pending": _S.PENDING_PAYMENT,
        "addressed": _S.PENDING_PAYMENT,
        "payment_chosen": _S.PENDING_PAYMENT,
        "confirm_payment": _S.PENDING_PAYMENT,
        "paid": _S.AWAITING_FULFILMENT,
        "accepted": _S.READY_TO_SHIP,
        "delivered": _S.SHIPPED,
        "received": _S.DELIVERED,
        "remitted": _S.COMPLETED,
        "rejected": _S.CANCELLED,
        "expired": _S.CANCELLED,
        "cancelled": _S.CANCELLED,
        "refunded": _S.REFUNDED,
    }
)

# Statuses Karya itself records on any channel's order: no marketplace reports that a returned parcel is back
# in the workshop, so the workshop does (`karya orders return-received`), and the units go to quarantine. Nor
# does any order status say that a return ended (Shopee stays TO_RETURN, TikTok Shop DELIVERED, Tokopedia 601):
# the gateway records RETURN_COMPLETED when the channel's returns API reports the return of every unit refunded,
# which the marketplaces do once the seller received the parcel (or let the confirmation window lapse).
RETURN_COMPLETED: Final = "KARYA_RETURN_COMPLETED"
KARYA_STATUSES: Final[Mapping[RawStatus, OrderState]] = MappingProxyType(
    {"KARYA_RETURN_RECEIVED": _S.RETURNED, RETURN_COMPLETED: _S.RETURNED}
)

STATUS_TABLES: Final[Mapping[Channel, Mapping[RawStatus, OrderState]]] = MappingProxyType(
    {
        Channel.TOKOPEDIA: {**TOKOPEDIA_STATUSES, **KARYA_STATUSES},
        Channel.TIKTOK_SHOP: {**TIKTOK_SHOP_STATUSES, **KARYA_STATUSES},
        Channel.SHOPEE: {**SHOPEE_STATUSES, **KARYA_STATUSES},
        Channel.BLIBLI: {**BLIBLI_STATUSES, **KARYA_STATUSES},
        Channel.BUKALAPAK: {**BUKALAPAK_STATUSES, **KARYA_STATUSES},
    }
)


def _normalise(raw: object) -> RawStatus | None:
    """Canonical lookup key: int for integers and numeric strings, upper-case stripped text otherwise."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw
    if isinstance(raw, str):
        text = raw.strip()
        if text.isascii() and text.isdigit():
            return int(text)
        return text.upper() if text else None
    return None


_HIT_CACHE_SIZE: Final = 4096


class StatusMapper:
    """Compiled status tables: ``mapper.map(channel, raw)`` gives the canonical state.

    Build one with custom tables to override the defaults; use :data:`DEFAULT_MAPPER` otherwise.
    """

    __slots__ = ("_hits", "_index")

    def __init__(self, tables: Mapping[Channel, Mapping[RawStatus, OrderState]] = STATUS_TABLES) -> None:
        index: dict[Channel, dict[RawStatus, OrderState]] = {}
        for channel, table in tables.items():
            compiled: dict[RawStatus, OrderState] = {}
            for raw, state in table.items():
                key = _normalise(raw)
                if key is None:
                    raise ValueError(f"status table for {channel.value}: invalid raw status {raw!r}")
                if compiled.get(key, state) is not state:
                    raise ValueError(f"status table for {channel.value}: {raw!r} maps to two states")
                compiled[key] = state
            index[channel] = compiled
        self._index = index
        # Successful lookups by (channel, raw type, raw): the same few statuses arrive on every event.
        self._hits: dict[tuple[str, type, object], OrderState] = {}

    def map(self, channel: Channel | str, raw_status: object) -> OrderState:
        """Canonical state of ``raw_status`` on ``channel``.

        Raises:
            UnmappableStatus: unknown channel, or a status absent from that channel's table.
        """
        kind = type(raw_status)
        if kind is str or kind is int:
            key = (channel, kind, raw_status)
            state = self._hits.get(key)
            if state is None:
                state = self._lookup(channel, raw_status)
                if len(self._hits) < _HIT_CACHE_SIZE:
                    self._hits[key] = state
            return state
        return self._lookup(channel, raw_status)

    def _lookup(self, channel: Channel | str, raw_status: object) -> OrderState:
        table = self._index.get(channel) if isinstance(channel, Channel) else None
        if table is None and isinstance(channel, str):
            try:
                table = self._index.get(Channel(channel.strip().lower()))
            except ValueError:
                table = None
        key = _normalise(raw_status)
        state = table.get(key) if table is not None and key is not None else None
        if state is None:
            raise UnmappableStatus(str(channel), raw_status)
        return state


DEFAULT_MAPPER: Final = StatusMapper()


def map_status(channel: Channel | str, raw_status: object) -> OrderState:
    """Canonical state for ``raw_status`` on ``channel`` using the default tables.

    Raises:
        UnmappableStatus: with ``channel`` and ``raw_status`` attributes and a message naming both.
    """
    return DEFAULT_MAPPER.map(channel, raw_status)
