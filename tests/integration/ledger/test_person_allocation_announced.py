"""A person's allocation reaches the orders service, and a backorder filled meanwhile does not dead-letter, on the
real database: ``karya ledger allocate``'s use case announces ``order_allocated_by_person`` (order, batch:qty, who)
through the ledger's outbox in the allocation's transaction; an ``order_allocated`` that arrives afterwards for the
same order with other batches is closed without posting with its reason, the journal unchanged."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from infra.db.engine import make_engine
from infra.db.roles import RoleUrls
from infra.messaging.envelope import Envelope, make_envelope
from infra.messaging.outbox import decode_headers
from services.contracts.ledger import ORDER_ALLOCATED_BY_PERSON
from services.contracts.orders import ORDER_ALLOCATED
from services.ledger.allocation import ALLOCATED_BEFORE, Pick, allocate
from services.ledger.outbound import LedgerTopics
from services.orders.app import SCHEMA as ORDERS
from tests.contract_validation import validate_published
from tests.integration.ledger.scenario_support import T, add_batch, completed_without_allocation, journal_of
from tests.integration.ledger_support import ledger_uow, new_inmate, new_order_key, new_processor, post, settled, uid

pytestmark = pytest.mark.integration
TOPICS = LedgerTopics()


@pytest.fixture
async def engine(ledger_db: RoleUrls) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(ledger_db.service, pool_size=2)
    yield engine
    await engine.dispose()


def announced(key: str, batch: str, quantity: int) -> Envelope:
    """The orders service's ``order_allocated`` of ``key`` from ``batch`` (shaped as the catalogue's facts)."""
    allocation = {
        "batch_id": batch, "sku": "SKU", "workshop_id": "w", "lapas_id": "sukamiskin", "quantity": quantity,
        "unit_price": 100_000, "unit_material_cost": 30_000, "supplier_id": "sup-kain",
        "work_group": [{"inmate_id": new_inmate(), "work_share": 1}],
    }  # fmt: skip
    data = {"order_key": key, "channel": "shopee", "lapas_id": "sukamiskin", "reservation_id": 1,
            "raw_status": "COMPLETED", "update_time": T.isoformat(),
            "state": "completed", "allocations": [allocation]}  # fmt: skip
    return make_envelope(type=ORDER_ALLOCATED, source="karya/orders", subject=key, data=data)


async def test_a_persons_allocation_is_announced_and_a_later_backorder_fill_is_closed(engine: AsyncEngine) -> None:
    key, batch = new_order_key(), f"B-P-{uid()}"
    await add_batch(engine, batch, "sukamiskin", f"SMK-P{uid()}", produced=5, unit_price=100_000,
                    unit_material_cost=30_000, supplier="sup-kain", work_group=[(new_inmate(), 1)])  # fmt: skip
    processor = new_processor()
    completion = completed_without_allocation(key, "sukamiskin", 200_000)
    assert await post(engine, processor, [completion, settled(key, 200_000, T)]) == []

    async with engine.begin() as conn:
        outcome = await allocate(
            ledger_uow(conn), TOPICS, key, [Pick(batch, 2)], catalogue_schema=ORDERS, allocated_by="siti"
        )
    assert f"{key}:distribution:{batch}" in outcome.posted
    async with engine.connect() as conn:
        query = text("SELECT topic, payload, headers FROM ledger.outbox WHERE key = :k ORDER BY id")
        rows = [r for r in await conn.execute(query, {"k": key.encode()})]
    types = [dict(decode_headers(r.headers))["karya-event-type"] for r in rows]
    assert types.count(ORDER_ALLOCATED_BY_PERSON.encode()) == 1
    row = rows[types.index(ORDER_ALLOCATED_BY_PERSON.encode())]
    assert row.topic == TOPICS.ledger_order_events
    message = validate_published(bytes(row.payload))  # fits its published schema
    assert message["data"]["allocations"] == [{"batch_id": batch, "quantity": 2}]
    assert (message["data"]["allocated_by"], message["data"]["approved_by"]) == ("siti", None)
    # the same allocation again changes nothing and announces nothing more
    async with engine.begin() as conn:
        again = await allocate(ledger_uow(conn), TOPICS, key, [Pick(batch, 2)], catalogue_schema=ORDERS)
    assert again.already_allocated
    async with engine.connect() as conn:
        assert len((await conn.execute(query, {"k": key.encode()})).all()) == len(rows)

    # A backorder filled from another batch before orders heard of the person: closed, not dead-lettered.
    journal = await journal_of(engine, key)
    late = announced(key, f"B-OTHER-{uid()}", 2)
    assert await post(engine, processor, [late]) == []
    assert await journal_of(engine, key) == journal
    async with engine.connect() as conn:
        closed = (
            await conn.execute(
                text("SELECT event_type, reason FROM ledger.closed_without_posting WHERE event_id = :e"),
                {"e": late.event_id},
            )
        ).one()
    assert tuple(closed) == (ORDER_ALLOCATED, ALLOCATED_BEFORE)
