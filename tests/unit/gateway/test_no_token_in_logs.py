"""No seller-API access token reaches the logs: httpx logs every request's full URL (Shopee carries
``access_token`` in the query) at INFO, so the gateway's logging keeps httpx and httpcore at WARNING explicitly,
whatever the service's level and even when the root logger is lowered (a debugging operator, pytest's caplog).

``configure_logging`` changes process-wide logging (structlog caches its output stream on first use), so the
client runs in a fresh interpreter, as in ``tests/unit/test_logging_config.py``: run in the test process, later
tests logged to pytest's closed capture stream."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]

SCRIPT = textwrap.dedent(
    """
    import asyncio, logging, sys

    from infra.logging import configure_logging
    from services.contracts.channels import Channel
    from services.gateway.clients.shopee import ShopeeClient
    from sim.state import SimState
    from tests.unit.sim.sim_support import (
        SETTINGS, add_order, fixed_clock, listings, simulator_app, tokens_for, transport,
    )

    async def main(level: str) -> None:
        shop = listings(Channel.SHOPEE)[0].shop_id
        state = SimState()
        add_order(state, Channel.SHOPEE, "261101LOGS0001", ["UNPAID", "COMPLETED"], settle=True, refunds=[5_000])
        app = simulator_app(state)
        tokens = tokens_for(app, "shopee", shop)
        token = (await tokens.access("shopee", shop)).access_token
        print(token)  # stdout: the test looks for it in stderr
        configure_logging("gateway", level)
        logging.getLogger().setLevel(logging.DEBUG)  # as a debugging operator or pytest's caplog would
        logging.getLogger("karya").info("probe_line_seen")  # the capture works: this line must appear
        client = ShopeeClient(
            "http://127.0.0.1:8090/shopee", SETTINGS.shopee_partner_id, SETTINGS.shopee_partner_key, tokens,
            transport=transport(app), clock=fixed_clock(),
        )
        await client.order_detail(shop, "261101LOGS0001")
        assert len(await client.refunds(shop, "261101LOGS0001")) == 1
        await client.aclose()

    asyncio.run(main(sys.argv[1]))
    """
)


@pytest.mark.parametrize("level", ["INFO", "DEBUG"])
def test_client_calls_log_no_url_with_the_access_token(level: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, level], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    token = done.stdout.strip().splitlines()[-1]
    logged = done.stderr
    assert token and "probe_line_seen" in logged
    assert token not in logged and "access_token" not in logged
    assert "HTTP Request" not in logged
