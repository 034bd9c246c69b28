"""Worked scenario (F) of docs/accounting.md on the real database, through the posting use case, asserting every
journal line: a settlement short of what was expected, then an adjustment days later paying the rest. The second
settlement posts under its own key, and the distribution posts only the difference to the split of the cumulative
settlement; redelivering either changes nothing, a changed one is a conflict.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from infra.db.engine import make_engine
from infra.db.roles import RoleUrls
from infra.messaging.envelope import make_envelope
from tests.integration.ledger.scenario_support import T, journal_of
from tests.integration.ledger_support import (
    Batch,
    completed,
    new_inmate,
    new_order_key,
    new_processor,
    post,
    reissued,
    settled,
    uid,
)

pytestmark = pytest.mark.integration


@pytest.fixture
async def engine(ledger_db: RoleUrls) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(ledger_db.service, pool_size=2)
    yield engine
    await engine.dispose()


async def test_scenario_f_an_adjustment_days_later_posts_its_delta(engine: AsyncEngine) -> None:
    key = new_order_key("tiktok_shop")
    a, b = sorted((new_inmate(), new_inmate()))
    batch = Batch(f"B-F-{uid()}", "SMK-BTK-001", "sukamiskin", 3, 70_000, 15_000, "sup-kain", ((a, 1), (b, 1)))
    processor = new_processor()
    fees = {"commission_fee": 12_600, "service_fee": 4_200}
    first = settled(key, 210_000, T, fees=fees, net=190_000)  # 2,150 short of 210,000 − 16,800 − 1,050
    later = T + timedelta(days=5)
    adjustment = settled(key, 0, later, fees={}, settlement_id="ADJ-1", net=2_150)
    adjustment.data["pph22_withheld"] = 0
    assert await post(engine, processor, [completed(key, [batch], T), first]) == []
    assert await post(engine, processor, [adjustment]) == []
    assert await post(engine, processor, [reissued(first), reissued(adjustment)]) == [], "redeliveries post nothing"

    receivable, undistributed = (
        "asset:marketplace_receivable:sukamiskin:tiktok_shop",
        "clearing:undistributed_proceeds:sukamiskin",
    )
    d1, d2 = f"distribution:{batch.batch_id}", f"distribution:{batch.batch_id}:s2"
    savings_a, savings_b = f"liability:inmate_savings:{a}", f"liability:inmate_savings:{b}"
    assert await journal_of(engine, key) == {
        "completed": {(receivable, "D", 210_000), (undistributed, "C", 210_000)},
        "settlement:ESC-1": {
            ("asset:bank:sukamiskin:main", "D", 190_000),
            ("expense:marketplace_fee:sukamiskin:commission_fee", "D", 12_600),
            ("expense:marketplace_fee:sukamiskin:service_fee", "D", 4_200),
            ("asset:pph22_prepaid:sukamiskin", "D", 1_050),
            ("clearing:suspense:sukamiskin", "D", 2_150),
            (receivable, "C", 210_000),
            (undistributed, "D", 210_000),
            ("revenue:sales:sukamiskin", "C", 210_000),
        },
        # base 190,000 (what was paid); material 45,000; the rest 145,000 split 25/15/60; premi 1:1
        d1: {
            ("expense:material_cost:sukamiskin", "D", 45_000),
            ("liability:supplier_payable:sukamiskin:sup-kain", "C", 45_000),
            ("expense:pnbp_share:sukamiskin", "D", 36_250),
            ("liability:pnbp_payable:sukamiskin", "C", 36_250),
            ("expense:inmate_premi:sukamiskin", "D", 21_750),
            (savings_a, "C", 10_875),
            (savings_b, "C", 10_875),
            ("expense:capital_allocation:sukamiskin", "D", 87_000),
            ("equity:production_capital:sukamiskin", "C", 87_000),
        },
        # the adjustment clears nothing of the receivable: its cash settles the suspense
        "settlement:ADJ-1": {("asset:bank:sukamiskin:main", "D", 2_150), ("clearing:suspense:sukamiskin", "C", 2_150)},
        # cumulative base 192,150: the rest 147,150 splits 36,788 / 22,072 / 88,290 (the .5 tie to PNBP, the
        # earlier rule); premi 11,036 each; this entry posts the difference to the first distribution
        d2: {
            ("expense:pnbp_share:sukamiskin", "D", 538),
            ("liability:pnbp_payable:sukamiskin", "C", 538),
            ("expense:inmate_premi:sukamiskin", "D", 322),
            (savings_a, "C", 161),
            (savings_b, "C", 161),
            ("expense:capital_allocation:sukamiskin", "D", 1_290),
            ("equity:production_capital:sukamiskin", "C", 1_290),
        },
    }
    changed = make_envelope(
        type=adjustment.type, source="karya/gateway", subject=key, data={**adjustment.data, "net_payout": 2_000}
    )
    assert await post(engine, processor, [changed]) == [
        f"posting conflict on {key}:settlement:ADJ-1: same key, different request"
    ]
    assert len(await journal_of(engine, key)) == 5
