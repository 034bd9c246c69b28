"""Canonical facts: status verdicts, settlements, merged polled orders, poll windows, backstop decisions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.gateway.canonical import (
    UnmappableStatus,
    classify,
    merge_api_orders,
    settlement_event,
    status_emission_key,
)
from services.gateway.clients.base import ApiOrder, ApiOrderLine, ApiSettlement
from services.gateway.emit import SeenOrder
from services.gateway.pollers import backstop_status, next_window, polled_emissions
from services.orders.domain.lifecycle import OrderState

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)


def order(status: str, minutes: int = 0, *, channel: str = "shopee", lines: int = 1, oid: str = "SN1") -> ApiOrder:
    return ApiOrder(
        channel=channel,
        shop_id="77",
        order_id=oid,
        raw_status=status,
        update_time=T0 + timedelta(minutes=minutes),
        lines=tuple(ApiOrderLine(f"p{i}", None, 1, 25000) for i in range(lines)),
        gross_amount=25000 * lines,
    )


@pytest.mark.parametrize(
    ("channel", "raw", "state", "completion"),
    [
        ("tokopedia", "700", OrderState.COMPLETED, True),
        ("tokopedia", "220", OrderState.AWAITING_FULFILMENT, False),
        ("tiktok_shop", "COMPLETED", OrderState.COMPLETED, True),
        ("tiktok_shop", "CANCEL", OrderState.CANCELLED, False),
        ("shopee", "COMPLETED", OrderState.COMPLETED, True),
        ("shopee", "TO_CONFIRM_RECEIVE", OrderState.DELIVERED, False),
        ("blibli", "D", OrderState.COMPLETED, True),  # blibli settles delivered items: nothing comes later
        ("blibli", "FP", OrderState.AWAITING_FULFILMENT, False),
        ("bukalapak", "remitted", OrderState.COMPLETED, True),
    ],
)
def test_classify(channel: str, raw: str, state: OrderState, completion: bool) -> None:
    verdict = classify(channel, raw)
    assert (verdict.state, verdict.completion) == (state, completion)


@pytest.mark.parametrize(("channel", "raw"), [("shopee", "TELEPORTED"), ("tokopedia", "999"), ("ebay", "PAID")])
def test_unmappable_statuses_are_named(channel: str, raw: str) -> None:
    with pytest.raises(UnmappableStatus, match=raw):
        classify(channel, raw)


def test_settlement_event_only_when_settled_with_fees_as_positive_types() -> None:
    unsettled = ApiSettlement("shopee", "77", "SN1", "SN1", 50000, {"commission_fee": 2500}, 250, 47250, None)
    assert settlement_event(unsettled, "shopee", "shopee:77:SN1") is None
    settled = ApiSettlement(
        "tiktok_shop",
        "7494",
        "5763",
        "st-1",
        50000,
        {"Platform Commission": -2500, "transaction_fee_amount": 1000, "affiliate": 0},
        -250,
        46250,
        T0,
    )
    event = settlement_event(settled, "tiktok_shop", "tiktok_shop:7494:5763")
    assert event is not None
    assert [(f.fee_type, f.amount) for f in event.fees] == [
        ("platform_commission", 2500),
        ("transaction_fee_amount", 1000),
    ]
    assert (event.gross_amount, event.pph22_withheld, event.net_payout, event.settled_at) == (
        50000,
        250,
        46250,
        T0,
    )
    assert not event.historical


def test_merge_joins_item_rows_and_drops_exact_repeats() -> None:
    a = order("D", 1, channel="blibli", oid="O1")
    b = ApiOrder("blibli", "77", "O1", "D", T0 + timedelta(minutes=3), (ApiOrderLine("p9", "SKU9", 2, 1000),), 2000)
    merged = merge_api_orders([a, b, a])
    assert len(merged) == 1
    assert [ln.channel_product_id for ln in merged[0].lines] == ["p0", "p9"]
    assert (merged[0].gross_amount, merged[0].update_time) == (27000, T0 + timedelta(minutes=3))
    assert len(merge_api_orders([a, order("X", 2, channel="blibli", oid="O1")])) == 2  # two statuses, two facts


def test_polled_emissions_skip_unmappable_and_key_by_order_and_status() -> None:
    emissions, skipped = polled_emissions([order("FP", channel="blibli"), order("??", channel="blibli", oid="O2")])
    assert len(emissions) == 1 and len(skipped) == 1 and "O2" in skipped[0]
    assert emissions[0].emission_key == "status|blibli:77:SN1|FP"
    assert emissions[0].event.lines[0].unit_price == 25000


def test_status_emission_key_includes_marketplace_time() -> None:
    assert status_emission_key("a:b:c", "shipped", T0) != status_emission_key("a:b:c", "SHIPPED", T0 + timedelta(1))
    assert status_emission_key("a:b:c", "shipped", T0) == status_emission_key("a:b:c", "SHIPPED", T0)


def test_next_window_overlaps_and_is_bounded() -> None:
    now = T0
    overlap, window, lookback = timedelta(minutes=5), timedelta(hours=1), timedelta(days=1)
    first = next_window(None, now, overlap=overlap, max_window=window, lookback=lookback)
    assert first == (now - lookback, now - lookback + window)
    assert first is not None
    second = next_window(first[1], now, overlap=overlap, max_window=window, lookback=lookback)
    assert second == (first[1] - overlap, first[1] - overlap + window)
    caught_up = next_window(now - timedelta(minutes=1), now, overlap=overlap, max_window=window, lookback=lookback)
    assert caught_up == (now - timedelta(minutes=6), now)
    assert next_window(now + overlap, now, overlap=overlap, max_window=window, lookback=lookback) is None


def seen(raw: str, minutes: int, channel: str = "shopee") -> SeenOrder:
    return SeenOrder(
        f"{channel}:77:SN1",
        channel,
        "77",
        "SN1",
        raw,
        "x",
        T0 + timedelta(minutes=minutes),
        True,
        False,
        False,
    )


def test_backstop_publishes_only_a_newer_different_status() -> None:
    assert backstop_status(seen("SHIPPED", 10), order("SHIPPED", 20)) is None
    assert backstop_status(seen("SHIPPED", 10), order("READY_TO_SHIP", 5)) is None
    found = backstop_status(seen("SHIPPED", 10), order("COMPLETED", 20))
    assert found is not None and found.completion and found.event.raw_status == "COMPLETED"
    assert found.emission_key == status_emission_key("shopee:77:SN1", "COMPLETED", T0 + timedelta(minutes=20))
    blibli = backstop_status(seen("FP", 10, "blibli"), order("D", 20, channel="blibli"))
    assert blibli is not None and blibli.emission_key == "status|blibli:77:SN1|D"  # as the order-list poller
    with pytest.raises(UnmappableStatus):
        backstop_status(seen("SHIPPED", 10), order("LOST_IN_SPACE", 20))
