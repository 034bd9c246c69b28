"""Restocked returns reach the ledger, on the real database: a sukamiskin order of 2 units is completed, settled
and distributed; its parcel comes back, inspection restocks the units, the orders service announces
``units_restocked`` and the ledger takes their material back from the supplier to production capital, once. A
restock that arrives before the distribution waits parked and posts with it; one of an order the ledger never saw
completed is closed without posting."""

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
from infra.messaging.envelope import Envelope
from services.contracts.orders import ORDER_COMPLETED, UNITS_RESTOCKED
from services.ledger.restock import NEVER_COMPLETED
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


RESTOCK_LINES = {
    ("liability:supplier_payable:sukamiskin:sup-kain", "D", 60_000),
    ("expense:material_cost:sukamiskin", "C", 60_000),
    ("expense:capital_allocation:sukamiskin", "D", 60_000),
    ("equity:production_capital:sukamiskin", "C", 60_000),
}


async def _returned_and_restocked(engine: AsyncEngine) -> tuple[str, Envelope, Envelope, int]:
    """A 2-unit order of a new batch sold, shipped, completed, returned and restocked in the orders service: its key,
    the ``order_completed`` and ``units_restocked`` it emitted, and the inspected lot."""
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
    async with engine.connect() as conn:
        query = text("SELECT id FROM orders.quarantine WHERE order_key = :k")
        lot = int((await conn.execute(query, {"k": key})).scalar_one())
    async with engine.begin() as conn:
        assert await inspect_quarantine(UnitOfWork(conn, ORDERS), lot, Verdict.RESTOCK, topics) is not None
    restocked = await orders_emitted(engine, key, UNITS_RESTOCKED)
    assert (restocked.data["batch_id"], restocked.data["quantity"]) == (batch.batch_id, 2)
    return key, await orders_emitted(engine, key, ORDER_COMPLETED), restocked, lot


async def test_restocked_units_take_their_material_back_from_the_supplier_once(engine: AsyncEngine) -> None:
    key, completion, restocked, lot = await _returned_and_restocked(engine)
    processor = new_processor()
    assert await post(engine, processor, [completion, settled(key, 200_000, T)]) == []
    assert f"distribution:{restocked.data['batch_id']}" in await journal_of(engine, key)

    assert await post(engine, processor, [restocked]) == []
    journal = await journal_of(engine, key)
    assert journal[f"restock:{lot}"] == RESTOCK_LINES
    # redelivered, or re-emitted under a new event id: posted once, no dead letter
    assert await post(engine, processor, [restocked, reissued(restocked)]) == []
    assert await journal_of(engine, key) == journal


async def test_a_restock_before_the_distribution_waits_parked_and_posts_with_it(engine: AsyncEngine) -> None:
    key, completion, restocked, lot = await _returned_and_restocked(engine)
    processor = new_processor()
    # Completed, not yet settled: the restock is a valid fact waiting on ordering, not a dead letter.
    assert await post(engine, processor, [completion, restocked]) == []
    assert f"restock:{lot}" not in await journal_of(engine, key)
    assert await _parked(engine, key) == [(UNITS_RESTOCKED, "distribution")]
    # A redelivery while it waits changes nothing.
    assert await post(engine, processor, [restocked]) == []
    assert await _parked(engine, key) == [(UNITS_RESTOCKED, "distribution")]

    # The settlement distributes the order; the parked restock posts in the same transaction.
    assert await post(engine, processor, [settled(key, 200_000, T)]) == []
    journal = await journal_of(engine, key)
    assert f"distribution:{restocked.data['batch_id']}" in journal
    assert journal[f"restock:{lot}"] == RESTOCK_LINES
    assert await _parked(engine, key) == []


async def test_a_restock_of_an_order_never_completed_is_closed_without_posting(engine: AsyncEngine) -> None:
    key, _, restocked, _ = await _returned_and_restocked(engine)
    assert await post(engine, new_processor(), [restocked]) == []
    assert await journal_of(engine, key) == {}
    async with engine.connect() as conn:
        query = text("SELECT event_type, reason FROM ledger.closed_without_posting WHERE order_key = :k")
        closed = [tuple(r) for r in await conn.execute(query, {"k": key})]
    assert closed == [(UNITS_RESTOCKED, NEVER_COMPLETED)]
    assert await _parked(engine, key) == []


async def _parked(engine: AsyncEngine, key: str) -> list[tuple[str, str]]:
    async with engine.connect() as conn:
        query = text("SELECT type, waiting_for FROM ledger.pending_events WHERE order_key = :k ORDER BY received_at")
        return [(r.type, r.waiting_for) for r in await conn.execute(query, {"k": key})]
