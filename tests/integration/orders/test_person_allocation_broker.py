"""A person's allocation reaches the orders service through the real broker: the orders and ledger processes as
their roots build them, on topics and a database of the test's own. An order completes while its units are held by
another order (it waits as a backorder), the ledger holds its proceeds; a person allocates it (``karya ledger
allocate``'s use case) to the batch, which has one of the two units free. The ledger's relay publishes
``order_allocated_by_person``; the orders consumer stops the order waiting, records the one free unit as consumed
and the missing one as a stock reconciliation item (never negative stock, no dead letter). When the other order is
cancelled, its units are not given to the allocated order a second time."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from infra.db.unit_of_work import UnitOfWork
from services.ledger.allocation import Pick, allocate
from services.orders.app import SCHEMA as ORDERS
from services.orders.backorders import receive_catalogue
from tests.conftest import Services
from tests.integration.ledger.scenario_support import T
from tests.integration.ledger.test_scenarios_unallocated import scenario_c_batch, scenario_c_catalogue
from tests.integration.ledger_support import new_inmate, settled
from tests.integration.messaging_support import wait_for
from tests.integration.orders.test_backorder_broker import _posted, both_services
from tests.integration.orders_support import publish, status_event, uid

pytestmark = pytest.mark.integration


async def test_a_persons_allocation_stops_the_backorder_and_consumes_what_the_batch_has(services: Services) -> None:
    u, bootstrap = uid(), services.kafka_bootstrap
    async with both_services(services) as run:
        batch = scenario_c_batch(u, (new_inmate(), 1), produced=2)
        async with run.engine.begin() as conn:
            await receive_catalogue(UnitOfWork(conn, ORDERS), scenario_c_catalogue(u, (batch,)), "test", run.orders)
        hog = status_event(u, "hog", "READY_TO_SHIP", 0, "shopee", qty=1, price=100_000, base=T)
        statuses = [
            status_event(u, "late", raw, n, "shopee", qty=2, price=100_000, base=T)
            for n, raw in enumerate(["READY_TO_SHIP", "SHIPPED", "COMPLETED"], start=1)
        ]
        key = statuses[0].subject
        await publish(bootstrap, run.orders.order_events, [hog])

        async def hog_holds() -> bool:
            return await _stock(run.engine, batch.batch_id) == (2, 1)

        await wait_for(hog_holds, what="the first order holds one unit")
        await publish(bootstrap, run.orders.order_events, statuses)
        await publish(bootstrap, run.ledger.settlements, [settled(key, 200_000, T)])

        async def held() -> bool:
            return await _posted(run.engine, key) == {"completed", "settlement:ESC-1"}

        await wait_for(held, what="the completion without batches and its settlement posted, the proceeds held")

        async with run.engine.begin() as conn:
            outcome = await allocate(
                UnitOfWork(conn, "ledger"), run.ledger, key, [Pick(batch.batch_id, 2)], catalogue_schema=ORDERS
            )
        assert f"{key}:distribution:{batch.batch_id}" in outcome.posted

        async def recorded() -> bool:
            return await _items(run.engine, key) != []

        await wait_for(recorded, what="orders recorded the person's allocation")
        assert await _items(run.engine, key) == [(batch.batch_id, 2, 1)]
        assert await _stock(run.engine, batch.batch_id) == (1, 1), "one unit consumed, never below zero"
        async with run.engine.connect() as conn:
            row = (
                await conn.execute(
                    text(
                        "SELECT o.reservation_failed_reason, r.state FROM orders.orders o "
                        "JOIN orders.reservations r USING (order_key) WHERE o.order_key = :k"
                    ),
                    {"k": key},
                )
            ).one()
        assert tuple(row) == (None, "consumed"), "it no longer waits"

        # The hog is cancelled: its unit is free again, and the allocated order is not filled a second time.
        cancel = status_event(u, "hog", "CANCELLED", 9, "shopee", qty=1, price=100_000, base=T)
        await publish(bootstrap, run.orders.order_events, [cancel])

        async def released() -> bool:
            return await _stock(run.engine, batch.batch_id) == (1, 0)

        await wait_for(released, what="the cancelled order's unit released")
        async with run.engine.connect() as conn:
            count = "SELECT count(*) FROM {} WHERE convert_from(payload, 'UTF8')::jsonb ->> 'type' = :t AND key = :k"
            allocated = "karya.orders.order_allocated.v1"
            query = text(count.format("orders.outbox"))
            assert (await conn.execute(query, {"t": allocated, "k": key.encode()})).scalar_one() == 0
            for schema in ("orders", "ledger"):
                dead = f"SELECT count(*) FROM {schema}.dead_letters"
                assert (await conn.execute(text(dead))).scalar_one() == 0


async def _stock(engine: AsyncEngine, batch_id: str) -> tuple[int, int]:
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text("SELECT on_hand, allocated FROM orders.batch_stock WHERE batch_id = :b"), {"b": batch_id}
            )
        ).one()
    return int(row.on_hand), int(row.allocated)


async def _items(engine: AsyncEngine, key: str) -> list[tuple[str, int, int]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT batch_id, wanted, recorded FROM orders.stock_reconciliation WHERE order_key = :k"), {"k": key}
        )
        return [(r.batch_id, int(r.wanted), int(r.recorded)) for r in rows]
