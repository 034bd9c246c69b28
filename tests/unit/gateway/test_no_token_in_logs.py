"""No seller-API access token reaches the logs: httpx logs every request's full URL (Shopee carries
``access_token`` in the query) at INFO, so the gateway's logging keeps httpx and httpcore at WARNING explicitly,
whatever the service's level and even when the root logger is lowered (a debugging operator, pytest's caplog)."""

from __future__ import annotations

import logging

import pytest

from infra.logging import configure_logging
from services.contracts.channels import Channel
from services.gateway.clients.shopee import ShopeeClient
from sim.state import SimState
from tests.unit.sim.sim_support import SETTINGS, add_order, fixed_clock, listings, simulator_app, tokens_for, transport

SHOP = listings(Channel.SHOPEE)[0].shop_id


@pytest.mark.parametrize("level", ["INFO", "DEBUG"])
async def test_client_calls_log_no_url_with_the_access_token(level: str, capsys: pytest.CaptureFixture[str]) -> None:
    state = SimState()
    add_order(state, Channel.SHOPEE, "261101LOGS0001", ["UNPAID", "COMPLETED"], settle=True, refunds=[5_000])
    app = simulator_app(state)
    tokens = tokens_for(app, "shopee", SHOP)
    token = (await tokens.access("shopee", SHOP)).access_token
    root = logging.getLogger()
    saved = root.level, list(root.handlers)
    try:
        configure_logging("gateway", level)
        root.setLevel(logging.DEBUG)  # as a debugging operator or pytest's caplog would
        logging.getLogger("karya").info("probe_line_seen")  # the capture works: this line must appear
        client = ShopeeClient(
            "http://127.0.0.1:8090/shopee",
            SETTINGS.shopee_partner_id,
            SETTINGS.shopee_partner_key,
            tokens,
            transport=transport(app),
            clock=fixed_clock(),
        )
        await client.order_detail(SHOP, "261101LOGS0001")
        assert len(await client.refunds(SHOP, "261101LOGS0001")) == 1
        await client.aclose()
    finally:
        root.setLevel(saved[0])
        root.handlers[:] = saved[1]
    logged = capsys.readouterr().err
    assert "probe_line_seen" in logged
    assert token not in logged and "access_token" not in logged
    assert "HTTP Request" not in logged
