"""Tokopedia client against the simulator's seller API, in-process."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.contracts.channels import Channel
from services.gateway.clients.base import ApiOrderLine, MarketplaceApiError
from services.gateway.clients.tokopedia import TokopediaClient
from sim.state import SimState
from tests.unit.sim.sim_support import NOW, SETTINGS, add_order, listings, simulator_app, transport

SHOP = listings(Channel.TOKOPEDIA)[0].shop_id


def client(state: SimState, *, token: str = SETTINGS.tokopedia_api_token) -> TokopediaClient:
    return TokopediaClient(
        "http://127.0.0.1:8090/tokopedia",
        SETTINGS.tokopedia_fs_id,
        token,
        transport=transport(simulator_app(state)),
    )


@pytest.mark.parametrize("float_amounts", [False, True])
async def test_order_detail_accepts_integral_float_amounts(float_amounts: bool) -> None:
    state = SimState()
    add_order(
        state,
        Channel.TOKOPEDIA,
        "1234567890",
        ["220", "400"],
        lines=((2, 25_000),),
        float_amounts=float_amounts,
    )
    order = await client(state).order_detail(SHOP, "1234567890")
    assert order.raw_status == "400"
    assert order.lines == (ApiOrderLine(listings(Channel.TOKOPEDIA)[0].channel_product_id, None, 2, 25_000),)
    assert order.gross_amount == 50_000
    assert order.update_time == datetime.fromtimestamp(NOW - 3_600 + 60, tz=UTC)


async def test_income_null_until_settled() -> None:
    state = SimState()
    add_order(state, Channel.TOKOPEDIA, "1234567891", ["220", "600"])
    tokopedia = client(state)
    assert await tokopedia.settlement(SHOP, "1234567891") is None
    done = add_order(state, Channel.TOKOPEDIA, "1234567892", ["220", "700"], settle=True)
    settlement = await tokopedia.settlement(SHOP, "1234567892")
    assert settlement is not None and done.settlement is not None
    assert settlement.gross_amount == 50_000
    assert list(settlement.fees) == ["service_fee"]
    assert settlement.pph22_withheld == 250
    assert settlement.net_payout + settlement.fees["service_fee"] + 250 == 50_000


async def test_order_list_pages_from_one() -> None:
    state = SimState()
    for n in range(105):
        add_order(state, Channel.TOKOPEDIA, str(1_300_000_000 + n), ["220"], start=NOW - 9_000 + n)
    found = await client(state).orders_updated_between(
        SHOP, datetime.fromtimestamp(NOW - 9_000, tz=UTC), datetime.fromtimestamp(NOW, tz=UTC)
    )
    assert [o.order_id for o in found] == [str(1_300_000_000 + n) for n in range(105)]


async def test_bad_token_is_rejected_with_tokopedia_error() -> None:
    state = SimState()
    add_order(state, Channel.TOKOPEDIA, "1234567893", ["220"])
    with pytest.raises(MarketplaceApiError, match=r"HTTP 401: UNAUTHORIZED"):
        await client(state, token="stolen").order_detail(SHOP, "1234567893")


async def test_refunds_are_read_from_the_income_answer() -> None:
    state = SimState()
    add_order(state, Channel.TOKOPEDIA, "1234567894", ["220", "700"], settle=True, refunds=[5_000, 7_500])
    refunds = await client(state).refunds(SHOP, "1234567894")
    assert [r.amount for r in refunds] == [5_000, 7_500]
    assert refunds[0].refunded_at < refunds[1].refunded_at
