"""A round of parked-delivery retries that has to isolate orders (one order's apply fails with something that is
not the API's answer) dead-letters each refused delivery once, in the transaction of its own order, and keeps the
failing order parked for its next backoff — against the real database, with a marketplace API double.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from infra.db.engine import make_engine
from infra.db.roles import RoleUrls
from infra.db.unit_of_work import UnitOfWork
from infra.messaging.envelope import make_envelope
from services.contracts.gateway import DELIVERY_RECEIVED
from services.gateway.app import SCHEMA, parked_rejecter
from services.gateway.clients.base import ApiOrder, ApiSettlement
from services.gateway.clients.http import MarketplaceRefused
from services.gateway.deps import GatewayDeps
from services.gateway.emit import GatewayTopics
from services.gateway.normaliser import Normaliser
from services.gateway.parking import Arrival, Origin, park, retry_due
from tests.integration.gateway_support import gateway_settings, uid

pytestmark = pytest.mark.integration

T = 1_764_000_000


class Api:
    """A Shopee API double: refuses the orders in ``refused``, fails (not an API answer) for the others."""

    channel = "shopee"

    def __init__(self, refused: set[str]) -> None:
        self.refused = refused

    async def order_detail(self, shop_id: str, order_id: str) -> ApiOrder:
        if order_id in self.refused:
            raise MarketplaceRefused("shopee API GET /x: HTTP 404: error_not_found", 404)
        raise KeyError("a bug, not the API's answer")

    async def settlement(self, shop_id: str, order_id: str) -> ApiSettlement | None:
        return None

    async def orders_updated_between(self, shop_id: str, start: datetime, end: datetime) -> list[ApiOrder]:
        return []


def _arrival(order_id: str) -> Arrival:
    body = {"data": {"ordersn": order_id, "status": "READY_TO_SHIP", "update_time": T}, "shop_id": 77001, "code": 3}
    data = {
        "delivery_id": 1,
        "channel": "shopee",
        "webhook_type": "order_status",
        "dedupe_key": f"d-{order_id}",
        "body": json.dumps(body | {"timestamp": T}),
        "received_at": datetime.fromtimestamp(T, UTC).isoformat(),
    }
    envelope = make_envelope(type=DELIVERY_RECEIVED, source="karya/tests", subject=order_id, data=data)
    return Arrival(envelope, Origin("raw", 0, 1, order_id.encode(), envelope.to_bytes()))


RUN = uid()  # in every order id of this module, so its cleanup deletes only its own parked rows


@pytest.fixture
async def engine(database: RoleUrls) -> AsyncIterator[AsyncEngine]:
    """The gateway role's engine; the rows this module parked are deleted afterwards."""
    engine = make_engine(database.gateway, pool_size=2)
    try:
        yield engine
        async with engine.begin() as conn:
            await conn.execute(text("DELETE FROM gateway.parked_deliveries WHERE order_key LIKE :k"), {"k": f"%{RUN}"})
    finally:
        await engine.dispose()


async def test_an_isolated_round_dead_letters_each_refusal_once_and_keeps_the_failing_order(
    engine: AsyncEngine,
) -> None:
    refused_a, failing, refused_c = f"A{RUN}", f"B{RUN}", f"C{RUN}"
    arrivals = {o: _arrival(o) for o in (refused_a, failing, refused_c)}
    settings = gateway_settings()
    for order_id, arrival in arrivals.items():  # one at a time: parked in this order, retried in this order
        async with engine.begin() as conn:
            key = f"shopee:77001:{order_id}"
            await park(UnitOfWork(conn, SCHEMA), [(arrival, "shopee", key, "unreachable")], settings=settings)
    ids = [a.envelope.event_id for a in arrivals.values()]
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE gateway.parked_deliveries SET next_attempt_at = now() - interval '1 s' WHERE event_id = ANY(:i)"
            ),
            {"i": ids},
        )
    consumer = f"gateway-normaliser-{RUN}"
    normaliser = Normaliser(GatewayDeps(settings, {"shopee": Api({refused_a, refused_c})}), GatewayTopics(), SCHEMA)

    assert await retry_due(engine, normaliser, parked_rejecter(consumer)) == 2

    async with engine.connect() as conn:
        dead = (
            await conn.execute(
                text("SELECT event_id, count(*) FROM gateway.dead_letters WHERE consumer = :c GROUP BY event_id"),
                {"c": consumer},
            )
        ).all()
        parked = (
            await conn.execute(
                text("SELECT event_id, attempts FROM gateway.parked_deliveries WHERE event_id = ANY(:i)"), {"i": ids}
            )
        ).all()
    assert sorted(dead) == sorted(
        [(arrivals[refused_a].envelope.event_id, 1), (arrivals[refused_c].envelope.event_id, 1)]
    )
    assert parked == [(arrivals[failing].envelope.event_id, 2)]
