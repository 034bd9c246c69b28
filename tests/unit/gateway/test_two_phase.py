"""The normaliser's fetch phase, apart from its apply phase and any database: what it calls, how often, how many
at once, and how each API failure is classified (refused: a rejection; unavailable: parked; anything else:
raised by the apply phase); the HTTP layer's split of 4xx into refusals and unreachable answers; the retry windows."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from infra.messaging.consumer import InboundEvent
from infra.messaging.delivery import Delivery
from infra.messaging.envelope import make_envelope
from services.contracts.gateway import DELIVERY_RECEIVED
from services.gateway.app import arrival
from services.gateway.clients.base import ApiOrder, ApiOrderLine, ApiSettlement, MarketplaceApiError
from services.gateway.clients.http import JsonApi, MarketplaceRefused, MarketplaceUnavailable, build_http_client
from services.gateway.deps import GatewayDeps
from services.gateway.emit import GatewayTopics
from services.gateway.fetching import Outcome, outcome_of
from services.gateway.normaliser import Apply, Normaliser
from services.gateway.settings import GatewaySettings
from services.gateway.values import NonIntegralAmount

T = 1_764_000_000
SECRETS: dict[str, Any] = {
    "tokopedia_webhook_secret": "toko-secret-now-0001",
    "tiktok_app_key": "key",
    "tiktok_app_secret": "tts-secret-now-00001",
    "shopee_partner_id": "2001",
    "shopee_partner_key": "shopee-key-now-00001",
    "blibli_api_key": "blibli-key",
    "blibli_api_secret": "blibli-api-secret-01",
}
SETTINGS = GatewaySettings(**SECRETS, api_concurrency=2)


class Api:
    """A Shopee API double: per order, an answer or an error; counts calls and the most in flight at once."""

    channel = "shopee"

    def __init__(self, errors: dict[str, Exception]) -> None:
        self.errors = errors
        self.calls: list[tuple[str, str]] = []
        self.in_flight = self.most = 0

    async def _call(self, what: str, order_id: str) -> None:
        self.calls.append((what, order_id))
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        await asyncio.sleep(0.001)
        self.in_flight -= 1
        if order_id in self.errors:
            raise self.errors[order_id]

    async def order_detail(self, shop_id: str, order_id: str) -> ApiOrder:
        await self._call("detail", order_id)
        line = ApiOrderLine("P1", None, 2, 25_000)
        return ApiOrder("shopee", shop_id, order_id, "READY_TO_SHIP", datetime.now(UTC), (line,), 50_000)

    async def settlement(self, shop_id: str, order_id: str) -> ApiSettlement | None:
        await self._call("settlement", order_id)
        return None

    async def orders_updated_between(self, shop_id: str, start: datetime, end: datetime) -> list[ApiOrder]:
        return []


def _push(order_id: str, status: str = "READY_TO_SHIP") -> InboundEvent:
    body = {"data": {"ordersn": order_id, "status": status, "update_time": T}, "shop_id": 77001, "code": 3}
    data = {
        "delivery_id": 1,
        "channel": "shopee",
        "webhook_type": "order_status",
        "dedupe_key": f"d-{order_id}-{status}",
        "body": json.dumps(body | {"timestamp": T}),
        "received_at": datetime.fromtimestamp(T, UTC).isoformat(),
    }
    envelope = make_envelope(type=DELIVERY_RECEIVED, source="karya/tests", subject=order_id, data=data)
    return InboundEvent(envelope, Delivery("raw", 0, 1, b"k", envelope.to_bytes()))


async def _prepare(api: Api, events: list[InboundEvent]) -> Apply:
    normaliser = Normaliser(GatewayDeps(SETTINGS, {"shopee": api}), GatewayTopics(), "gateway")
    return await normaliser.prepare([arrival(e) for e in events])


async def test_the_fetch_phase_calls_each_order_once_bounded_and_keeps_every_outcome() -> None:
    api = Api(
        {
            "DOWN": MarketplaceUnavailable("shopee API GET /x: HTTP 503: simulated outage"),
            "GONE": MarketplaceRefused("shopee API GET /x: HTTP 404: error_not_found", 404),
            "ODD": NonIntegralAmount("amount: not whole rupiah"),
            "BUG": KeyError("x"),
        }
    )
    orders = ["OK1", "OK2", "DOWN", "GONE", "ODD", "BUG"]
    events = [_push(o) for o in orders] + [_push("OK1", "SHIPPED")]  # two pushes of one order: one call
    apply = await _prepare(api, events)
    fetched = apply.fetched
    assert sorted(api.calls) == sorted(("detail", o) for o in orders)
    assert api.most <= SETTINGS.api_concurrency
    assert set(fetched.details) == {"shopee:77001:OK1", "shopee:77001:OK2"}
    assert set(fetched.unavailable) == {"shopee:77001:DOWN"}
    assert set(fetched.refused) == {"shopee:77001:GONE", "shopee:77001:ODD"}
    assert set(fetched.failed) == {"shopee:77001:BUG"}
    reason, facts = fetched.refused["shopee:77001:GONE"]
    assert "MarketplaceRefused" in reason and facts["order_key"] == "shopee:77001:GONE"


async def test_a_completed_order_fetches_its_settlement_and_a_cancelled_one_nothing() -> None:
    api = Api({})
    await _prepare(api, [_push("DONE", "COMPLETED"), _push("GONE", "CANCELLED")])
    assert sorted(api.calls) == [("detail", "DONE"), ("settlement", "DONE")]


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (MarketplaceUnavailable("503"), Outcome.UNAVAILABLE),
        (MarketplaceApiError("an error inside a 2xx body"), Outcome.UNAVAILABLE),
        (MarketplaceRefused("404", 404), Outcome.REFUSED),
        (NonIntegralAmount("amount: not whole rupiah"), Outcome.REFUSED),
        (RuntimeError("a bug"), Outcome.FAILED),
    ],
)
def test_api_failures_are_classified_once(error: Exception, outcome: Outcome) -> None:
    assert outcome_of(error) is outcome


def _api(answer: httpx.Response | Exception) -> JsonApi:
    def handler(request: httpx.Request) -> httpx.Response:
        if isinstance(answer, Exception):
            raise answer
        return answer

    return JsonApi("shopee", build_http_client("http://api", 1.0, httpx.MockTransport(handler)), lambda body: None)


@pytest.mark.parametrize(
    ("answer", "kind"),
    [
        (httpx.Response(503, json={"error": "busy"}), MarketplaceUnavailable),
        (httpx.Response(500, text="oops"), MarketplaceUnavailable),
        (httpx.Response(429, json={}), MarketplaceUnavailable),
        (httpx.Response(401, json={}), MarketplaceUnavailable),
        (httpx.ConnectError("refused"), MarketplaceUnavailable),
        (httpx.ReadTimeout("slow"), MarketplaceUnavailable),
        (httpx.Response(404, json={"error": "error_not_found"}), MarketplaceRefused),
        (httpx.Response(400, json={"error": "error_param"}), MarketplaceRefused),
    ],
)
async def test_the_http_layer_tells_unreachable_from_refused(
    answer: httpx.Response | Exception, kind: type[MarketplaceApiError]
) -> None:
    api = _api(answer)
    with pytest.raises(kind):
        await api.request("GET", "/x")
    await api.aclose()


def test_retry_windows_are_per_channel_and_configurable(monkeypatch: pytest.MonkeyPatch) -> None:
    assert SETTINGS.api_retry_window_s("tiktok_shop") == 57_600.0
    assert SETTINGS.api_retry_window_s("shopee") == 86_400.0
    monkeypatch.setenv("KARYA_SHOPEE_API_RETRY_WINDOW_S", "3600")
    changed = GatewaySettings(**SECRETS)
    assert changed.api_retry_window_s("shopee") == 3_600.0
    assert changed.api_retry_window_s("tokopedia") == 86_400.0
