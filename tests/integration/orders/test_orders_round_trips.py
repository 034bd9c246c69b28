"""An orders batch costs a fixed handful of round trips to PostgreSQL, whatever it holds: the orders locked, then
in one statement their lines, live reservations (locked) and the listings; when stock moves, one statement that
claims the due soft holds, locks the stock rows and draws reservation ids; and ONE statement of writes with the
outbox. Every round trip waits for a PostgreSQL that shares the box with the broker and the services."""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Any

import pytest
from sqlalchemy import event, text

from infra.db.engine import make_engine
from infra.db.roles import RoleUrls
from infra.db.unit_of_work import UnitOfWork
from infra.messaging.consumer import InboundEvent
from infra.messaging.delivery import Delivery
from infra.messaging.envelope import Envelope
from services.orders.adapters.order_reads import OrdersRead, read_orders
from services.orders.app import SCHEMA
from services.orders.outbound import OrdersTopics
from tests.integration.orders_support import load, orders_by_key, orders_handler, small_catalogue, status_event, uid

pytestmark = pytest.mark.integration


def _kind(sql: str) -> str:
    """What a statement of the orders use case is, by what it names."""
    if sql.startswith("WITH w0 AS") or sql.startswith("INSERT"):
        return "writes"
    for mark, kind in (
        ("FOR UPDATE SKIP LOCKED", "claim due, lock stock"),
        ("l.order_key, l.line_no", "details"),
        ("FROM orders.orders WHERE order_key", "lock orders"),
        ("batch_work_group", "work groups"),
        ("production_batches", "batch facts"),
    ):
        if mark in sql:
            return kind
    return sql[:60]


def _inbound(envelopes: list[Envelope]) -> list[InboundEvent]:
    return [InboundEvent(e, Delivery("t", 0, i, None, e.to_bytes())) for i, e in enumerate(envelopes)]


async def test_an_orders_batch_takes_a_fixed_handful_of_round_trips(database: RoleUrls) -> None:
    u = uid()
    engine = make_engine(database.service, pool_size=1)
    await load(engine, small_catalogue(u, [("w1", 50, date(2026, 3, 1))]))
    handler = orders_handler(OrdersTopics.with_prefix(f"t{u}"))
    keys = [f"tokopedia:shop-{u}:o{i}" for i in range(5)]
    statements: list[str] = []
    shapes: dict[str, list[str]] = {}

    def record(*args: Any) -> None:
        statements.append(str(args[2]))

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        # Tokopedia 220: paid (new orders: stock allocated), 400: accepted (nothing moves), 700: done (consumed).
        for minute, status in enumerate(("220", "400", "700")):
            statements.clear()
            async with engine.begin() as conn:
                events = [status_event(u, f"o{i}", status, minutes=10 * minute + i) for i in range(5)]
                assert await handler(conn, _inbound(events)) == []
            shapes[status] = [_kind(s) for s in statements]
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)
    orders = await orders_by_key(engine, keys)
    async with engine.connect() as conn:
        moved = (
            await conn.execute(
                text("SELECT kind, count(*) FROM orders.stock_movements WHERE order_key = ANY(:k) GROUP BY kind"),
                {"k": keys},
            )
        ).all()
    await engine.dispose()
    assert {o["state"] for o in orders.values()} == {"completed"} and len(orders) == 5
    assert all(o["reservations"] == ["consumed"] for o in orders.values())
    assert dict(moved) == {"hard_reserve": 5, "consume": 5}  # Tokopedia notifies when paid
    # New orders: the batch facts are read once per process (then cached).
    assert shapes["220"] == [
        "lock orders",
        "details",
        "claim due, lock stock",
        "work groups",
        "batch facts",
        "writes",
    ]
    assert shapes["400"] == ["lock orders", "details", "writes"]
    assert shapes["700"] == ["lock orders", "details", "claim due, lock stock", "writes"]


async def test_a_reservation_committed_while_the_batch_waited_for_its_order_is_read(database: RoleUrls) -> None:
    """The details are read in a statement after the orders' locks, so they see what the transaction holding a lock
    committed (a backorder fill, the sweeper): read in the locking statement, its snapshot would miss the new
    reservation, and the order would be held twice."""
    u = uid()
    engine = make_engine(database.service, pool_size=2)
    await load(engine, small_catalogue(u, [("w1", 50, date(2026, 3, 1))]))
    handler = orders_handler(OrdersTopics.with_prefix(f"t{u}"))
    key = f"tokopedia:shop-{u}:o1"
    async with engine.begin() as conn:
        assert await handler(conn, _inbound([status_event(u, "o1", "220", minutes=0)])) == []
    try:
        async with engine.connect() as holder:
            await holder.begin()
            await holder.execute(text("SELECT 1 FROM orders.orders WHERE order_key = :k FOR UPDATE"), {"k": key})
            old = (
                await holder.execute(
                    text(
                        "UPDATE orders.reservations SET state = 'released' WHERE order_key = :k "
                        "RETURNING reservation_id"
                    ),
                    {"k": key},
                )
            ).scalar_one()
            new = (
                await holder.execute(
                    text(
                        "INSERT INTO orders.reservations (order_key, state) SELECT :k, 'hard' RETURNING reservation_id"
                    ),
                    {"k": key},
                )
            ).scalar_one()
            await holder.execute(
                text(
                    "INSERT INTO orders.allocations (reservation_id, batch_id, sku, workshop_id, quantity) "
                    "SELECT :new, batch_id, sku, workshop_id, quantity FROM orders.allocations "
                    "WHERE reservation_id = :old"
                ),
                {"new": new, "old": old},
            )

            async def read() -> OrdersRead:
                async with engine.begin() as conn:
                    return await read_orders(UnitOfWork(conn, SCHEMA), [key])

            reading = asyncio.create_task(read())
            await asyncio.sleep(0.5)
            assert not reading.done()  # waiting for the order's lock
            await holder.commit()
            found = await asyncio.wait_for(reading, 30)
    finally:
        await engine.dispose()
    reservation = found.orders[key].reservation
    assert reservation is not None and reservation.reservation_id == new and reservation.state == "hard"
    assert [a.quantity for a in reservation.allocations] == [1]
