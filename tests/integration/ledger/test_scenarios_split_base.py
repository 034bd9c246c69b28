"""Split base per policy (issue 17 item 3), worked example of docs/accounting.md ("Split base") on the real
database through the posting use case, asserting every journal line: the same sale of five coconut-shell ladles
under a revenue-base policy with a deduction (``cipinang-coconut-ladle@v1``: koperasi 2%, then 25/25/50 of sales,
the material paid out of the capital share) and under a profit-base one (``cipinang-standard@v1``, 50/15/35 of
proceeds minus material). Each posting names its version, and the stored version says which base it split. A
revenue-base capital share below the material cost holds the proceeds in unallocated, as proceeds below the
material cost do.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from infra.db.engine import make_engine
from infra.db.roles import RoleUrls
from services.ledger.adapters.facts_repo import held_orders
from services.ledger.allocation import held_row
from tests.integration.ledger.scenario_support import T, journal_of
from tests.integration.ledger_support import (
    Batch,
    completed,
    ledger_uow,
    new_inmate,
    new_order_key,
    new_processor,
    post,
    settled,
    uid,
)

pytestmark = pytest.mark.integration

FEES = {"commission_fee": 8_000, "service_fee": 2_000}  # G 100,000; PPh 22 500; N = B = 89,500
RECEIVABLE, UNDISTRIBUTED = "asset:marketplace_receivable:cipinang:shopee", "clearing:undistributed_proceeds:cipinang"
SETTLEMENT_CASH = {
    ("asset:bank:cipinang:main", "D", 89_500),
    ("expense:marketplace_fee:cipinang:commission_fee", "D", 8_000),
    ("expense:marketplace_fee:cipinang:service_fee", "D", 2_000),
    ("asset:pph22_prepaid:cipinang", "D", 500),
    (RECEIVABLE, "C", 100_000),
    (UNDISTRIBUTED, "D", 100_000),
}


@pytest.fixture
async def engine(ledger_db: RoleUrls) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(ledger_db.service, pool_size=2)
    yield engine
    await engine.dispose()


async def _policy_of(engine: AsyncEngine, key: str, batch_id: str) -> tuple[str, dict[str, object]]:
    """The policy version the batch's distribution names, and that version's stored body."""
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT e.policy_ref, p.body FROM ledger.journal_entries e JOIN ledger.split_policies p "
                    "ON e.policy_ref = p.policy_id || '@v' || p.version WHERE e.order_key = :k AND e.batch_id = :b"
                ),
                {"k": key, "b": batch_id},
            )
        ).one()
    return row.policy_ref, row.body


async def _sell_five(engine: AsyncEngine, sku: str, unit_material_cost: int) -> tuple[str, Batch, str, str]:
    key, (a, b) = new_order_key(), sorted((new_inmate(), new_inmate()))
    batch = Batch(f"B-SB-{uid()}", sku, "cipinang", 5, 20_000, unit_material_cost, "sup-kelapa", ((a, 2), (b, 1)))
    reasons = await post(engine, new_processor(), [completed(key, [batch], T), settled(key, 100_000, T, fees=FEES)])
    assert reasons == [], "nothing is dead-lettered"
    return key, batch, a, b


def _sold(batch: Batch, distribution: set[tuple[str, str, int]]) -> dict[str, set[tuple[str, str, int]]]:
    """The order's journal: completion and settlement as always, the distribution of ``batch`` (with its material
    cost of 22,500 to the supplier) as given."""
    material = {
        ("expense:material_cost:cipinang", "D", 22_500),
        ("liability:supplier_payable:cipinang:sup-kelapa", "C", 22_500),
    }
    return {
        "completed": {(RECEIVABLE, "D", 100_000), (UNDISTRIBUTED, "C", 100_000)},
        "settlement:ESC-1": SETTLEMENT_CASH | {("revenue:sales:cipinang", "C", 100_000)},
        f"distribution:{batch.batch_id}": material | distribution,
    }


async def test_revenue_base_splits_sales_and_pays_material_from_the_capital_share(engine: AsyncEngine) -> None:
    key, batch, a, b = await _sell_five(engine, "CPN-CCN-002", 4_500)
    # base = proceeds 89,500; koperasi 2% = 1,790; the rest 87,710 split 25/25/50 = 21,927.5 / 21,927.5 / 43,855
    # (the .5 tie to PNBP, the earlier rule); capital pays the material 22,500: 43,855 − 22,500 = 21,355; premi
    # 21,927 over a:2, b:1
    assert await journal_of(engine, key) == _sold(
        batch,
        {
            ("expense:split_deduction:cipinang", "D", 1_790),
            ("liability:deduction_payable:cipinang:koperasi-cipinang", "C", 1_790),
            ("expense:pnbp_share:cipinang", "D", 21_928),
            ("liability:pnbp_payable:cipinang", "C", 21_928),
            ("expense:inmate_premi:cipinang", "D", 21_927),
            (f"liability:inmate_savings:{a}", "C", 14_618),
            (f"liability:inmate_savings:{b}", "C", 7_309),
            ("expense:capital_allocation:cipinang", "D", 21_355),
            ("equity:production_capital:cipinang", "C", 21_355),
        },
    )
    ref, body = await _policy_of(engine, key, batch.batch_id)
    assert ref == "cipinang-coconut-ladle@v1"
    assert body["base"] == "revenue"
    assert body["deductions"] == [
        {"name": "koperasi", "rate": "1/50", "account": "liability:deduction_payable:koperasi-cipinang"}
    ]


async def test_profit_base_splits_proceeds_minus_material(engine: AsyncEngine) -> None:
    key, batch, a, b = await _sell_five(engine, "CPN-CCN-001", 4_500)
    # base = proceeds 89,500 − material 22,500 = 67,000, split 50/15/35; premi 10,050 over a:2, b:1
    assert await journal_of(engine, key) == _sold(
        batch,
        {
            ("expense:pnbp_share:cipinang", "D", 33_500),
            ("liability:pnbp_payable:cipinang", "C", 33_500),
            ("expense:inmate_premi:cipinang", "D", 10_050),
            (f"liability:inmate_savings:{a}", "C", 6_700),
            (f"liability:inmate_savings:{b}", "C", 3_350),
            ("expense:capital_allocation:cipinang", "D", 23_450),
            ("equity:production_capital:cipinang", "C", 23_450),
        },
    )
    ref, body = await _policy_of(engine, key, batch.batch_id)
    assert ref == "cipinang-standard@v1"
    assert "base" not in body, "a profit-base version is stored as before (its hash unchanged)"


async def test_revenue_base_capital_share_below_material_holds_the_proceeds(engine: AsyncEngine) -> None:
    # material 12,000 a unit = 60,000: the capital share 43,855 cannot pay it (a profit base could: 89,500 ≥ 60,000)
    key, _batch, _a, _b = await _sell_five(engine, "CPN-CCN-002", 12_000)
    assert await journal_of(engine, key) == {
        "completed": {(RECEIVABLE, "D", 100_000), (UNDISTRIBUTED, "C", 100_000)},
        "settlement:ESC-1": SETTLEMENT_CASH | {("clearing:unallocated_proceeds:cipinang", "C", 100_000)},
    }
    async with engine.connect() as conn:
        held = [held_row(f, since) for f, since in await held_orders(ledger_uow(conn)) if f.order_key == key]
    assert len(held) == 1 and held[0]["held"] == 100_000
    assert "production capital share 43855 of revenue-base policy cipinang-coconut-ladle@v1 does not cover the " in (
        str(held[0]["reason"])
    )
