"""Backorders on the real database: an order whose reservation failed gets the units produced later (a catalogue
load) or restocked later (an inspection), oldest order first, whole orders only, once; the ``order_allocated``
event carries its allocations for the ledger."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import TypeVar

import pytest
import typer
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from typer.testing import CliRunner

from infra.db.engine import make_engine
from infra.db.roles import RoleUrls
from infra.db.unit_of_work import UnitOfWork
from infra.messaging.consumer import InboundEvent
from infra.messaging.delivery import Delivery
from services.orders.app import SCHEMA
from services.orders.backorders import Filled, receive_catalogue
from services.orders.catalogue import Catalogue, ProductionBatch, WorkShare, dump_catalogue
from services.orders.cli import catalogue_app
from services.orders.inspection import Verdict, inspect_quarantine
from services.orders.outbound import OrdersTopics
from tests.integration import orders_support as o
from tests.integration.cli_support import cli_root
from tests.integration.ledger.test_scenarios_unallocated import scenario_c_batch, scenario_c_catalogue
from tests.integration.ledger_support import new_inmate
from tests.naming import topic_prefix

pytestmark = pytest.mark.integration
T = TypeVar("T")


@pytest.fixture
async def engine(database: RoleUrls) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(database.service, pool_size=2)
    yield engine
    await engine.dispose()


async def drive(engine: AsyncEngine, u: str, topics: OrdersTopics, order: str, statuses: list[str], qty: int) -> str:
    """Apply ``statuses`` to ``order`` (``qty`` units), one event per transaction; returns its key."""
    handler, base = o.orders_handler(topics, returns=True), o.recent()
    for n, raw in enumerate(statuses):
        envelope = o.status_event(u, order, raw, n, "tokopedia", qty=qty, base=base)
        async with engine.begin() as conn:
            assert await handler(conn, [InboundEvent(envelope, Delivery("t", 0, n, None, b""))]) == []
    return envelope.subject


def with_batch(catalogue: Catalogue, u: str, produced: int) -> Catalogue:
    """``catalogue`` with one more production batch of its SKU in workshop w1."""
    first = catalogue.batches[0]
    batch = ProductionBatch(f"B-{u}-new", first.workshop_id, first.sku, produced, date(2026, 4, 1), 12_000,
                            first.supplier_id, (WorkShare(f"WBP-{u[:3].upper()}NEW", 1),))  # fmt: skip
    return replace(catalogue, batches=(*catalogue.batches, batch))


async def receive(engine: AsyncEngine, catalogue: Catalogue, topics: OrdersTopics) -> Filled:
    async with engine.begin() as conn:
        _, filled = await receive_catalogue(UnitOfWork(conn, SCHEMA), catalogue, "test", topics)
    return filled


async def test_a_catalogue_load_fills_the_oldest_waiting_order_it_can_cover(engine: AsyncEngine) -> None:
    u, topics = o.uid(), OrdersTopics.with_prefix(topic_prefix())
    catalogue = o.small_catalogue(u, [("w1", 1, date(2026, 3, 1))])
    await o.load(engine, catalogue)
    early = await drive(engine, u, topics, "early", ["220", "500", "700"], qty=3)  # completed, no stock held
    later = await drive(engine, u, topics, "later", ["220"], qty=2)  # paid, no stock held
    before = await o.orders_by_key(engine, [early, later])
    assert [before[k]["reservations"] for k in (early, later)] == [[], []]
    assert (await o.last_payload(engine, early, "karya.orders.order_completed.v1"))["allocations"] == []

    filled = await receive(engine, with_batch(catalogue, u, 3), topics)
    assert filled.order_keys == [early], "oldest first; the younger order (2 of the 1 left) keeps waiting"
    after = await o.orders_by_key(engine, [early, later])
    assert after[early]["reservations"] == ["consumed"] and after[early]["stock_stage"] == 3
    assert after[later]["reservations"] == []
    allocated = await o.last_payload(engine, early, "karya.orders.order_allocated.v1")
    assert allocated["state"] == "completed"
    assert [(a["batch_id"], a["quantity"], a["unit_price"]) for a in allocated["allocations"]] == [
        (f"B-{u}-1", 1, 50_000),
        (f"B-{u}-new", 2, 50_000),
    ]
    assert await o.stock_of(engine, f"SKU-{u}") == {
        "on_hand": 1, "soft_reserved": 0, "allocated": 0, "quarantined": 0, "available": 1,
    }  # fmt: skip

    # the same catalogue again adds no batch and fills nothing; the filled order no longer waits
    assert (await receive(engine, with_batch(catalogue, u, 3), topics)).order_keys == []
    assert (await o.outbox_types(engine, [early]))[early]["order_allocated"] == 1
    await o.assert_reconciled(engine)


async def test_restocked_returns_fill_a_paid_order_waiting_for_them(engine: AsyncEngine) -> None:
    u, topics = o.uid(), OrdersTopics.with_prefix(topic_prefix())
    await o.load(engine, o.small_catalogue(u, [("w1", 2, date(2026, 3, 1))]))
    back = await drive(engine, u, topics, "back", ["220", "500", o.RETURNED_STATUS], qty=2)
    waiting = await drive(engine, u, topics, "waiting", ["220"], qty=2)
    assert (await o.orders_by_key(engine, [waiting]))[waiting]["reservations"] == []
    async with engine.connect() as conn:
        query = text("SELECT id FROM orders.quarantine WHERE order_key = :k")
        qid = (await conn.execute(query, {"k": back})).scalar_one()
    async with engine.begin() as conn:
        lot = await inspect_quarantine(UnitOfWork(conn, SCHEMA), int(qid), Verdict.RESTOCK, topics)
    assert lot is not None
    assert (await o.orders_by_key(engine, [waiting]))[waiting]["reservations"] == ["hard"]
    allocated = await o.last_payload(engine, waiting, "karya.orders.order_allocated.v1")
    assert allocated["state"] == "awaiting_fulfilment" and allocated["allocations"][0]["quantity"] == 2
    assert await o.stock_of(engine, f"SKU-{u}") == {
        "on_hand": 2, "soft_reserved": 0, "allocated": 2, "quarantined": 0, "available": 0,
    }  # fmt: skip
    # it ships from the units it now holds, like any order
    await drive(engine, u, topics, "waiting", ["220", "500"], qty=2)
    assert (await o.orders_by_key(engine, [waiting]))[waiting]["reservations"] == ["consumed"]
    await o.assert_reconciled(engine)


def test_karya_catalogue_load_fills_a_waiting_order(database: RoleUrls, tmp_path: Path) -> None:
    u, prefix = o.uid(), topic_prefix()
    root = cli_root(database, prefix)  # the command's root: its events never reach shared topics
    handler = o.orders_handler(OrdersTopics.with_prefix(prefix))
    paid = o.status_event(u, "cli", "READY_TO_SHIP", 0, "shopee", qty=2, price=100_000, base=o.recent())

    async def run(work: Callable[[AsyncEngine], Awaitable[T]]) -> T:
        engine = make_engine(database.service, pool_size=1)
        try:
            return await work(engine)
        finally:
            await engine.dispose()

    async def waiting_order(engine: AsyncEngine) -> None:
        await o.load(engine, scenario_c_catalogue(u))
        async with engine.begin() as conn:
            assert await handler(conn, [InboundEvent(paid, Delivery("t", 0, 0, None, b""))]) == []

    async def reservations(engine: AsyncEngine) -> list[str]:
        return list((await o.orders_by_key(engine, [paid.subject]))[paid.subject]["reservations"])

    asyncio.run(run(waiting_order))
    assert asyncio.run(run(reservations)) == []
    karya = typer.Typer()
    karya.add_typer(catalogue_app, name="catalogue")  # as `karya catalogue` mounts it
    path = tmp_path / "catalogue.yaml"
    dump_catalogue(scenario_c_catalogue(u, (scenario_c_batch(u, (new_inmate(), 1), produced=2),)), path)
    loaded = CliRunner().invoke(karya, ["catalogue", "load", str(path)], obj=root)
    assert loaded.exit_code == 0, loaded.output
    assert "1 new batches (2 units received); 1 waiting orders filled" in loaded.output
    again = CliRunner().invoke(karya, ["catalogue", "load", str(path)], obj=root)
    assert "0 new batches (0 units received); 0 waiting orders filled" in again.output
    assert asyncio.run(run(reservations)) == ["hard"]


async def test_a_catalogue_load_and_new_orders_racing_for_its_units_never_oversell(engine: AsyncEngine) -> None:
    """Five paid orders wait; a load of 6 units and five new paid orders arrive at once, each in its own
    transaction. Whatever the interleaving: no deadlock, no unit held twice, the counters follow the movements."""
    u, topics = o.uid(), OrdersTopics.with_prefix(topic_prefix())
    catalogue = o.small_catalogue(u, [("w1", 1, date(2026, 3, 1))])
    await o.load(engine, catalogue)
    await drive(engine, u, topics, "first", ["220", "500"], qty=1)  # takes the only unit
    waiting = [await drive(engine, u, topics, f"w{i}", ["220"], qty=1) for i in range(5)]
    handler, base = o.orders_handler(topics), o.recent()
    fresh = [o.status_event(u, f"n{i}", "220", 1, "tokopedia", qty=1, base=base) for i in range(5)]

    async def new_order(n: int) -> None:
        async with engine.begin() as conn:
            assert await handler(conn, [InboundEvent(fresh[n], Delivery("t", 1, n, None, b""))]) == []

    racing = make_engine(str(engine.url.render_as_string(hide_password=False)), pool_size=8)
    try:

        async def load_batch() -> Filled:
            async with racing.begin() as conn:
                _, filled = await receive_catalogue(UnitOfWork(conn, SCHEMA), with_batch(catalogue, u, 6), "t", topics)
            return filled

        results = await asyncio.gather(load_batch(), *(new_order(n) for n in range(5)))
    finally:
        await racing.dispose()
    keys = [*waiting, *(e.subject for e in fresh)]
    orders = await o.orders_by_key(engine, keys)
    holding = [k for k in keys if orders[k]["reservations"] == ["hard"]]
    assert all(orders[k]["reservations"] == [] for k in keys if k not in holding)
    # the five that waited are filled first; the sixth unit goes to a new order (or, if a new order read the stock
    # before the load committed, stays free until that order's next event retries)
    filled = results[0]
    assert isinstance(filled, Filled) and filled.order_keys[:5] == waiting
    assert set(filled.order_keys) <= set(holding)
    stock = await o.stock_of(engine, f"SKU-{u}")
    assert stock["allocated"] == len(holding) and stock["allocated"] + stock["available"] == 6
    await o.assert_reconciled(engine)


async def test_an_order_that_fails_while_the_load_waits_for_its_stock_is_filled_by_the_load(
    engine: AsyncEngine,
) -> None:
    u, topics = o.uid(), OrdersTopics.with_prefix(topic_prefix())
    catalogue = o.small_catalogue(u, [("w1", 1, date(2026, 3, 1))])
    await o.load(engine, catalogue)
    await drive(engine, u, topics, "first", ["220", "500"], qty=1)  # takes the only unit
    late = o.status_event(u, "late", "220", 1, "tokopedia", qty=1, base=o.recent())
    handler = o.orders_handler(topics)
    # the new order fails to reserve and holds the SKU's stock rows until it commits: the load waits for them
    async with engine.connect() as conn, conn.begin():
        assert await handler(conn, [InboundEvent(late, Delivery("t", 1, 0, None, b""))]) == []
        loading = asyncio.create_task(receive(engine, with_batch(catalogue, u, 2), topics))
        for _ in range(20):  # let the load reach the stock rows (the outcome is the same if it does not)
            await asyncio.sleep(0.01)
    filled = await loading
    assert filled.order_keys == [late.subject]
    assert (await o.orders_by_key(engine, [late.subject]))[late.subject]["reservations"] == ["hard"]
    await o.assert_reconciled(engine)
