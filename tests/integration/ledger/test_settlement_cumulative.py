"""Settlements under one marketplace settlement id are cumulative, on the real database through the posting use
case: the gateway re-reads a TikTok Shop settlement after an adjustment (a new content id carrying the full new
total); the ledger posts only the difference, a third identical re-read posts nothing, and a settlement under
another marketplace id is additional. The distribution follows the cumulative settled amount: the order's books
end exactly as those of an order settled once for the same totals. Totals that went down post their signed
difference (the take-back from savings waits for a person); an older statement read late is closed without posting.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from infra.db.engine import make_engine
from infra.db.roles import RoleUrls
from infra.messaging.envelope import Envelope
from services.ledger.posting_plan import STALE_SETTLEMENT
from tests.integration import ledger_support as support
from tests.integration.ledger.scenario_support import T, journal_of
from tests.integration.ledger_support import Batch, completed, post, settled

pytestmark = pytest.mark.integration

RECEIVABLE, BANK = "asset:marketplace_receivable:sukamiskin:tiktok_shop", "asset:bank:sukamiskin:main"


@pytest.fixture
async def engine(ledger_db: RoleUrls) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(ledger_db.service, pool_size=2)
    yield engine
    await engine.dispose()


def _totals(key: str, gross: int, settlement_id: str, marketplace_id: str | None) -> Envelope:
    envelope = settled(key, gross, T, fees={"commission_fee": gross * 6 // 100}, settlement_id=settlement_id)
    if marketplace_id is not None:
        envelope.data["marketplace_settlement_id"] = marketplace_id
    return envelope


async def _net_by_account(engine: AsyncEngine, key: str) -> dict[str, int]:
    """The order's net debit per account over its whole journal (accounts that net to zero left out)."""
    net: dict[str, int] = {}
    for lines in (await journal_of(engine, key)).values():
        for account, side, amount in lines:
            net[account] = net.get(account, 0) + (amount if side == "D" else -amount)
    return {a: n for a, n in net.items() if n}


async def test_a_reread_posts_its_difference_an_identical_one_nothing_another_id_in_full(engine: AsyncEngine) -> None:
    inmate = support.new_inmate()
    batch = Batch(f"B-C-{support.uid()}", "SMK-BTK-001", "sukamiskin", 3, 52_000, 15_000, "sup-kain", ((inmate, 1),))
    key, processor = support.new_order_key("tiktok_shop"), support.new_processor()
    assert await post(engine, processor, [completed(key, [batch], T), _totals(key, 100_000, "M.h1", "M")]) == []
    assert await post(engine, processor, [_totals(key, 104_000, "M.h2", "M")]) == []
    journal = await journal_of(engine, key)
    # the re-read clears 4,000 of the receivable and pays the 4,000 less its fee and PPh 22 differences
    assert journal["settlement:M.h2"] == {
        (BANK, "D", 3_740),
        ("expense:marketplace_fee:sukamiskin:commission_fee", "D", 240),
        ("asset:pph22_prepaid:sukamiskin", "D", 20),
        (RECEIVABLE, "C", 4_000),
        ("clearing:undistributed_proceeds:sukamiskin", "D", 4_000),
        ("revenue:sales:sukamiskin", "C", 4_000),
    }
    assert f"distribution:{batch.batch_id}:s2" in journal  # the distribution delta of the cumulative 104,000

    assert await post(engine, processor, [_totals(key, 104_000, "M.h3", "M")]) == []
    assert await journal_of(engine, key) == journal, "an identical re-read posts nothing"

    # the same books as an order settled once for 104,000
    once = support.new_order_key("tiktok_shop")
    assert await post(engine, processor, [completed(once, [batch], T), _totals(once, 104_000, "ONCE", None)]) == []
    assert await _net_by_account(engine, key) == await _net_by_account(engine, once)

    assert await post(engine, processor, [_totals(key, 52_000, "M2.h1", "M2")]) == []
    m2 = (await journal_of(engine, key))["settlement:M2.h1"]
    assert {(BANK, "D", 48_620), (RECEIVABLE, "C", 52_000)} <= m2, "another marketplace id is additional"
    books = await _net_by_account(engine, key)
    assert RECEIVABLE not in books and books[BANK] == 93_500 + 3_740 + 48_620


async def _closed(engine: AsyncEngine, key: str) -> list[tuple[str, str]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT event_id::text, reason FROM ledger.closed_without_posting WHERE order_key = :k"), {"k": key}
        )
        return [(r[0], r[1]) for r in rows]


async def _hold(engine: AsyncEngine, key: str) -> str | None:
    async with engine.connect() as conn:
        state = (
            await conn.execute(text("SELECT settlement FROM ledger.order_facts WHERE order_key = :k"), {"k": key})
        ).scalar_one()
    hold = state.get("hold")
    return None if hold is None else str(hold)


async def test_lowered_totals_post_their_signed_difference_and_a_stale_reread_is_closed(engine: AsyncEngine) -> None:
    inmate = support.new_inmate()
    batch = Batch(f"B-L-{support.uid()}", "SMK-BTK-001", "sukamiskin", 2, 52_000, 15_000, "sup-kain", ((inmate, 1),))
    key, processor = support.new_order_key("tiktok_shop"), support.new_processor()
    assert await post(engine, processor, [completed(key, [batch], T), _totals(key, 104_000, "M.h1", "M")]) == []
    journal = await journal_of(engine, key)

    stale = _totals(key, 100_000, "M.h0", "M")  # an older statement (a day before) read after the posted one
    stale.data["settled_at"] = (T - timedelta(days=1)).isoformat()
    assert await post(engine, processor, [stale]) == [], "a stale re-read is no dead letter"
    assert await journal_of(engine, key) == journal
    assert await _closed(engine, key) == [(str(stale.event_id), STALE_SETTLEMENT.format(id="M", last="M.h1"))]

    # the marketplace claws back 4,000 of gross (and the fees and PPh 22 on it) a day later: the difference posts
    lowered = _totals(key, 100_000, "M.h2", "M")
    lowered.data["settled_at"] = (T + timedelta(days=1)).isoformat()
    assert await post(engine, processor, [lowered]) == [], "a lowering is no dead letter"
    journal = await journal_of(engine, key)
    assert journal["settlement:M.h2"] == {
        (BANK, "C", 3_740),
        ("expense:marketplace_fee:sukamiskin:commission_fee", "C", 240),
        ("asset:pph22_prepaid:sukamiskin", "C", 20),
        (RECEIVABLE, "D", 4_000),
        ("clearing:undistributed_proceeds:sukamiskin", "C", 4_000),
        ("clearing:unallocated_proceeds:sukamiskin", "D", 4_000),
    }
    hold = await _hold(engine, key)
    assert hold is not None and "back from inmate savings: a person decides" in hold
    books = await _net_by_account(engine, key)
    assert books[BANK] == 93_500 and books[RECEIVABLE] == 4_000
