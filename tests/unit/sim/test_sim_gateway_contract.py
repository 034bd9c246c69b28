"""Cross-check with the gateway: every genuine simulator webhook verifies under the gateway's own signature
schemes and parses into a notice with an order key; every bad copy fails verification."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest
from fastapi import FastAPI, Request, Response

from sim.plan import FaultRates, plan_day
from sim.state import SimState
from sim.traffic import TrafficRunner
from tests.unit.sim.sim_support import GATEWAY, SETTINGS, catalogue, transport

gateway_settings = pytest.importorskip("services.gateway.settings")
gateway_webhooks = pytest.importorskip("services.gateway.webhooks")
gateway_dedupe = pytest.importorskip("services.gateway.dedupe")
gateway_notices = pytest.importorskip("services.gateway.normalise.notices")


def _gateway_check_app(seen: Counter[str]) -> FastAPI:
    settings = gateway_settings.GatewaySettings(
        tokopedia_webhook_secret=SETTINGS.tokopedia_webhook_secret,
        tiktok_app_key=SETTINGS.tiktok_app_key,
        tiktok_app_secret=SETTINGS.tiktok_app_secret,
        shopee_partner_id=str(SETTINGS.shopee_partner_id),
        shopee_partner_key=SETTINGS.shopee_partner_key,
        blibli_api_key=SETTINGS.blibli_api_key,
        blibli_api_secret=SETTINGS.blibli_api_secret,
        gateway_public_url=GATEWAY,
    )
    app = FastAPI()
    for route in gateway_webhooks.webhook_routes(settings):

        async def endpoint(request: Request, route: object = route) -> Response:
            body = await request.body()
            if not route.scheme.verify(body, request.headers.get(route.scheme.header)):  # type: ignore[attr-defined]
                seen["rejected"] += 1
                return Response(status_code=401)
            keys = gateway_dedupe.delivery_keys(route.channel, route.webhook_type, body)  # type: ignore[attr-defined]
            arrived = datetime.now(UTC)  # a Tokopedia status body has no time: the gateway dates it by arrival
            notice = gateway_notices.parse_delivery(route.channel, route.webhook_type, body, arrived)  # type: ignore[attr-defined]
            assert keys.order_key is not None and notice is not None
            seen[keys.dedupe_key] += 1
            return Response(status_code=204 if route.empty_answer else 200)  # type: ignore[attr-defined]

        app.add_api_route(route.path, endpoint, methods=["POST"])
    return app


async def test_simulator_webhooks_pass_the_gateways_checks() -> None:
    seen: Counter[str] = Counter()
    plan = plan_day(catalogue(), 300, 13, faults=FaultRates(duplicate=0.05, tampered=2, wrong_secret=2))
    runner = TrafficRunner(SimState(), SETTINGS, transport=transport(_gateway_check_app(seen)), anchor=1_790_000_000)
    summary = await runner.run(plan)
    assert summary.unexpected_rejections == 0
    assert seen["rejected"] == summary.total("expected_rejected") == 4
    # Redeliveries of the same bytes share a dedupe key; distinct webhooks never do.
    assert sum(n - 1 for key, n in seen.items() if key != "rejected") == summary.total("duplicates")
