"""Shopee client against the simulator's seller API, in-process."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from services.contracts.channels import Channel
from services.gateway.clients.base import ApiOrderLine, MarketplaceApiError
from services.gateway.clients.http import MarketplaceRefused
from services.gateway.clients.shopee import ShopeeClient
from services.gateway.fetching import Outcome, outcome_of
from sim.state import SimState
from tests.unit.sim.sim_support import (
    NOW,
    SETTINGS,
    add_order,
    fixed_clock,
    listings,
    simulator_app,
    tokens_for,
    transport,
)

SHOP = listings(Channel.SHOPEE)[0].shop_id


def client(state: SimState, *, key: str = SETTINGS.shopee_partner_key, at: float = NOW) -> ShopeeClient:
    app = simulator_app(state)
    return ShopeeClient(
        "http://127.0.0.1:8090/shopee",
        SETTINGS.shopee_partner_id,
        key,
        tokens_for(app, "shopee", SHOP),
        transport=transport(app),
        clock=fixed_clock(at),
    )


async def test_order_detail_lines_status_and_gross() -> None:
    state = SimState()
    add_order(state, Channel.SHOPEE, "261101ABCDEF01", ["UNPAID", "READY_TO_SHIP"], lines=((2, 25_000), (1, 65_000)))
    two = listings(Channel.SHOPEE, 2)
    order = await client(state).order_detail(SHOP, "261101ABCDEF01")
    assert order.channel == "shopee" and order.order_id == "261101ABCDEF01" and order.shop_id == SHOP
    assert order.raw_status == "READY_TO_SHIP"
    assert order.update_time == datetime.fromtimestamp(NOW - 3_600 + 60, tz=UTC)
    assert order.lines == (
        ApiOrderLine(two[0].channel_product_id, None, 2, 25_000),
        ApiOrderLine(two[1].channel_product_id, None, 1, 65_000),
    )
    assert order.gross_amount == 115_000


async def test_settlement_none_before_and_escrow_after() -> None:
    state = SimState()
    add_order(state, Channel.SHOPEE, "261101ABCDEF02", ["UNPAID", "READY_TO_SHIP"])
    shopee = client(state)
    assert await shopee.settlement(SHOP, "261101ABCDEF02") is None

    done = add_order(state, Channel.SHOPEE, "261101ABCDEF03", ["UNPAID", "READY_TO_SHIP", "COMPLETED"], settle=True)
    settlement = await shopee.settlement(SHOP, "261101ABCDEF03")
    assert settlement is not None and done.settlement is not None
    assert settlement.gross_amount == 50_000
    assert settlement.fees == {k: v for k, v in done.settlement.fees.items() if v}
    assert set(settlement.fees) <= {"commission_fee", "service_fee", "seller_transaction_fee", "campaign_fee"}
    assert settlement.pph22_withheld == 250  # 0.5 % of 50,000
    assert settlement.net_payout + sum(settlement.fees.values()) + settlement.pph22_withheld == 50_000
    assert settlement.settled_at == datetime.fromtimestamp(done.settlement.settled_at, tz=UTC)


async def test_orders_updated_between_pages_and_window() -> None:
    state = SimState()
    for n in range(130):
        add_order(state, Channel.SHOPEE, f"261101WIN{n:05d}", ["UNPAID"], start=NOW - 10_000 + n)
    shopee = client(state)
    start = datetime.fromtimestamp(NOW - 10_000 + 10, tz=UTC)
    end = datetime.fromtimestamp(NOW - 10_000 + 120, tz=UTC)
    found = await shopee.orders_updated_between(SHOP, start, end)
    assert [o.order_id for o in found] == [f"261101WIN{n:05d}" for n in range(10, 120)]


async def test_bad_signature_is_an_api_error_naming_shopee_error() -> None:
    state = SimState()
    add_order(state, Channel.SHOPEE, "261101ABCDEF04", ["UNPAID"])
    with pytest.raises(MarketplaceApiError, match=r"HTTP 403: error_sign"):
        await client(state, key="wrong-key").order_detail(SHOP, "261101ABCDEF04")


async def test_stale_timestamp_is_rejected() -> None:
    state = SimState()
    add_order(state, Channel.SHOPEE, "261101ABCDEF05", ["UNPAID"])
    with pytest.raises(MarketplaceApiError, match="timestamp expired"):
        await client(state, at=NOW - 3_600).order_detail(SHOP, "261101ABCDEF05")


async def test_unknown_order_inside_a_200_is_refused_not_parked() -> None:
    """The simulator answers an unknown order as Shopee reports business errors: HTTP 200 with ``error`` set. It is
    a refusal (the delivery is dead-lettered with the reason), not an outage (it would be parked for ever)."""
    state = SimState()
    for call in (client(state).order_detail, client(state).settlement):
        with pytest.raises(MarketplaceRefused, match="error_not_found") as refused:
            await call(SHOP, "261101NOSUCH00")
        assert refused.value.status == 200
        assert outcome_of(refused.value) is Outcome.REFUSED


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        ("error_not_found", Outcome.REFUSED),
        ("error_order_not_found", Outcome.REFUSED),
        ("error_server", Outcome.UNAVAILABLE),
        ("error_busy", Outcome.UNAVAILABLE),
        ("error_auth", Outcome.UNAVAILABLE),
    ],
)
async def test_an_error_inside_a_200_is_refused_only_for_the_not_found_class(error: str, outcome: Outcome) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"error": error, "message": "m", "request_id": "r", "response": None})

    shopee = ShopeeClient(
        "http://127.0.0.1:8090/shopee",
        SETTINGS.shopee_partner_id,
        SETTINGS.shopee_partner_key,
        tokens_for(simulator_app(SimState()), "shopee", SHOP),
        transport=httpx.MockTransport(answer),
        clock=fixed_clock(NOW),
    )
    with pytest.raises(MarketplaceApiError, match=error) as failed:
        await shopee.settlement(SHOP, "261101ANY00001")
    assert outcome_of(failed.value) is outcome


async def test_refunds_are_read_from_the_returns_api_with_their_lines() -> None:
    state = SimState()
    add_order(state, Channel.SHOPEE, "261101REFUND01", ["UNPAID", "COMPLETED"], settle=True, refunds=[25_000])
    refunds = await client(state).refunds(SHOP, "261101REFUND01")
    assert [(r.refund_id, r.amount, r.reason, r.order_id, r.netted) for r in refunds] == [
        ("RF261101REFUND010", 25_000, "partial", "261101REFUND01", False)  # after the escrow: not netted
    ]
    first = listings(Channel.SHOPEE)[0]
    assert [(x.channel_product_id, x.quantity, x.amount) for x in refunds[0].lines] == [
        (first.channel_product_id, 1, 25_000)
    ]
    add_order(state, Channel.SHOPEE, "261101REFUND02", ["UNPAID"])
    assert await client(state).refunds(SHOP, "261101REFUND02") == []
