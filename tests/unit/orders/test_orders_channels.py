"""Channel status tables and auto-cancel windows (services/orders/domain/channels.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from infra.errors import quoted_code
from services.orders.domain.channels import (
    AUTO_CANCEL_WINDOWS,
    STATUS_TABLES,
    Channel,
    StatusMapper,
    UnmappableStatus,
    auto_cancel_window,
    map_status,
    soft_reservation_expiry,
)
from services.orders.domain.lifecycle import OrderState

S = OrderState


@pytest.mark.parametrize(
    ("channel", "raw", "state"),
    [
        # Tokopedia integer codes, including families
        (Channel.TOKOPEDIA, 0, S.CANCELLED),
        (Channel.TOKOPEDIA, 15, S.CANCELLED),
        (Channel.TOKOPEDIA, 100, S.PENDING_PAYMENT),
        (Channel.TOKOPEDIA, 103, S.PENDING_PAYMENT),
        (Channel.TOKOPEDIA, 220, S.AWAITING_FULFILMENT),
        (Channel.TOKOPEDIA, "220", S.AWAITING_FULFILMENT),
        (Channel.TOKOPEDIA, 400, S.AWAITING_FULFILMENT),
        (Channel.TOKOPEDIA, 450, S.READY_TO_SHIP),
        (Channel.TOKOPEDIA, 530, S.SHIPPED),
        (Channel.TOKOPEDIA, 550, S.RETURN_REQUESTED),
        (Channel.TOKOPEDIA, 600, S.DELIVERED),
        (Channel.TOKOPEDIA, 601, S.RETURN_REQUESTED),
        (Channel.TOKOPEDIA, 695, S.AWAITING_FULFILMENT),
        (Channel.TOKOPEDIA, 700, S.COMPLETED),
        # TikTok Shop
        (Channel.TIKTOK_SHOP, "UNPAID", S.PENDING_PAYMENT),
        (Channel.TIKTOK_SHOP, "ON_HOLD", S.AWAITING_FULFILMENT),
        (Channel.TIKTOK_SHOP, "AWAITING_SHIPMENT", S.AWAITING_FULFILMENT),
        (Channel.TIKTOK_SHOP, "PARTIALLY_SHIPPING", S.READY_TO_SHIP),
        (Channel.TIKTOK_SHOP, "AWAITING_COLLECTION", S.READY_TO_SHIP),
        (Channel.TIKTOK_SHOP, "IN_TRANSIT", S.SHIPPED),
        (Channel.TIKTOK_SHOP, "DELIVERED", S.DELIVERED),
        (Channel.TIKTOK_SHOP, "COMPLETED", S.COMPLETED),
        (Channel.TIKTOK_SHOP, "CANCEL", S.CANCELLED),
        (Channel.TIKTOK_SHOP, "CANCELLED", S.CANCELLED),
        # Shopee
        (Channel.SHOPEE, "UNPAID", S.PENDING_PAYMENT),
        (Channel.SHOPEE, "READY_TO_SHIP", S.AWAITING_FULFILMENT),
        (Channel.SHOPEE, "PROCESSED", S.READY_TO_SHIP),
        (Channel.SHOPEE, "RETRY_SHIP", S.READY_TO_SHIP),
        (Channel.SHOPEE, "SHIPPED", S.SHIPPED),
        (Channel.SHOPEE, "TO_CONFIRM_RECEIVE", S.DELIVERED),
        (Channel.SHOPEE, "COMPLETED", S.COMPLETED),
        (Channel.SHOPEE, "IN_CANCEL", S.CANCEL_REQUESTED),
        (Channel.SHOPEE, "CANCELLED", S.CANCELLED),
        (Channel.SHOPEE, "TO_RETURN", S.RETURN_REQUESTED),
        # blibli
        (Channel.BLIBLI, "FP", S.AWAITING_FULFILMENT),
        (Channel.BLIBLI, "CX", S.SHIPPED),
        (Channel.BLIBLI, "D", S.COMPLETED),
        (Channel.BLIBLI, "X", S.CANCELLED),
        # Bukalapak history
        (Channel.BUKALAPAK, "pending", S.PENDING_PAYMENT),
        (Channel.BUKALAPAK, "paid", S.AWAITING_FULFILMENT),
        (Channel.BUKALAPAK, "accepted", S.READY_TO_SHIP),
        (Channel.BUKALAPAK, "delivered", S.SHIPPED),
        (Channel.BUKALAPAK, "received", S.DELIVERED),
        (Channel.BUKALAPAK, "remitted", S.COMPLETED),
        (Channel.BUKALAPAK, "cancelled", S.CANCELLED),
        (Channel.BUKALAPAK, "refunded", S.REFUNDED),
    ],
)
def test_map_status(channel: Channel, raw: str | int, state: OrderState) -> None:
    assert map_status(channel, raw) is state


def test_lookup_ignores_case_whitespace_and_accepts_channel_names() -> None:
    assert map_status("shopee", " in_cancel ") is S.CANCEL_REQUESTED
    assert map_status(" TikTok_Shop", "in_transit") is S.SHIPPED
    assert map_status(Channel.BUKALAPAK, "Remitted") is S.COMPLETED
    assert map_status(Channel.TOKOPEDIA, " 700 ") is S.COMPLETED


@pytest.mark.parametrize(
    ("channel", "raw"),
    [
        (Channel.TOKOPEDIA, 999),
        (Channel.TOKOPEDIA, "PAID"),
        (Channel.TOKOPEDIA, True),  # bool is not a status code
        (Channel.SHOPEE, "LOST_IN_SPACE"),
        (Channel.SHOPEE, ""),
        (Channel.SHOPEE, None),
        (Channel.BLIBLI, 1.0),
        ("lazada", "UNPAID"),
    ],
)
def test_unmappable_status_names_channel_and_raw_value(channel: str, raw: object) -> None:
    """The raw value is kept on the error; its message quotes it only when it looks like a code."""
    with pytest.raises(UnmappableStatus) as info:
        map_status(channel, raw)
    assert info.value.channel == str(channel)
    assert info.value.raw_status == raw
    assert quoted_code(raw) in str(info.value) and repr(str(channel)) in str(info.value)


def test_every_channel_has_a_table_and_a_window_and_every_state_but_settled_is_reachable() -> None:
    assert set(STATUS_TABLES) == set(Channel) == set(AUTO_CANCEL_WINDOWS)
    reachable = {state for table in STATUS_TABLES.values() for state in table.values()}
    # SETTLED comes from the ledger; RETURNED only from Karya's own KARYA_RETURN_RECEIVED.
    assert set(OrderState) - reachable <= {S.SETTLED}


def test_custom_tables_override_the_defaults() -> None:
    mapper = StatusMapper({Channel.BLIBLI: {"FP": S.AWAITING_FULFILMENT, "PU": S.READY_TO_SHIP}})
    assert mapper.map(Channel.BLIBLI, "pu") is S.READY_TO_SHIP
    with pytest.raises(UnmappableStatus):
        mapper.map(Channel.SHOPEE, "UNPAID")


def test_table_with_conflicting_spellings_is_rejected() -> None:
    with pytest.raises(ValueError, match="maps to two states"):
        StatusMapper({Channel.SHOPEE: {"shipped": S.SHIPPED, "SHIPPED": S.DELIVERED}})


@given(st.sampled_from(Channel), st.one_of(st.text(max_size=12), st.integers(-5, 1000)))
def test_map_status_either_maps_or_raises_unmappable(channel: Channel, raw: str | int) -> None:
    try:
        state = map_status(channel, raw)
    except UnmappableStatus as exc:
        assert exc.channel == channel.value
    else:
        assert isinstance(state, OrderState)


def test_auto_cancel_windows() -> None:
    placed = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
    assert auto_cancel_window(Channel.SHOPEE) == timedelta(hours=24)
    override = {Channel.SHOPEE: timedelta(hours=2)}
    assert auto_cancel_window(Channel.SHOPEE, override) == timedelta(hours=2)
    assert auto_cancel_window(Channel.TIKTOK_SHOP, override) == AUTO_CANCEL_WINDOWS[Channel.TIKTOK_SHOP]
    assert soft_reservation_expiry(Channel.SHOPEE, placed, override) == placed + timedelta(hours=2)
    with pytest.raises(ValueError, match="timezone-aware"):
        soft_reservation_expiry(Channel.SHOPEE, placed.replace(tzinfo=None))
