"""The published webhook bodies (``tests/contract/published``) through the running gateway: signed, posted,
stored, normalised on the real broker and database → one canonical status event each, with the raw status
and lines the unit contract test expects, valid against the published event schema.

Only the push ``timestamp`` of TikTok Shop and Shopee bodies is re-stamped to now (else the replay window
refuses them, as it should); every other byte is as recorded.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from infra.db.roles import RoleUrls
from services.gateway.clients.base import ApiOrder, ApiOrderLine
from tests.contract_validation import validate_published
from tests.integration.gateway_support import NOW, RunningGateway, outbox_events, post, running_gateway
from tests.integration.messaging_support import wait_for

pytestmark = pytest.mark.integration
FIXTURES = Path(__file__).parents[2] / "contract" / "published"
API_ANSWERS = ("returns_", "statement_")  # recorded seller-API answers, not webhook bodies


@pytest.fixture
async def gateway(database: RoleUrls, kafka_bootstrap: str) -> AsyncIterator[RunningGateway]:
    async with running_gateway(RunningGateway, database.gateway, kafka_bootstrap, "pp", max_attempts=3) as running:
        yield running


def _cases() -> list[dict[str, Any]]:
    webhooks = (p for p in FIXTURES.glob("*/*.json") if not p.name.startswith(API_ANSWERS))
    cases = [json.loads(p.read_text()) for p in sorted(webhooks)]
    # The notification first: it brings the Tokopedia order's lines, as on the marketplace.
    return sorted(cases, key=lambda c: c["webhook_type"] != "order_notification")


async def test_every_published_body_gives_its_canonical_event(gateway: RunningGateway) -> None:
    gw = gateway
    cases = _cases()
    for case in cases:  # trigger-only pushes: the order-detail API answers with one line
        body, channel = case["body"], case["channel"]
        if channel != "tokopedia":
            shop, order = case["expect"]["order_key"].split(":")[1:]
            line = ApiOrderLine("1729", None, 1, 30000)
            gw.fakes[channel].orders[order] = ApiOrder(channel, shop, order, "X", NOW, (line,), 30000)
    for n, case in enumerate(cases):
        body = dict(case["body"])
        if "timestamp" in body:
            body["timestamp"] = int(time.time()) - 60 + n
        answer = await post(gw.client, case["route"], json.dumps(body).encode())
        assert answer.status_code == 200, (case["route"], answer.text)

    bootstrap = gw.runtime.kafka.bootstrap_servers
    keys = {c["expect"]["order_key"] for c in cases}
    wanted = {k: sorted(c["expect"]["raw_status"] for c in cases if c["expect"]["order_key"] == k) for k in keys}
    events: dict[str, list[dict[str, Any]]] = {}

    async def all_published() -> bool:
        for key in keys:
            events[key] = await outbox_events(gw.engine, gw.topics.order_events, key, bootstrap)
        return all(sorted(e["data"]["raw_status"] for e in events[k]) == wanted[k] for k in keys)

    await wait_for(all_published, timeout=60, what="one canonical event per published body")
    for key, published in events.items():
        expected = [("1122747271", 1, 3000)] if key.startswith("tokopedia") else [("1729", 1, 30000)]
        for event in published:
            validate_published(json.dumps(event).encode())
            lines = [(ln["channel_product_id"], ln["quantity"], ln["unit_price"]) for ln in event["data"]["lines"]]
            # An order's lines are published once they are known (later statuses carry none).
            assert lines in ([], expected), (key, event["data"]["raw_status"], lines)
        assert any(e["data"]["lines"] for e in published), key
    assert [c for c in gw.fakes["tokopedia"].calls if c[0] == "detail"] == []  # lines came with the notification
