"""The traffic runner against a stand-in gateway that verifies signatures its own way."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.gateway.clients.base import settlements_of
from services.gateway.clients.blibli import BlibliClient, BlibliCredentials
from services.gateway.clients.shopee import ShopeeClient
from services.gateway.clients.tiktok_shop import TikTokShopClient
from services.orders.catalogue import Channel
from sim.fees import compute_settlement
from sim.plan import FaultRates, Plan, plan_day
from sim.settings import SimSettings
from sim.state import SimState
from sim.traffic import TrafficRunner, TrafficSummary
from sim.webhooks import RetryPolicy
from tests.unit.sim.sim_support import (
    NOW,
    SETTINGS,
    FakeGateway,
    catalogue,
    fixed_clock,
    simulator_app,
    tokens_for,
    transport,
)

DAY_START = NOW - 14 * 86_400


async def _run(orders: int, seed: int, faults: FaultRates, gateway: FakeGateway, state: SimState) -> TrafficSummary:
    runner = TrafficRunner(state, SETTINGS, transport=transport(gateway.app()), anchor=DAY_START)
    return await runner.run(plan_day(catalogue(), orders, seed, faults=faults))


async def test_a_day_is_delivered_signed_and_counted() -> None:
    gateway, state = FakeGateway(), SimState()
    faults = FaultRates(duplicate=0.1, tampered=1, wrong_secret=1)
    plan = plan_day(catalogue(), 200, 4, faults=faults)
    runner = TrafficRunner(state, SETTINGS, transport=transport(gateway.app()), anchor=DAY_START)
    seen: list[tuple[int, int]] = []
    summary = await runner.run(plan, on_progress=lambda done, total: seen.append((done, total)))

    deliveries = sum(1 for s in plan.steps if s.kind.value == "deliver")
    assert summary.webhooks_sent == deliveries == len(gateway.received)
    assert summary.webhooks_rejected == summary.total("expected_rejected") == 2
    assert summary.unexpected_rejections == 0 and summary.total("bad_copies_accepted") == 0
    assert summary.channels["blibli"].webhooks_sent == 0
    assert summary.total("lost") == sum(1 for s in plan.steps if s.kind.value == "lost")
    assert seen[-1] == (len(plan.steps), len(plan.steps)) and runner.progress.done == len(plan.steps)
    # Duplicates are byte-identical redeliveries of an accepted webhook.
    accepted = Counter(body for _, body, ok in gateway.received if ok)
    assert sum(n - 1 for n in accepted.values()) == summary.total("duplicates")
    # The marketplace state ends where each plan ends.
    for order in plan.orders:
        sim = state.get(order.channel, order.order_id)
        assert sim is not None and sim.status == order.statuses[-1].raw_status
        assert (sim.settlement is not None) == any(s.settle for s in order.statuses)
        assert sum(r.amount for r in sim.refunds) == sum(s.refund_amount for s in order.statuses)


async def test_webhook_bodies_follow_the_contract() -> None:
    gateway, state = FakeGateway(), SimState()
    await _run(120, 8, FaultRates(lost=0, late=0, out_of_order=0, duplicate=0), gateway, state)
    bodies: dict[str, list[dict[str, Any]]] = {}
    for route, body, _ in gateway.received:
        bodies.setdefault(route, []).append(json.loads(body))
    note = bodies["/webhooks/tokopedia/order-notification"][0]
    assert {"fs_id", "order_id", "invoice_ref_num", "shop_id", "order_status", "products", "amt"} <= set(note)
    assert note["order_status"] == 220 and note["fs_id"] == 13004
    assert {"ttl_product_price", "shipping_cost", "insurance_cost", "ttl_amount", "voucher_amount"} == set(note["amt"])
    tts = bodies["/webhooks/tiktok-shop/order-status"][0]
    assert tts["type"] == 1 and isinstance(tts["tts_notification_id"], str) and isinstance(tts["shop_id"], str)
    cancels = bodies.get("/webhooks/tiktok-shop/cancellation", [])
    assert all(b["type"] == 11 and "order_status" not in b["data"] for b in cancels)
    assert {b["data"]["cancel_status"] for b in cancels} <= {
        "CANCELLATION_REQUEST_PENDING",
        "CANCELLATION_REQUEST_COMPLETE",
    }
    status = bodies["/webhooks/tokopedia/order-status"][0]
    assert set(status) == {"fs_id", "order_status", "order_id", "shop_id", "warehouse_id", "product_details"}
    shopee = bodies["/webhooks/shopee/order-status"][0]
    assert shopee["code"] == 3 and set(shopee["data"]) == {"ordersn", "status", "update_time"}
    ids = [b["tts_notification_id"] for r, bs in bodies.items() if "tiktok" in r for b in bs]
    assert len(ids) == len(set(ids))


async def test_anchored_runs_are_reproducible() -> None:
    first, second = FakeGateway(), FakeGateway()
    faults = FaultRates(duplicate=0.1)
    await _run(100, 21, faults, first, SimState())
    await _run(100, 21, faults, second, SimState())
    assert Counter(first.received) == Counter(second.received)


async def test_transient_failures_are_retried_with_capped_backoff() -> None:
    gateway, delays = FakeGateway(fail_first=2), []

    async def no_sleep(seconds: float) -> None:
        delays.append(seconds)

    runner = TrafficRunner(
        SimState(),
        SETTINGS,
        transport=transport(gateway.app()),
        anchor=DAY_START,
        concurrency=1,
        retry=RetryPolicy(scale=1 / 600, max_delay_s=2.0),
        sleep=no_sleep,
    )
    summary = await runner.run(plan_day(catalogue(), 5, 2, mix={"tiktok_shop": 1}))
    assert summary.webhooks_rejected == 0
    assert summary.total("attempts") == summary.webhooks_sent + 2
    assert delays == [0.2, 2.0]  # TikTok Shop's +2 min and +30 min, scaled 1/600 and capped at 2 s


def test_webhooks_go_only_to_loopback() -> None:
    with pytest.raises(ValueError, match="loopback"):
        SimSettings(**{**SETTINGS.model_dump(), "sim_gateway_url": "http://10.1.2.3:8083"})


async def test_clients_read_what_the_traffic_produced() -> None:
    gateway, state = FakeGateway(), SimState()
    plan = plan_day(catalogue(), 150, 6, faults=FaultRates(lost=0, late=0, out_of_order=0, duplicate=0))
    await TrafficRunner(state, SETTINGS, transport=transport(gateway.app()), clock=lambda: NOW).run(plan)
    app = simulator_app(state)
    api = transport(app)
    shops = {o.shop_id for o in state.orders(Channel.SHOPEE)}
    tokens = tokens_for(app, "shopee", *shops)
    shopee = ShopeeClient(
        "http://127.0.0.1:8090/shopee", 2001234, "shopee-partner-key", tokens, transport=api, clock=lambda: NOW
    )
    settled = [o for o in state.orders(Channel.SHOPEE) if o.settlement is not None]
    assert settled
    for order in settled[:5]:
        got = await shopee.settlement(order.shop_id, order.order_id)
        assert got is not None and order.settlement is not None
        assert (got.gross_amount, got.net_payout, got.pph22_withheld) == (
            order.settlement.gross,
            order.settlement.net,
            order.settlement.pph22,
        )
    credentials = BlibliCredentials(
        SETTINGS.blibli_api_client_id, SETTINGS.blibli_api_client_key, "blibli-key", "blibli-api-secret-01"
    )
    blibli = BlibliClient("http://127.0.0.1:8090/blibli", credentials, transport=api, clock=lambda: NOW)
    everything = (datetime.fromtimestamp(NOW - 1, tz=UTC), datetime.fromtimestamp(NOW + 10**6, tz=UTC))
    expected = {(o.shop_id, o.order_id): o.status for o in state.orders(Channel.BLIBLI)}
    found: dict[tuple[str, str], str] = {}
    for shop in {shop for shop, _ in expected}:
        for api_order in await blibli.orders_updated_between(shop, *everything):
            found[(shop, api_order.order_id)] = api_order.raw_status
    assert found == expected


async def test_a_partial_refund_re_pushes_the_shopee_status_with_a_new_update_time() -> None:
    gateway = FakeGateway()
    no_faults = FaultRates(lost=0, late=0, out_of_order=0, duplicate=0)
    plan = plan_day(catalogue(), 400, 2, mix={"shopee": 1}, faults=no_faults)
    refunded = [o.order_id for o in plan.orders if o.scenario == "partial_refund"]
    assert refunded
    await TrafficRunner(SimState(), SETTINGS, transport=transport(gateway.app()), anchor=DAY_START).run(plan)
    pushes: dict[str, set[int]] = {}
    for _, body, _ok in gateway.received:
        data = json.loads(body)["data"]
        if data["status"] == "COMPLETED":
            pushes.setdefault(data["ordersn"], set()).add(data["update_time"])
    assert all(len(pushes[order_id]) == 2 for order_id in refunded)


async def test_a_refund_before_completion_is_netted_in_the_shopee_escrow() -> None:
    no_faults = FaultRates(lost=0, late=0, out_of_order=0, duplicate=0)
    plan = plan_day(catalogue(), 400, 2, mix={"shopee": 1}, faults=no_faults)
    netted = [o for o in plan.orders if o.scenario == "netted_refund"]
    assert netted
    state = SimState()
    await TrafficRunner(state, SETTINGS, transport=transport(FakeGateway().app()), clock=lambda: NOW).run(plan)
    later = NOW + 3600  # the run stamps each change a second after the last; read an hour on
    app = simulator_app(state, fixed_clock(later))
    shops = {o.shop_id for o in netted}
    shopee = ShopeeClient(
        "http://127.0.0.1:8090/shopee",
        2001234,
        "shopee-partner-key",
        tokens_for(app, "shopee", *shops),
        transport=transport(app),
        clock=lambda: later,
    )
    for planned in netted[:5]:
        order = state.get(Channel.SHOPEE, planned.order_id)
        assert order is not None and order.settlement is not None and len(order.refunds) == 1
        refund = order.refunds[0]
        # The escrow pays the itemised amounts less the refund it already deducted.
        settlement = order.settlement
        assert settlement.net == settlement.gross - sum(settlement.fees.values()) - settlement.pph22 - refund.amount
        (read,) = await shopee.refunds(planned.shop_id, planned.order_id)
        assert (read.amount, read.netted) == (refund.amount, True)
        got = await shopee.settlement(planned.shop_id, planned.order_id)
        assert got is not None and got.net_payout == settlement.net


async def test_orders_paid_twice_days_apart_read_as_the_clients_publish_them() -> None:
    """TikTok Shop: the daily statement, then an adjustment row days later (the reserve held back, or for some a
    tenth taken back), read as the order's cumulative totals under its first row's id. Blibli: the first item at
    delivery, the others on a later day; the client's totals (one settlement id per order) grow to the sum of
    every item."""
    gateway, state = FakeGateway(), SimState()
    plan = plan_day(catalogue(), 400, 6, faults=FaultRates(lost=0, late=0, out_of_order=0, duplicate=0))
    await TrafficRunner(state, SETTINGS, transport=transport(gateway.app()), anchor=DAY_START).run(plan)
    later = {(o.channel, o.order_id): o for o in plan.orders if any(s.later for s in o.statuses)}
    assert {channel for channel, _ in later} == {Channel.TIKTOK_SHOP, Channel.BLIBLI}
    app = simulator_app(state)
    tts_orders = [state.get(c, i) for c, i in later if c is Channel.TIKTOK_SHOP]
    tts_shops = {o.shop_id for o in tts_orders if o is not None}
    tts = TikTokShopClient(
        "http://127.0.0.1:8090/tiktok_shop",
        SETTINGS.tiktok_app_key,
        SETTINGS.tiktok_app_secret,
        tokens_for(app, "tiktok_shop", *tts_shops),
        transport=transport(app),
        clock=lambda: NOW,
    )
    clawed = 0
    for order in tts_orders:
        assert order is not None and len(order.settlements) == 2
        rows = await settlements_of(tts, order.shop_id, order.order_id)
        first = order.settlements[0].settlement_id
        assert [r.settlement_id for r in rows] == [first, first]  # the order's cumulative totals, row by row
        assert rows[0].settled_at is not None and rows[1].settled_at is not None
        assert rows[1].settled_at - rows[0].settled_at >= timedelta(days=1)
        whole = compute_settlement(order.gross, plan.orders[_index(plan, order.order_id)].fee_rates)
        row = order.settlements[1]
        taken = row.gross < 0  # a claw-back row: paid in whole, then a tenth taken back
        clawed += taken
        assert (rows[0].gross_amount == whole.gross) is taken
        assert rows[1].gross_amount == whole.gross + (row.gross if taken else 0)
        assert rows[1].pph22_withheld == whole.pph22 + (row.pph22 if taken else 0)
        refunded = sum(r.amount for r in order.refunds)
        assert rows[1].net_payout == whole.net - refunded + (row.net if taken else 0)
    assert 0 < clawed < len(tts_orders)
    blibli_orders = [state.get(c, i) for c, i in later if c is Channel.BLIBLI]
    assert any(o is not None and len(o.lines) > 1 for o in blibli_orders)
    for order in blibli_orders:
        assert order is not None
        days = sorted({s.settled_at for s in order.settlements})
        assert len(order.settlements) == len(order.lines) and len(days) == min(2, len(order.lines))


def _index(plan: Plan, order_id: str) -> int:
    return next(o.index for o in plan.orders if o.order_id == order_id)
