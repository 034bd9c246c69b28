"""Blibli client against the simulator's seller API, in-process: order list by window, paging, settlement."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.contracts.channels import Channel
from services.gateway.clients.base import ApiOrderLine, MarketplaceApiError
from services.gateway.clients.blibli import BlibliClient, BlibliCredentials
from sim.state import SimState
from tests.unit.sim.sim_support import (
    NOW,
    SETTINGS,
    add_order,
    fixed_clock,
    listings,
    simulator_app,
    transport,
)

STORE = listings(Channel.BLIBLI)[0].shop_id


def client(state: SimState, *, secret: str = SETTINGS.blibli_api_secret) -> BlibliClient:
    credentials = BlibliCredentials(
        SETTINGS.blibli_api_client_id, SETTINGS.blibli_api_client_key, SETTINGS.blibli_api_key, secret
    )
    return BlibliClient(
        "http://127.0.0.1:8090/blibli",
        credentials,
        transport=transport(simulator_app(state)),
        clock=fixed_clock(),
    )


def at(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


async def test_order_list_groups_items_and_pages_by_window() -> None:
    state = SimState()
    # 80 orders of two items each: 160 rows, i.e. two pages of 100 rows.
    for n in range(80):
        add_order(
            state,
            Channel.BLIBLI,
            f"12{n:09d}",
            ["FP"],
            lines=((1, 65_000), (2, 48_000)),
            start=NOW - 8_000 + n,
        )
    add_order(state, Channel.BLIBLI, "12999999999", ["FP"], start=NOW - 100)  # outside the window
    orders = await client(state).orders_updated_between(STORE, at(NOW - 8_000), at(NOW - 8_000 + 80))
    assert [o.order_id for o in orders] == [f"12{n:09d}" for n in range(80)]
    two = listings(Channel.BLIBLI, 2)
    assert orders[0].lines == (
        ApiOrderLine(two[0].channel_product_id, two[0].channel_sku_id, 1, 65_000),
        ApiOrderLine(two[1].channel_product_id, two[1].channel_sku_id, 2, 48_000),
    )
    assert orders[0].raw_status == "FP" and orders[0].gross_amount == 161_000


async def test_window_is_half_open() -> None:
    state = SimState()
    add_order(state, Channel.BLIBLI, "12000000001", ["FP"], start=NOW - 60)
    blibli = client(state)
    assert await blibli.orders_updated_between(STORE, at(NOW - 120), at(NOW - 60)) == []
    assert len(await blibli.orders_updated_between(STORE, at(NOW - 60), at(NOW - 59))) == 1


async def test_settlement_sums_items_once_delivered() -> None:
    state = SimState()
    add_order(state, Channel.BLIBLI, "12000000002", ["FP", "CX"], lines=((1, 65_000), (2, 48_000)))
    blibli = client(state)
    assert await blibli.settlement(STORE, "12000000002") is None
    done = add_order(
        state, Channel.BLIBLI, "12000000003", ["FP", "CX", "D"], lines=((1, 65_000), (2, 48_000)), settle=True
    )
    settlement = await blibli.settlement(STORE, "12000000003")
    assert settlement is not None and done.settlement is not None
    assert settlement.gross_amount == 161_000
    assert settlement.pph22_withheld == done.settlement.pph22 == 325 + 480  # rounded per item
    assert settlement.net_payout + sum(settlement.fees.values()) + settlement.pph22_withheld == 161_000
    order = await blibli.order_detail(STORE, "12000000003")
    assert order.raw_status == "D"


async def test_bad_signature_is_rejected_with_blibli_error() -> None:
    with pytest.raises(MarketplaceApiError, match=r"HTTP 401: ERR-PA401004: invalid Signature"):
        await client(SimState(), secret="wrong").order_detail(STORE, "12000000009")
