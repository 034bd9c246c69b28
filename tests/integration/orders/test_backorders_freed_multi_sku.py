"""The known limit of filling from stock given back, on the real database (issue 15, docs/accounting.md
Backorders): a cancellation fills a waiting order only when the cancelling transaction locked every SKU the order
needs. A paid two-SKU order waiting for SKU A (B has a unit free) is not filled when an A-only order is cancelled —
taking B's stock rows after A's would break the lock order — and is filled, whole, by the next change of its other
SKU (here a new batch of B: :func:`fill_backorders` locks the waiting orders first, then every SKU they need)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from datetime import date

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from infra.db.engine import make_engine
from infra.db.roles import RoleUrls
from infra.db.unit_of_work import UnitOfWork
from infra.messaging.consumer import InboundEvent
from infra.messaging.delivery import Delivery
from services.orders.app import SCHEMA
from services.orders.backorders import receive_catalogue
from services.orders.catalogue import Catalogue, Channel, Listing, ProductionBatch, WorkShare
from services.orders.outbound import OrdersTopics
from tests.integration import orders_support as o
from tests.naming import topic_prefix

pytestmark = pytest.mark.integration
ALLOCATED = "karya.orders.order_allocated.v1"


@pytest.fixture
async def engine(database: RoleUrls) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(database.service, pool_size=2)
    yield engine
    await engine.dispose()


def _two_skus(u: str, b_batches: int) -> Catalogue:
    """The small catalogue (SKU A: one batch of 2 units) with a second SKU B listed as ``p-<u>-b`` and
    ``b_batches`` batches of 1 unit of it."""
    base = o.small_catalogue(u, [("w1", 2, date(2026, 3, 1))])
    first, workshop = base.batches[0], f"lp{u}-w1"
    sku = f"SKU-{u}-b"
    product = replace(base.products[0], sku=sku)
    listings = tuple(Listing(ch, f"shop-{u}", f"p-{u}-b", None, sku, workshop) for ch in Channel)
    batches = tuple(
        ProductionBatch(
            f"B-{u}-b{i}",
            workshop,
            sku,
            1,
            date(2026, 3, 1 + i),
            12_000,
            first.supplier_id,
            (WorkShare(f"WBP-{u[:3].upper()}B{i:02d}", 1),),
        )
        for i in range(1, b_batches + 1)
    )
    return replace(
        base,
        products=(*base.products, product),
        listings=(*base.listings, *listings),
        batches=(*base.batches, *batches),
    )


async def _drive(engine: AsyncEngine, u: str, topics: OrdersTopics, order: str, statuses: Sequence[str],
                 lines: list[tuple[str, int]]) -> str:  # fmt: skip
    """Apply tokopedia ``statuses`` to ``order`` of ``lines``, one event per transaction; returns its key."""
    handler, base = o.orders_handler(topics, returns=True), o.recent()
    for n, raw in enumerate(statuses):
        envelope = o.status_event(u, order, raw, n, "tokopedia", lines=lines, base=base)
        async with engine.begin() as conn:
            assert await handler(conn, [InboundEvent(envelope, Delivery("t", 0, n, None, b""))]) == []
    return envelope.subject


async def test_a_cancellation_of_one_sku_leaves_a_two_sku_order_to_the_next_change_of_the_other(
    engine: AsyncEngine,
) -> None:
    u, topics = o.uid(), OrdersTopics.with_prefix(topic_prefix())
    await o.load(engine, _two_skus(u, b_batches=1))
    a_only, both = [(f"p-{u}", 2)], [(f"p-{u}", 1), (f"p-{u}-b", 1)]
    first = await _drive(engine, u, topics, "first", ["220"], a_only)  # paid: holds both units of A
    waiting = await _drive(engine, u, topics, "waiting", ["220"], both)  # paid, no A left: waits (B stays free)
    assert (await o.orders_by_key(engine, [waiting]))[waiting]["reservations"] == []

    await _drive(engine, u, topics, "first", ["220", "0"], a_only)  # cancelled: A's units given back
    after = await o.orders_by_key(engine, [first, waiting])
    assert after[first]["reservations"] == ["released"]
    assert after[waiting]["reservations"] == [], "the known limit: B's stock rows were not locked by the cancellation"
    assert (await o.stock_of(engine, f"SKU-{u}"))["available"] == 2

    # B's next change (a new batch) fills it whole, from A's freed units and B's free one.
    async with engine.begin() as conn:
        _, filled = await receive_catalogue(UnitOfWork(conn, SCHEMA), _two_skus(u, b_batches=2), "test", topics)
    assert filled.order_keys == [waiting]
    assert (await o.orders_by_key(engine, [waiting]))[waiting]["reservations"] == ["hard"]
    allocated = await o.last_payload(engine, waiting, ALLOCATED)
    assert sorted((a["batch_id"], a["quantity"]) for a in allocated["allocations"]) == [
        (f"B-{u}-1", 1),
        (f"B-{u}-b1", 1),
    ]
    await o.assert_reconciled(engine)
