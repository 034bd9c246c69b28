"""Worked refund scenarios (A), (B), (G) of docs/accounting.md on the real database, through the posting and payout
use cases, asserting every journal line of the order: a partial refund after distribution and payout closes the
order's books with no residual; a refund netted in the escrow clears suspense instead of paying twice; a line refund
on a two-line order reverses only the refunded line's batch.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from infra.db.engine import make_engine
from infra.db.roles import RoleUrls
from infra.messaging.envelope import Envelope
from services.ledger.outbound import LedgerTopics
from services.ledger.payouts import pay_out
from tests.integration import ledger_support as ls
from tests.integration.ledger.scenario_support import T, journal_of

pytestmark = pytest.mark.integration

RECEIVABLE, BANK, PPH, SUSPENSE = (
    "asset:marketplace_receivable:sukamiskin:shopee",
    "asset:bank:sukamiskin:main",
    "asset:pph22_prepaid:sukamiskin",
    ("clearing:suspense:sukamiskin"),
)
UNDISTRIBUTED, REVENUE = "clearing:undistributed_proceeds:sukamiskin", "revenue:sales:sukamiskin"
RETURNED = "expense:marketplace_fee:sukamiskin:fees_returned"
MATERIAL, PNBP_X, PREMI_X, CAPITAL_X = (
    "expense:material_cost:sukamiskin",
    "expense:pnbp_share:sukamiskin",
    "expense:inmate_premi:sukamiskin",
    "expense:capital_allocation:sukamiskin",
)
SUPPLIER, PNBP, CAPITAL = (
    "liability:supplier_payable:sukamiskin:sup-kain",
    "liability:pnbp_payable:sukamiskin",
    ("equity:production_capital:sukamiskin"),
)


def sold(gross: int, net: int, fees: dict[str, int], pph: int, suspense: int = 0) -> set[tuple[str, str, int]]:
    """The settlement entry's lines of a shopee order of sukamiskin (revenue recognised at ``gross``)."""
    lines = {(BANK, "D", net), (PPH, "D", pph), (UNDISTRIBUTED, "D", gross), (RECEIVABLE, "C", gross)}
    lines |= {(f"expense:marketplace_fee:sukamiskin:{t}", "D", a) for t, a in fees.items()} | {(REVENUE, "C", gross)}
    return lines | ({(SUSPENSE, "D", suspense)} if suspense else set())


def distributed(savings: str, material: int, pnbp: int, premi: int, capital: int) -> set[tuple[str, str, int]]:
    """A distribution entry's lines for one batch of sukamiskin (supplier sup-kain, one inmate)."""
    pairs = [
        (MATERIAL, SUPPLIER, material),
        (PNBP_X, PNBP, pnbp),
        (PREMI_X, savings, premi),
        (CAPITAL_X, CAPITAL, capital),
    ]
    return {(d, "D", a) for d, _, a in pairs} | {(c, "C", a) for _, c, a in pairs}


@pytest.fixture
async def engine(ledger_db: RoleUrls) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(ledger_db.service, pool_size=2)
    yield engine
    await engine.dispose()


def line_refund(key: str, refund_id: str, amount: int, lines: list[tuple[str, int, int]], **extra: Any) -> Envelope:
    """A ``refund_reported`` with lines ``(seller_sku, quantity, amount)`` and the gateway's new fields."""
    envelope = ls.refunded(key, refund_id, amount, T + timedelta(days=9))
    envelope.data["lines"] = [{"seller_sku": s, "quantity": q, "amount": a} for s, q, a in lines]
    envelope.data.update(extra)
    return envelope


def netted_escrow(key: str) -> tuple[Envelope, Envelope]:
    """Scenario B's escrow of 3 units at 100,000 and its refund of one unit, netted in it: the escrow already
    deducts the refund less what the marketplace gives back (300,000 − 21,000 − 1,500 − 93,500 = 184,000)."""
    escrow = ls.settled(key, 300_000, T, fees={"commission_fee": 18_000, "service_fee": 3_000}, net=184_000)
    lines = [("SMK-BTK-001", 1, 100_000)]
    given_back = {"fees_returned": 6_000, "pph22_returned": 500}
    refund = line_refund(key, "RF-1", 100_000, lines, **given_back, netted_in_settlement=True)
    return escrow, refund


def order_residual(journal: dict[str, set[tuple[str, str, int]]]) -> int:
    """Revenue − fees − PPh 22 − distribution expenses of one order (credit-positive on revenue)."""
    total = 0
    for lines in journal.values():
        for account, side, amount in lines:
            signed = amount if side == "C" else -amount
            if account.startswith("revenue:") or account.startswith(("expense:", PPH)):
                total += signed
    return total


async def test_scenario_a_partial_refund_after_distribution_and_payout_leaves_no_residual(engine: AsyncEngine) -> None:
    key, inmate = ls.new_order_key("shopee"), ls.new_inmate()
    batch = ls.Batch(f"B-A-{ls.uid()}", "SMK-BTK-001", "sukamiskin", 3, 100_000, 20_000, "sup-kain", ((inmate, 1),))
    processor = ls.new_processor()
    escrow = ls.settled(key, 300_000, T, fees={"commission_fee": 18_000, "service_fee": 3_000})  # N = 277,500
    assert await ls.post(engine, processor, [ls.completed(key, [batch], T), escrow]) == []
    async with engine.begin() as conn:
        paid = await pay_out(
            ls.ledger_uow(conn), LedgerTopics(), inmate, 32_625, f"REL-{ls.uid()}", T + timedelta(days=7)
        )
    assert paid.posted and paid.savings_after == 0
    refund = line_refund(key, "RF-1", 150_000, [("SMK-BTK-001", 1, 100_000)])  # + 50,000 not on a line
    assert await ls.post(engine, processor, [refund]) == []
    assert await ls.post(engine, processor, [ls.reissued(refund)]) == [], "a redelivery posts nothing"

    savings, b = f"liability:inmate_savings:{inmate}", batch.batch_id
    journal = await journal_of(engine, key)
    assert journal == {
        "completed": {(RECEIVABLE, "D", 300_000), (UNDISTRIBUTED, "C", 300_000)},
        "settlement:ESC-1": sold(300_000, 277_500, {"commission_fee": 18_000, "service_fee": 3_000}, 1_500),
        f"distribution:{b}": distributed(savings, 60_000, 54_375, 32_625, 130_500),
        "refund:RF-1": {(REVENUE, "D", 150_000), (BANK, "C", 150_000)},
        # 150,000 of 277,500 taken back by leg: material 32,432 and premi 17,635 stay (absorbed by capital),
        # PNBP 29,392 and capital 70,541 reversed.
        f"refund:RF-1:{b}": {
            (PNBP, "D", 29_392),
            (CAPITAL, "D", 120_608),
            (PNBP_X, "C", 29_392),
            (CAPITAL_X, "C", 120_608),
        },
    }
    assert order_residual(journal) == 0, "before: -11,250 (the refunded share of fees and PPh 22) nobody owned"


async def test_scenario_b_refund_netted_in_the_escrow_clears_suspense(engine: AsyncEngine) -> None:
    key, inmate = ls.new_order_key("shopee"), ls.new_inmate()
    batch = ls.Batch(f"B-B-{ls.uid()}", "SMK-BTK-001", "sukamiskin", 3, 100_000, 20_000, "sup-kain", ((inmate, 1),))
    processor = ls.new_processor()
    escrow, refund = netted_escrow(key)
    assert await ls.post(engine, processor, [ls.completed(key, [batch], T), escrow, refund]) == []

    savings, b = f"liability:inmate_savings:{inmate}", batch.batch_id
    journal = await journal_of(engine, key)
    assert journal == {
        "completed": {(RECEIVABLE, "D", 300_000), (UNDISTRIBUTED, "C", 300_000)},
        "settlement:ESC-1": sold(
            300_000, 184_000, {"commission_fee": 18_000, "service_fee": 3_000}, 1_500, suspense=93_500
        ),
        # B = min(184,000, 277,500) first; the netted refund grosses it up to min(184,000 + 93,500, 277,500)
        f"distribution:{b}": distributed(savings, 60_000, 31_000, 18_600, 74_400),
        f"distribution:{b}:s2": distributed(savings, 0, 23_375, 14_025, 56_100)
        - {(MATERIAL, "D", 0), (SUPPLIER, "C", 0)},
        "refund:RF-1": {(REVENUE, "D", 100_000), (SUSPENSE, "C", 93_500), (RETURNED, "C", 6_000), (PPH, "C", 500)},
        # then takes the 93,500 back from the refunded line's batch, as scenario A's refund paid from the bank
        f"refund:RF-1:{b}": {
            (PNBP, "D", 18_321),
            (CAPITAL, "D", 75_179),
            (PNBP_X, "C", 18_321),
            (CAPITAL_X, "C", 75_179),
        },
    }
    assert order_residual(journal) == 0
    async with engine.connect() as conn:
        suspense = await conn.execute(
            text(
                "SELECT COALESCE(sum(CASE l.side WHEN 'D' THEN l.amount ELSE -l.amount END), 0) FROM "
                "ledger.journal_entries e JOIN ledger.journal_lines l USING (sequence) "
                "WHERE e.order_key = :k AND l.account = :a"
            ),
            {"k": key, "a": SUSPENSE},
        )
        assert suspense.scalar_one() == 0, "nothing of the order left in suspense"


async def test_scenario_g_line_refund_on_a_two_line_order_reverses_only_that_batch(engine: AsyncEngine) -> None:
    key, a, b = ls.new_order_key("shopee"), ls.new_inmate(), ls.new_inmate()
    x = ls.Batch(f"B-GX-{ls.uid()}", "SMK-BTK-001", "sukamiskin", 2, 100_000, 20_000, "sup-kain", ((a, 1),))
    y = ls.Batch(f"B-GY-{ls.uid()}", "SMK-MBL-002", "sukamiskin", 1, 50_000, 10_000, "sup-kain", ((b, 1),))
    processor = ls.new_processor()
    escrow = ls.settled(key, 250_000, T, fees={"commission_fee": 15_000})  # PPh 22 1,250, N = 233,750
    refund = line_refund(key, "RF-1", 50_000, [("SMK-MBL-002", 1, 50_000)], fees_returned=3_000, pph22_returned=250)
    assert await ls.post(engine, processor, [ls.completed(key, [x, y], T), escrow]) == []
    assert await ls.post(engine, processor, [refund]) == []

    journal = await journal_of(engine, key)
    assert journal == {
        "completed": {(RECEIVABLE, "D", 250_000), (UNDISTRIBUTED, "C", 250_000)},
        "settlement:ESC-1": sold(250_000, 233_750, {"commission_fee": 15_000}, 1_250),
        # proceeds 187,000 of 233,750
        f"distribution:{x.batch_id}": distributed(f"liability:inmate_savings:{a}", 40_000, 36_750, 22_050, 88_200),
        # proceeds 46,750; 36,750 split 9,187.5 / 5,512.5 / 22,050, the tie to PNBP
        f"distribution:{y.batch_id}": distributed(f"liability:inmate_savings:{b}", 10_000, 9_188, 5_512, 22_050),
        "refund:RF-1": {(REVENUE, "D", 50_000), (BANK, "C", 46_750), (RETURNED, "C", 3_000), (PPH, "C", 250)},
        # Only Y's batch: all its 46,750 back; material 10,000 and premi 5,512 absorbed by capital.
        f"refund:RF-1:{y.batch_id}": {
            (PNBP, "D", 9_188),
            (CAPITAL, "D", 37_562),
            (PNBP_X, "C", 9_188),
            (CAPITAL_X, "C", 37_562),
        },
    }
    assert order_residual(journal) == 0


async def test_two_refunds_in_two_batches_take_back_each_leg_at_most_once(engine: AsyncEngine) -> None:
    """What each batch gave back is kept in the order's facts between batches: refunding the whole order in two
    parts reverses PNBP exactly once, and capital absorbs the fees the marketplace kept."""
    key, inmate = ls.new_order_key("shopee"), ls.new_inmate()
    batch = ls.Batch(f"B-R2-{ls.uid()}", "SMK-BTK-001", "sukamiskin", 3, 100_000, 20_000, "sup-kain", ((inmate, 1),))
    processor = ls.new_processor()
    escrow = ls.settled(key, 300_000, T, fees={"commission_fee": 18_000, "service_fee": 3_000})
    assert await ls.post(engine, processor, [ls.completed(key, [batch], T), escrow]) == []
    assert await ls.post(engine, processor, [line_refund(key, "RF-1", 200_000, [("SMK-BTK-001", 2, 200_000)])]) == []
    assert await ls.post(engine, processor, [line_refund(key, "RF-2", 100_000, [("SMK-BTK-001", 1, 100_000)])]) == []
    journal = await journal_of(engine, key)
    net: dict[str, int] = {}
    for lines in journal.values():
        for account, side, amount in lines:
            net[account] = net.get(account, 0) + (amount if side == "C" else -amount)
    assert net[PNBP] == 0 and net[PNBP_X] == 0, "PNBP reversed exactly once"
    assert net[SUPPLIER] == 60_000, "the supplier keeps the material cost"
    assert net[f"liability:inmate_savings:{inmate}"] == 32_625, "never: the inmate keeps the premi"
    assert net[REVENUE] == 0 and net[BANK] == 22_500, "the bank paid out 22,500 (fees, PPh 22 kept) more than it got"
    assert net[CAPITAL] == -(60_000 + 32_625 + 22_500), "production capital absorbs material, premi and the loss"
    assert order_residual(journal) == 0


async def test_an_amount_only_refund_then_a_line_refund_reverse_each_leg_once(engine: AsyncEngine) -> None:
    """An order refunded first the old way (amount only, pro rata) and then by lines: the line refund starts from
    what the first took back, so refunding the whole order reverses PNBP exactly once."""
    key, inmate = ls.new_order_key("shopee"), ls.new_inmate()
    batch = ls.Batch(f"B-M-{ls.uid()}", "SMK-BTK-001", "sukamiskin", 3, 100_000, 20_000, "sup-kain", ((inmate, 1),))
    processor = ls.new_processor()
    escrow = ls.settled(key, 300_000, T, fees={"commission_fee": 18_000, "service_fee": 3_000})
    assert await ls.post(engine, processor, [ls.completed(key, [batch], T), escrow]) == []
    assert await ls.post(engine, processor, [ls.refunded(key, "RF-OLD", 100_000, T + timedelta(days=8))]) == []
    assert await ls.post(engine, processor, [line_refund(key, "RF-2", 200_000, [("SMK-BTK-001", 2, 200_000)])]) == []
    net: dict[str, int] = {}
    for lines in (await journal_of(engine, key)).values():
        for account, side, amount in lines:
            net[account] = net.get(account, 0) + (amount if side == "C" else -amount)
    assert net[PNBP] == 0 and net[PNBP_X] == 0, "PNBP reversed exactly once"
    assert net[SUPPLIER] >= 0 and net[f"liability:inmate_savings:{inmate}"] >= 0


async def _unsettled(engine: AsyncEngine, key: str) -> tuple[int, str | None]:
    """How many events of the order wait in ``ledger.pending_events``, and its facts' hold."""
    async with engine.connect() as conn:
        parked = await conn.execute(text("SELECT count(*) FROM ledger.pending_events WHERE order_key = :k"), {"k": key})
        state = await conn.execute(text("SELECT settlement FROM ledger.order_facts WHERE order_key = :k"), {"k": key})
        return int(parked.scalar_one()), state.scalar_one().get("hold")


@pytest.mark.parametrize("later", [False, True], ids=["one batch", "refund in a later batch"])
async def test_a_netted_refund_that_took_the_settlement_below_material_cost_closes_the_order(
    engine: AsyncEngine, later: bool
) -> None:
    """The escrow nets a refund of one unit of three: N = 184,000 no longer covers the material cost 195,000, so
    the settlement alone is held. Planned together with its netted refund the distribution covers it (B =
    277,500), the refund takes its 93,500 back from the batch, and nothing is parked, held or left unowned."""
    key, inmate = ls.new_order_key("shopee"), ls.new_inmate()
    batch = ls.Batch(f"B-N-{ls.uid()}", "SMK-BTK-001", "sukamiskin", 3, 100_000, 65_000, "sup-kain", ((inmate, 1),))
    processor = ls.new_processor()
    escrow, refund = netted_escrow(key)
    first = [ls.completed(key, [batch], T), escrow]
    if later:
        assert await ls.post(engine, processor, first) == []
        parked, hold = await _unsettled(engine, key)
        assert parked == 0 and hold is not None and "material cost 195000" in hold
        assert await ls.post(engine, processor, [refund]) == []
    else:
        assert await ls.post(engine, processor, [*first, refund]) == []
    assert await _unsettled(engine, key) == (0, None)
    journal = await journal_of(engine, key)
    assert order_residual(journal) == 0
    net: dict[str, int] = {}
    for lines in journal.values():
        for account, side, amount in lines:
            net[account] = net.get(account, 0) + (amount if side == "C" else -amount)
    assert net[SUPPLIER] == 195_000, "the supplier is paid for the three units (not restockable)"
    assert net.get(SUSPENSE, 0) == 0 and net.get(UNDISTRIBUTED, 0) == 0
    assert net.get("clearing:unallocated_proceeds:sukamiskin", 0) == 0 and net.get(RECEIVABLE, 0) == 0
    assert net[REVENUE] == 200_000 and net[BANK] == -184_000
