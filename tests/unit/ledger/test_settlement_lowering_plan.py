"""Totals of one marketplace settlement id that went down, on the pure plan step (in memory).

Money that arrived is never dropped: a re-read whose totals went down is either a stale statement (its statement
time is before the last one posted: closed without posting, with the reason) or a genuine lowering (the
marketplace clawed something back: its signed difference posts, amounts that went down on the opposite side, and a
distribution delta that would take back from inmate savings is held for a person).
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from infra.messaging.envelope import Envelope
from services.ledger.domain import accounts
from services.ledger.posting_plan import STALE_SETTLEMENT
from services.ledger.requests import completion_request
from services.ledger.settlement_plan import distribute
from tests.integration.ledger_support import completed, reissued
from tests.unit.ledger.ledger_support import DEMO_POLICIES, MemoryLedger, at
from tests.unit.ledger.test_settlement_cumulative_plan import BANK, KEY, ORDER, RECEIVABLE, Books, totals

FEE = accounts.fee_expense("sukamiskin", "commission_fee")


def _books(gross: int = 104_000) -> Books:
    books = Books()
    books.post([completed(KEY, ORDER, at(0)), totals(gross, "M-1.h1")])
    return books


def _at(envelope: Envelope, days: float) -> Envelope:
    envelope.data["settled_at"] = at(days).isoformat()
    return envelope


def _lines(books: Books, settlement_id: str) -> set[tuple[str, str, int]]:
    entry = books.ledger.entries[f"{KEY}:settlement:{settlement_id}"]
    return {(line.account, line.side.value, line.amount) for line in entry.lines}


def test_a_stale_reread_is_closed_without_posting_and_its_redelivery_changes_nothing() -> None:
    books = _books()
    balances = dict(books.ledger.balances)
    stale = _at(totals(100_000, "M-1.h0"), 2)  # an older statement (day 2) read after the posted one (day 3)
    plan = books.post([stale])
    assert plan.entries == [] and plan.refused == [] and plan.conflicts == []
    assert [(e.event_id, r) for e, r in plan.closed] == [
        (stale.event_id, STALE_SETTLEMENT.format(id="M-1", last="M-1.h1"))
    ]
    assert books.facts[KEY].latest == {"M-1": "M-1.h1"} and len(books.facts[KEY].settlements) == 1
    again = books.post([reissued(stale)])
    assert again.entries == [] and again.closed == [] and again.conflicts == []
    assert books.ledger.balances == balances


def test_an_older_statement_with_higher_totals_is_stale_too() -> None:
    books = _books(100_000)
    plan = books.post([_at(totals(104_000, "M-1.h0"), 1)])
    assert plan.entries == [] and len(plan.closed) == 1
    assert books.ledger.total(RECEIVABLE) == 4_000


def test_a_lowered_net_posts_on_the_opposite_side_and_the_take_back_from_savings_waits_for_a_person() -> None:
    books = _books()
    net_before = books.ledger.total(BANK)
    plan = books.post([totals(104_000, "M-1.h2", fee=7_000)])  # the fee went up by 760: the net went down by 760
    assert plan.refused == [] and plan.closed == []
    assert _lines(books, "M-1.h2") == {(FEE, "D", 760), (BANK, "C", 760)}
    assert books.ledger.total(BANK) == net_before - 760
    order = books.facts[KEY]
    assert order.latest == {"M-1": "M-1.h2"} and order.hold is not None and "inmate savings" in order.hold
    assert books.ledger.debits == books.ledger.credits


def test_a_lowered_gross_reopens_the_receivable_and_takes_the_revenue_back() -> None:
    books = _books()
    books.post([_at(totals(100_000, "M-1.h2"), 4)])
    lines = _lines(books, "M-1.h2")
    assert (RECEIVABLE, "D", 4_000) in lines and all(amount > 0 for _, _, amount in lines)
    assert books.ledger.total(RECEIVABLE) == 4_000
    assert books.ledger.debits == books.ledger.credits


def _resolved(books: Books) -> MemoryLedger:
    """The books after a person resolves a held order (as ``karya ledger allocate`` does: take-back allowed)."""
    order = books.facts[KEY]
    if order.hold is not None:
        completion = completion_request(order.effective_completion())
        books.ledger.post(distribute(order, completion, DEMO_POLICIES).entries)
    return books.ledger


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(40, 104).map(lambda k: k * 1_000), min_size=1, max_size=6))
def test_any_totals_under_one_id_end_as_one_settlement_of_the_last(grosses: list[int]) -> None:
    """For totals going up and down under one marketplace id (statement times rising), the cash posted is always
    the last total's net, every entry balances with positive lines, and once a person resolves what was held the
    books are those of one settlement of the last total."""
    books = Books()
    books.post([completed(KEY, ORDER, at(0))])
    for i, gross in enumerate(grosses):
        plan = books.post([_at(totals(gross, f"M-1.h{i}"), 1 + i)])
        assert plan.refused == [] and plan.closed == []
        assert books.ledger.total(BANK) == _net_of(gross)
        assert all(line.amount > 0 for e, _ in plan.entries for line in e.lines)
    one_shot = Books()
    one_shot.post([completed(KEY, ORDER, at(0)), totals(grosses[-1], "ONCE", marketplace_id=None)])
    assert _nonzero(_resolved(books)) == _nonzero(one_shot.ledger)


def _net_of(gross: int) -> int:
    return int(totals(gross, "x").data["net_payout"])


def _nonzero(ledger: MemoryLedger) -> dict[str, int]:
    return {k: v for k, v in ledger.balances.items() if v}
