"""TikTok Shop client against the simulator's seller API, in-process."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.contracts.channels import Channel
from services.gateway.clients.base import ApiOrderLine, MarketplaceApiError
from services.gateway.clients.http import MarketplaceRefused
from services.gateway.clients.tiktok_shop import TikTokShopClient
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

SHOP = listings(Channel.TIKTOK_SHOP)[0].shop_id


def client(state: SimState, *, secret: str = SETTINGS.tiktok_app_secret) -> TikTokShopClient:
    app = simulator_app(state)
    return TikTokShopClient(
        "http://127.0.0.1:8090/tiktok_shop",
        SETTINGS.tiktok_app_key,
        secret,
        tokens_for(app, "tiktok_shop", SHOP),
        transport=transport(app),
        clock=fixed_clock(),
    )


async def test_unit_line_items_fold_into_quantities() -> None:
    state = SimState()
    add_order(
        state,
        Channel.TIKTOK_SHOP,
        "576000000000000001",
        ["UNPAID", "ON_HOLD"],
        lines=((3, 48_000), (1, 20_000)),
    )
    two = listings(Channel.TIKTOK_SHOP, 2)
    order = await client(state).order_detail(SHOP, "576000000000000001")
    assert order.raw_status == "ON_HOLD"
    assert order.lines == (
        ApiOrderLine(two[0].channel_product_id, two[0].channel_sku_id, 3, 48_000),
        ApiOrderLine(two[1].channel_product_id, two[1].channel_sku_id, 1, 20_000),
    )
    assert order.gross_amount == 164_000


async def test_statement_empty_before_settlement_then_absolute_fees() -> None:
    state = SimState()
    add_order(state, Channel.TIKTOK_SHOP, "576000000000000002", ["UNPAID", "ON_HOLD"])
    tts = client(state)
    assert await tts.settlement(SHOP, "576000000000000002") is None

    done = add_order(state, Channel.TIKTOK_SHOP, "576000000000000003", ["UNPAID", "COMPLETED"], settle=True)
    settlement = await tts.settlement(SHOP, "576000000000000003")
    assert settlement is not None and done.settlement is not None
    assert settlement.settlement_id == done.settlement.settlement_id
    assert settlement.gross_amount == 50_000
    assert all(v > 0 for v in settlement.fees.values())  # sent as negative strings, stored absolute
    assert settlement.fees == {k: v for k, v in done.settlement.fees.items() if v}
    assert settlement.pph22_withheld == 250
    assert settlement.net_payout == done.settlement.net
    assert settlement.settled_at == datetime.fromtimestamp(done.settlement.settled_at, tz=UTC)


async def test_search_by_update_window_pages() -> None:
    state = SimState()
    for n in range(120):
        add_order(state, Channel.TIKTOK_SHOP, f"5770000000000{n:05d}", ["UNPAID"], start=NOW - 5_000 + n)
    found = await client(state).orders_updated_between(
        SHOP, datetime.fromtimestamp(NOW - 5_000, tz=UTC), datetime.fromtimestamp(NOW - 5_000 + 101, tz=UTC)
    )
    assert [o.order_id for o in found] == [f"5770000000000{n:05d}" for n in range(101)]


async def test_wrong_secret_gives_tiktok_error_code() -> None:
    state = SimState()
    add_order(state, Channel.TIKTOK_SHOP, "576000000000000004", ["UNPAID"])
    with pytest.raises(MarketplaceApiError, match=r"HTTP 401: code 106001"):
        await client(state, secret="nope").order_detail(SHOP, "576000000000000004")


async def test_refunds_are_read_from_the_returns_search() -> None:
    state = SimState()
    add_order(
        state,
        Channel.TIKTOK_SHOP,
        "576000000000000005",
        ["UNPAID", "COMPLETED"],
        settle=True,
        refunds=[10_000],
    )
    refunds = await client(state).refunds(SHOP, "576000000000000005")
    assert [(r.amount, r.reason, r.netted) for r in refunds] == [(10_000, "partial", False)]
    assert [(x.channel_sku_id, x.quantity, x.amount) for x in refunds[0].lines] == [
        (listings(Channel.TIKTOK_SHOP)[0].channel_sku_id, 1, 10_000)
    ]


async def test_an_order_the_answer_does_not_hold_is_refused_not_retried() -> None:
    """TikTok Shop answers ids the shop does not have with a success (HTTP 200, code 0) that leaves them out: a
    refusal (its deliveries dead-lettered with the reason), not an outage (they would be parked for ever)."""
    state = SimState()
    add_order(state, Channel.TIKTOK_SHOP, "576000000000000009", ["UNPAID"])
    with pytest.raises(MarketplaceRefused, match="576000000000000008 is not in the answer") as refused:
        await client(state).order_detail(SHOP, "576000000000000008")
    assert outcome_of(refused.value) is Outcome.REFUSED


async def test_statements_by_time_and_the_orders_their_rows_pay_page_by_page() -> None:
    state = SimState()
    ids = [f"5761{n:014d}" for n in range(60)]
    for order_id in ids:
        add_order(state, Channel.TIKTOK_SHOP, order_id, ["UNPAID", "COMPLETED"], settle=True)
    add_order(state, Channel.TIKTOK_SHOP, "576199999999999999", ["UNPAID"])  # not settled: in no statement
    tiktok = client(state)
    day = datetime.fromtimestamp(NOW, UTC) - timedelta(days=1)
    (statement,) = await tiktok.statements_between(SHOP, day, datetime.fromtimestamp(NOW + 1, UTC))
    assert statement.statement_time <= datetime.fromtimestamp(NOW, UTC)
    assert await tiktok.statement_orders(SHOP, statement.statement_id) == ids  # 60 rows: two pages of 50
    after = statement.statement_time + timedelta(seconds=1)
    assert await tiktok.statements_between(SHOP, after, after + timedelta(days=1)) == []
    with pytest.raises(MarketplaceApiError, match="statement not found"):
        await tiktok.statement_orders(SHOP, "no-such-statement")
