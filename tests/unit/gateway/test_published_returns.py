"""Refunds read from the channels' returns APIs: each recorded published answer (tests/contract/published/<channel>/
returns_*.json, each naming its source) parses into the expected refunds with their lines, and a return that has
not reached the buyer yet is skipped. Also the line fitting and the netting rule."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.gateway.canonical import refund_event
from services.gateway.clients.base import ApiSettlement, MarketplaceApiError
from services.gateway.clients.refunds import ApiRefund
from services.gateway.clients.returns import (
    parse_shopee_return,
    parse_tiktok_return,
    split_by_weight,
    with_netting,
)

PUBLISHED = Path(__file__).parents[2] / "contract" / "published"


def fixture(channel: str, name: str) -> dict[str, Any]:
    case: dict[str, Any] = json.loads((PUBLISHED / channel / f"returns_{name}.json").read_text())
    assert case["source"] and case["path"].startswith(("/api/v2/returns/", "/return_refund/202309/"))
    return case


def as_expected(refund: ApiRefund | None) -> dict[str, Any] | None:
    if refund is None:
        return None
    return {
        "refund_id": refund.refund_id,
        "order_id": refund.order_id,
        "amount": refund.amount,
        "reason": refund.reason,
        "refunded_at": refund.refunded_at.isoformat(),
        "lines": [
            {
                "channel_product_id": line.channel_product_id,
                "channel_sku_id": line.channel_sku_id,
                "seller_sku": line.seller_sku,
                "quantity": line.quantity,
                "amount": line.amount,
            }
            for line in refund.lines
        ],
    }


def test_shopee_return_detail_as_published() -> None:
    case = fixture("shopee", "get_return_detail")
    refund = parse_shopee_return(case["answer"]["response"], "77001")
    assert as_expected(refund) == case["expect"]
    assert refund is not None and refund.fees_returned == 0 and refund.pph22_returned == 0 and not refund.netted


def test_shopee_return_list_fits_item_prices_to_a_partial_refund_and_skips_unfinished_returns() -> None:
    case = fixture("shopee", "get_return_list")
    parsed = [as_expected(parse_shopee_return(raw, "77001")) for raw in case["answer"]["response"]["return"]]
    assert parsed == case["expect"]


def test_tiktok_returns_search_folds_unit_line_items_and_skips_unfinished_returns() -> None:
    case = fixture("tiktok_shop", "search")
    parsed = [as_expected(parse_tiktok_return(raw, "7494")) for raw in case["answer"]["data"]["return_orders"]]
    assert parsed == case["expect"]


def test_the_canonical_event_carries_lines_and_netting() -> None:
    case = fixture("tiktok_shop", "search")
    refund = parse_tiktok_return(case["answer"]["data"]["return_orders"][0], "7494")
    assert refund is not None
    event = refund_event(with_netting([refund], settlement(refund.refunded_at))[0], "tiktok_shop:7494:5764")
    assert event.netted_in_settlement and event.amount == 52000
    assert [(x.channel_sku_id, x.quantity, x.amount) for x in event.lines] == [("1729592969712207234", 2, 50000)]


def settlement(at: datetime | None) -> ApiSettlement:
    return ApiSettlement("tiktok_shop", "7494", "5764", "ST", 100_000, settled_at=at)


def test_netted_only_when_the_payout_came_at_or_after_the_refund() -> None:
    t = datetime(2026, 11, 1, tzinfo=UTC)
    refund = ApiRefund("tiktok_shop", "7494", "5764", "R1", 1000, "partial", t)
    assert with_netting([refund], settlement(t))[0].netted
    assert with_netting([refund], settlement(t + timedelta(days=1)))[0].netted
    assert not with_netting([refund], settlement(t - timedelta(seconds=1)))[0].netted
    assert not with_netting([refund], settlement(None))[0].netted
    assert not with_netting([refund], None)[0].netted


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda r: r.update(refund_amount=75000.5), "refund_amount"),
        (lambda r: r["item"][0].update(amount=0), "item[0].amount"),
        (lambda r: r.pop("order_sn"), "order_sn"),
    ],
)
def test_a_malformed_shopee_return_is_refused_naming_the_field(mutate: Any, field: str) -> None:
    raw = json.loads(json.dumps(fixture("shopee", "get_return_detail")["answer"]["response"]))
    mutate(raw)
    with pytest.raises((MarketplaceApiError, ValueError)) as caught:
        parse_shopee_return(raw, "77001")
    assert field in str(caught.value)


@given(total=st.integers(0, 10**9), weights=st.lists(st.integers(0, 10**7), min_size=1, max_size=8))
def test_split_by_weight_sums_exactly_and_stays_within_a_rupiah_of_the_share(total: int, weights: list[int]) -> None:
    if not any(weights):
        with pytest.raises(ValueError):
            split_by_weight(total, weights)
        return
    parts = split_by_weight(total, weights)
    assert sum(parts) == total
    whole = sum(weights)
    for part, weight in zip(parts, weights, strict=True):
        assert abs(part * whole - total * weight) < whole
