"""Restocked returns reach the ledger, on the real database: a sukamiskin order of 2 units is completed, settled
and distributed; its parcel comes back, inspection restocks the units, the orders service announces
``units_restocked`` and the ledger takes their material back from the supplier to production capital, once."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from infra.db.engine import make_engine
from infra.db.roles import RoleUrls
from infra.db.unit_of_work import UnitOfWork
from infra.messaging.consumer import InboundEvent
from infra.messaging.delivery import Delivery
from services.contracts.orders import ORDER_COMPLETED, UNITS_RESTOCKED
from services.orders.app import SCHEMA as ORDERS
from services.orders.backorders import receive_catalogue
from services.orders.inspection import Verdict, inspect_quarantine
from services.orders.outbound import OrdersTopics
from tests.integration import orders_support as o
from tests.integration.ledger.scenario_support import T, journal_of
from tests.integration.ledger.test_scenarios_unallocated import orders_emitted, scenario_c_batch, scenario_c_catalogue
from tests.integration.ledger_support import load_demo_policies, new_inmate, new_processor, post, reissued, settled

pytestmark = pytest.mark.integration


@pytest.fixture
async def engine(database: RoleUrls) -> AsyncIterator[AsyncEngine]:
    await load_demo_policies(database.service)
    engine = make_engine(database.service, pool_size=2)
    yield engine
    await engine.dispose()


async def test_restocked_units_take_their_material_back_from_the_supplier_once(engine: AsyncEngine) -> None:
    u, topics = o.uid(), OrdersTopics()
    batch = scenario_c_batch(u, (new_inmate(), 1))
    async with engine.begin() as conn:
        await receive_catalogue(UnitOfWork(conn, ORDERS), scenario_c_catalogue(u, (batch,)), "test", topics)
    handler = o.orders_handler(topics, returns=True)
    for n, raw in enumerate(["READY_TO_SHIP", "SHIPPED", "COMPLETED", o.RETURNED_STATUS]):
        envelope = o.status_event(u, "r-1", raw, n, "shopee", qty=2, price=100_000, base=T)
        async with engine.begin() as conn:
            assert await handler(conn, [InboundEvent(envelope, Delivery("t", 0, n, None, b""))]) == []
    key = envelope.subject
    processor = new_processor()
    completion = await orders_emitted(engine, key, ORDER_COMPLETED)
    assert await post(engine, processor, [completion, settled(key, 200_000, T)]) == []
    assert f"distribution:{batch.batch_id}" in await journal_of(engine, key)

    async with engine.connect() as conn:
        query = text("SELECT id FROM orders.quarantine WHERE order_key = :k")
        lot = (await conn.execute(query, {"k": key})).scalar_one()
    async with engine.begin() as conn:
        assert await inspect_quarantine(UnitOfWork(conn, ORDERS), int(lot), Verdict.RESTOCK, topics) is not None
    restocked = await orders_emitted(engine, key, UNITS_RESTOCKED)
    assert (restocked.data["batch_id"], restocked.data["quantity"]) == (batch.batch_id, 2)
    assert await post(engine, processor, [restocked]) == []
    journal = await journal_of(engine, key)
    assert journal[f"restock:{lot}"] == {
        ("liability:supplier_payable:sup-kain", "D", 60_000),
        ("expense:material_cost:sukamiskin", "C", 60_000),
        ("expense:capital_allocation:sukamiskin", "D", 60_000),
        ("equity:production_capital:sukamiskin", "C", 60_000),
    }
    # redelivered, or re-emitted under a new event id: posted once, no dead letter
    assert await post(engine, processor, [restocked, reissued(restocked)]) == []
    assert await journal_of(engine, key) == journal
