"""Worked scenarios (C) and (D) of docs/accounting.md on the real database, through the posting and allocation
use cases, asserting every journal line of the order.

(C) A completion with no allocation (failed reservation): the receivable posts against unallocated proceeds, the
settlement posts cash, fees and PPh 22, nothing is dead-lettered; a person allocates it later (validated against
the catalogue) and the release plus the distribution post once. The same order filled later as a backorder (the
orders service reserves units produced later and announces ``order_allocated``) posts the same lines, once.
(D) Proceeds below the material cost: the settlement's cash side posts, the gross moves to unallocated with the
reason; a person allocates the batch the goods really came from and it is distributed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from infra.db.engine import make_engine
from infra.db.roles import RoleUrls
from infra.db.unit_of_work import UnitOfWork
from infra.messaging.consumer import InboundEvent
from infra.messaging.delivery import Delivery
from infra.messaging.envelope import Envelope
from services.contracts.orders import ORDER_ALLOCATED, ORDER_COMPLETED
from services.ledger.adapters.facts_repo import held_orders
from services.ledger.allocation import AllocationRefused, Pick, allocate, held_row
from services.ledger.outbound import LedgerTopics
from services.orders import catalogue as cat
from services.orders.app import SCHEMA as ORDERS
from services.orders.backorders import receive_catalogue
from services.orders.outbound import OrdersTopics
from tests.integration.ledger.scenario_support import T, add_batch, completed_without_allocation, journal_of
from tests.integration.ledger_support import (
    Batch,
    completed,
    ledger_uow,
    new_inmate,
    new_order_key,
    new_processor,
    post,
    reissued,
    settled,
    uid,
)
from tests.integration.orders_support import orders_handler, status_event

pytestmark = pytest.mark.integration
TOPICS = LedgerTopics()


def scenario_c_distribution(a: str, b: str) -> set[tuple[str, str, int]]:
    """The lines of scenario C's distribution of batch B: base min(183,000, 200,000 − 16,000 − 1,000) = 183,000;
    material 2 × 30,000; the rest 25/15/60; premi 3:1 (the .5 tie to ``a``, the earlier in inmate order)."""
    return {
        ("expense:material_cost:sukamiskin", "D", 60_000),
        ("liability:supplier_payable:sukamiskin:sup-kain", "C", 60_000),
        ("expense:pnbp_share:sukamiskin", "D", 30_750),
        ("liability:pnbp_payable:sukamiskin", "C", 30_750),
        ("expense:inmate_premi:sukamiskin", "D", 18_450),
        (f"liability:inmate_savings:{a}", "C", 13_838),
        (f"liability:inmate_savings:{b}", "C", 4_612),
        ("expense:capital_allocation:sukamiskin", "D", 73_800),
        ("equity:production_capital:sukamiskin", "C", 73_800),
    }


@pytest.fixture
async def engine(ledger_db: RoleUrls) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(ledger_db.service, pool_size=2)
    yield engine
    await engine.dispose()


async def _allocate(engine: AsyncEngine, key: str, *picks: Pick) -> list[str]:
    async with engine.begin() as conn:
        outcome = await allocate(ledger_uow(conn), TOPICS, key, list(picks), catalogue_schema=ORDERS)
    return outcome.posted


async def _held(engine: AsyncEngine, key: str) -> dict[str, object] | None:
    async with engine.connect() as conn:
        rows = [held_row(f, since) for f, since in await held_orders(ledger_uow(conn)) if f.order_key == key]
    return rows[0] if rows else None


async def test_scenario_c_completion_without_allocation_is_allocated_later_by_a_person(engine: AsyncEngine) -> None:
    key, sku, batch, other = new_order_key(), f"SMK-T{uid()}", f"B-C-{uid()}", f"B-C-{uid()}"
    a, b = sorted((new_inmate(), new_inmate()))  # the work group in inmate order: a tie goes to a
    await add_batch(engine, batch, "sukamiskin", sku, produced=5, unit_price=100_000, unit_material_cost=30_000,
                    supplier="sup-kain", work_group=[(a, 3), (b, 1)])  # fmt: skip
    await add_batch(engine, other, "cipinang", f"CPN-T{uid()}", produced=5, unit_price=100_000,
                    unit_material_cost=30_000, supplier="sup-kain", work_group=[(a, 1)])  # fmt: skip
    processor = new_processor()
    fees = {"commission_fee": 12_000, "service_fee": 4_000}
    settlement = settled(key, 200_000, T, fees=fees)
    assert await post(engine, processor, [completed_without_allocation(key, "sukamiskin", 200_000), settlement]) == []
    assert await post(engine, processor, [reissued(settlement)]) == [], "a redelivered settlement is no dead letter"
    receivable, unallocated = (
        "asset:marketplace_receivable:sukamiskin:shopee",
        "clearing:unallocated_proceeds:sukamiskin",
    )
    assert await journal_of(engine, key) == {
        "completed": {(receivable, "D", 200_000), (unallocated, "C", 200_000)},
        "settlement:ESC-1": {
            ("asset:bank:sukamiskin:main", "D", 183_000),
            ("expense:marketplace_fee:sukamiskin:commission_fee", "D", 12_000),
            ("expense:marketplace_fee:sukamiskin:service_fee", "D", 4_000),
            ("asset:pph22_prepaid:sukamiskin", "D", 1_000),
            (receivable, "C", 200_000),
        },
    }
    held = await _held(engine, key)
    assert held is not None and held["held"] == 200_000 and str(held["reason"]).startswith("no batch allocated")

    # bad input is refused with the rule it breaks, and posts nothing
    for picks, rule in [
        ([Pick("B-NOPE", 1)], "batch_exists"),
        ([Pick(other, 2)], "same_lapas"),
        ([Pick(batch, 6)], "quantity_fits"),
    ]:
        with pytest.raises(AllocationRefused, match=rule):
            await _allocate(engine, key, *picks)
    with pytest.raises(AllocationRefused, match="order_completed"):
        await _allocate(engine, new_order_key(), Pick(batch, 2))

    posted = await _allocate(engine, key, Pick(batch, 2))
    assert [p.removeprefix(f"{key}:") for p in posted] == ["release:s1", f"distribution:{batch}"]
    journal = await journal_of(engine, key)
    assert journal["release:s1"] == {(unallocated, "D", 200_000), ("revenue:sales:sukamiskin", "C", 200_000)}
    assert journal[f"distribution:{batch}"] == scenario_c_distribution(a, b)
    assert await _held(engine, key) is None
    # each allocation posts once: the same again is answered, other batches are refused
    assert await _allocate(engine, key, Pick(batch, 2)) == []
    with pytest.raises(AllocationRefused, match="allocate_once"):
        await _allocate(engine, key, Pick(batch, 1))
    assert len(await journal_of(engine, key)) == 4


def scenario_c_catalogue(u: str, batches: tuple[cat.ProductionBatch, ...] = ()) -> cat.Catalogue:
    """Scenario C's sukamiskin product (list price 100,000) on a shopee shop of its own (``shop-<u>``, product
    ``p-<u>``), with ``batches``; every id as a catalogue file must spell it."""
    workshop, sku = f"sukamiskin-bengkel-{u}", f"SMK-T{u.upper()}"
    return cat.Catalogue(
        lapas=(cat.Lapas("sukamiskin", "sukamiskin", "Kota", "Provinsi"),),
        workshops=(cat.Workshop(workshop, "sukamiskin", workshop, "test"),),
        suppliers=(cat.Supplier("sup-kain", "sup-kain"),),
        products=(cat.Product(sku, sku, cat.ProductKind.BATIK, 100_000, workshop),),
        listings=(cat.Listing(cat.Channel.SHOPEE, f"shop-{u}", f"p-{u}", None, sku, workshop),),
        batches=batches,
    )


def scenario_c_batch(u: str, *work_group: tuple[str, int], produced: int = 5) -> cat.ProductionBatch:
    """Batch B of scenario C's product: material 30,000 a unit from ``sup-kain``."""
    shares = tuple(cat.WorkShare(i, s) for i, s in work_group)
    return cat.ProductionBatch(f"B-C-{u.upper()}", f"sukamiskin-bengkel-{u}", f"SMK-T{u.upper()}", produced,
                               date(2026, 5, 1), 30_000, "sup-kain", shares)  # fmt: skip


async def orders_emitted(engine: AsyncEngine, key: str, type_name: str) -> Envelope:
    """The last event of ``type_name`` the orders service put in its outbox for order ``key``."""
    async with engine.connect() as conn:
        raw = (
            await conn.execute(
                text(
                    "SELECT payload FROM orders.outbox WHERE convert_from(key, 'UTF8') = :k "
                    "AND convert_from(payload, 'UTF8')::jsonb ->> 'type' = :t ORDER BY id DESC LIMIT 1"
                ),
                {"k": key, "t": type_name},
            )
        ).scalar_one()
    return Envelope.from_bytes(bytes(raw))


async def test_scenario_c_completion_without_allocation_is_allocated_later_by_a_backorder(
    engine: AsyncEngine,
) -> None:
    u, (a, b) = uid(), sorted((new_inmate(), new_inmate()))
    catalogue, orders_topics = scenario_c_catalogue(u), OrdersTopics()
    async with engine.begin() as conn:
        await receive_catalogue(UnitOfWork(conn, ORDERS), catalogue, "test", orders_topics)
    # the orders service: paid, shipped and completed with no stock to reserve (2 units at 100,000)
    handler = orders_handler(orders_topics)
    for n, raw in enumerate(["READY_TO_SHIP", "SHIPPED", "COMPLETED"]):
        envelope = status_event(u, "c-backorder", raw, n, "shopee", qty=2, price=100_000, base=T)
        async with engine.begin() as conn:
            assert await handler(conn, [InboundEvent(envelope, Delivery("t", 0, n, None, b""))]) == []
    key = envelope.subject
    completion = await orders_emitted(engine, key, ORDER_COMPLETED)
    assert completion.data["allocations"] == [] and completion.data["lapas_id"] == "sukamiskin"
    processor = new_processor()
    fees = {"commission_fee": 12_000, "service_fee": 4_000}
    assert await post(engine, processor, [completion, settled(key, 200_000, T, fees=fees)]) == []
    unallocated = "clearing:unallocated_proceeds:sukamiskin"
    assert (await journal_of(engine, key))["completed"] == {
        ("asset:marketplace_receivable:sukamiskin:shopee", "D", 200_000),
        (unallocated, "C", 200_000),
    }

    # batch B is produced: the catalogue load reserves it for the waiting order and announces the allocation
    batch = scenario_c_batch(u, (a, 3), (b, 1))
    async with engine.begin() as conn:
        _, filled = await receive_catalogue(UnitOfWork(conn, ORDERS), scenario_c_catalogue(u, (batch,)), "test",
                                            orders_topics)  # fmt: skip
    assert filled.order_keys == [key]
    allocated = await orders_emitted(engine, key, ORDER_ALLOCATED)
    assert await post(engine, processor, [allocated]) == []
    journal = await journal_of(engine, key)
    assert set(journal) == {"completed", "settlement:ESC-1", "release:s1", f"distribution:{batch.batch_id}"}
    assert journal["settlement:ESC-1"] == {
        ("asset:bank:sukamiskin:main", "D", 183_000),
        ("expense:marketplace_fee:sukamiskin:commission_fee", "D", 12_000),
        ("expense:marketplace_fee:sukamiskin:service_fee", "D", 4_000),
        ("asset:pph22_prepaid:sukamiskin", "D", 1_000),
        ("asset:marketplace_receivable:sukamiskin:shopee", "C", 200_000),
    }
    assert journal["release:s1"] == {(unallocated, "D", 200_000), ("revenue:sales:sukamiskin", "C", 200_000)}
    assert journal[f"distribution:{batch.batch_id}"] == scenario_c_distribution(a, b)
    assert await _held(engine, key) is None
    # a redelivered allocation posts nothing, and is no dead letter
    assert await post(engine, processor, [reissued(allocated), allocated]) == []
    assert await journal_of(engine, key) == journal


async def test_scenario_c_allocated_before_the_settlement_is_distributed_by_the_settlement(
    engine: AsyncEngine,
) -> None:
    key, batch, a = new_order_key(), f"B-C-{uid()}", new_inmate()
    await add_batch(engine, batch, "sukamiskin", f"SMK-T{uid()}", produced=1, unit_price=50_000,
                    unit_material_cost=10_000, supplier="sup-kain", work_group=[(a, 1)])  # fmt: skip
    processor = new_processor()
    assert await post(engine, processor, [completed_without_allocation(key, None, 50_000)]) == []
    assert (await journal_of(engine, key))["completed"] == {
        ("asset:marketplace_receivable:unknown:shopee", "D", 50_000),  # not even the lapas is known: its books
        ("clearing:unallocated_proceeds:unknown", "C", 50_000),
    }
    assert await _allocate(engine, key, Pick(batch, 1)) == []  # recorded; nothing settled yet
    fees = {"commission_fee": 3_000}
    assert await post(engine, processor, [settled(key, 50_000, T, fees=fees)]) == []
    journal = await journal_of(engine, key)
    assert journal["settlement:ESC-1"] == {
        ("asset:bank:sukamiskin:main", "D", 46_750),
        ("expense:marketplace_fee:sukamiskin:commission_fee", "D", 3_000),
        ("asset:pph22_prepaid:sukamiskin", "D", 250),
        # cleared where the completion booked it: unknown's part (receivable, unallocated) and sukamiskin's
        # (cash, fees, PPh 22, revenue) each balance
        ("asset:marketplace_receivable:unknown:shopee", "C", 50_000),
        ("clearing:unallocated_proceeds:unknown", "D", 50_000),
        ("revenue:sales:sukamiskin", "C", 50_000),
    }
    # base 46,750; material 10,000; the rest 36,750 split 25/15/60
    assert journal[f"distribution:{batch}"] == {
        ("expense:material_cost:sukamiskin", "D", 10_000),
        ("liability:supplier_payable:sukamiskin:sup-kain", "C", 10_000),
        ("expense:pnbp_share:sukamiskin", "D", 9_188),
        ("liability:pnbp_payable:sukamiskin", "C", 9_188),
        ("expense:inmate_premi:sukamiskin", "D", 5_512),
        (f"liability:inmate_savings:{a}", "C", 5_512),
        ("expense:capital_allocation:sukamiskin", "D", 22_050),
        ("equity:production_capital:sukamiskin", "C", 22_050),
    }


async def test_scenario_d_proceeds_below_material_cost_hold_then_a_person_allocates(engine: AsyncEngine) -> None:
    key, sku, right = new_order_key(), f"CPN-T{uid()}", f"B-D-{uid()}"
    a = new_inmate()
    expensive = Batch(f"B-D-{uid()}", sku, "cipinang", 1, 100_000, 95_000, "sup-kayu", ((a, 1),))
    await add_batch(engine, right, "cipinang", sku, produced=3, unit_price=100_000, unit_material_cost=40_000,
                    supplier="sup-kayu", work_group=[(a, 1)])  # fmt: skip
    processor = new_processor()
    fees = {"commission_fee": 8_000, "service_fee": 2_000}
    reasons = await post(engine, processor, [completed(key, [expensive], T), settled(key, 100_000, T, fees=fees)])
    assert reasons == [], "the cash side posts; nothing is dead-lettered"
    undistributed, unallocated = "clearing:undistributed_proceeds:cipinang", "clearing:unallocated_proceeds:cipinang"
    assert await journal_of(engine, key) == {
        "completed": {("asset:marketplace_receivable:cipinang:shopee", "D", 100_000), (undistributed, "C", 100_000)},
        "settlement:ESC-1": {
            ("asset:bank:cipinang:main", "D", 89_500),
            ("expense:marketplace_fee:cipinang:commission_fee", "D", 8_000),
            ("expense:marketplace_fee:cipinang:service_fee", "D", 2_000),
            ("asset:pph22_prepaid:cipinang", "D", 500),
            ("asset:marketplace_receivable:cipinang:shopee", "C", 100_000),
            (undistributed, "D", 100_000),
            (unallocated, "C", 100_000),
        },
    }
    held = await _held(engine, key)
    assert held is not None and held["held"] == 100_000
    assert "do not cover the material cost 95000" in str(held["reason"])

    posted = await _allocate(engine, key, Pick(right, 1))
    assert [p.removeprefix(f"{key}:") for p in posted] == ["release:s1", f"distribution:{right}"]
    journal = await journal_of(engine, key)
    assert journal["release:s1"] == {(unallocated, "D", 100_000), ("revenue:sales:cipinang", "C", 100_000)}
    # base 89,500; material 40,000; the rest 49,500 split 50/15/35
    assert journal[f"distribution:{right}"] == {
        ("expense:material_cost:cipinang", "D", 40_000),
        ("liability:supplier_payable:cipinang:sup-kayu", "C", 40_000),
        ("expense:pnbp_share:cipinang", "D", 24_750),
        ("liability:pnbp_payable:cipinang", "C", 24_750),
        ("expense:inmate_premi:cipinang", "D", 7_425),
        (f"liability:inmate_savings:{a}", "C", 7_425),
        ("expense:capital_allocation:cipinang", "D", 17_325),
        ("equity:production_capital:cipinang", "C", 17_325),
    }
    assert await _held(engine, key) is None
