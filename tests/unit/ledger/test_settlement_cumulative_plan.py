"""Settlements under one marketplace settlement id are cumulative, on the pure plan step (in memory).

The gateway names each settlement's content (``settlement_id``) and reports the marketplace's current totals for
its own id (``marketplace_settlement_id``): a re-read after an adjustment is a new settlement id carrying the full
new total. The plan posts only what it adds to the totals posted last for that id, nothing when it adds nothing
(totals that went down: ``test_settlement_lowering_plan.py``); a settlement under another id, or under none (old
events), is additional.
Between batches the facts go through their stored form, as the database keeps them.
"""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from infra.messaging.envelope import Envelope
from services.ledger.domain import accounts
from services.ledger.domain.facts import OrderFacts
from services.ledger.domain.tax import TaxSetting
from services.ledger.posting_plan import PostingInputs, PostingPlan, plan_postings
from services.ledger.requests import RecentCompletions
from tests.integration.ledger_support import Batch, completed, reissued, settled
from tests.unit.ledger.ledger_support import DEMO_POLICIES, MemoryLedger, at

KEY = "tiktok_shop:shop-1:9101"
ORDER = [Batch("B-9101", "SMK-BTK-001", "sukamiskin", 2, 52_000, 15_000, "sup-kain", (("WBP-SMK001", 1),))]
BANK, RECEIVABLE = accounts.bank("sukamiskin"), accounts.marketplace_receivable("sukamiskin", "tiktok_shop")


def totals(gross: int, settlement_id: str, marketplace_id: str | None = "M-1", fee: int | None = None) -> Envelope:
    """A settlement reporting ``gross`` (fees 6% unless ``fee``) as the totals of ``marketplace_id``."""
    envelope = settled(KEY, gross, at(3), fees={"commission_fee": gross * 6 // 100 if fee is None else fee})
    envelope.data["settlement_id"] = settlement_id
    if marketplace_id is not None:
        envelope.data["marketplace_settlement_id"] = marketplace_id
    return envelope


class Books:
    """A memory journal fed batch by batch through :func:`plan_postings`, the facts stored between batches."""

    def __init__(self, taxes: Sequence[TaxSetting] = ()) -> None:
        self.ledger = MemoryLedger()
        self.facts: dict[str, OrderFacts] = {}
        self.taxes = list(taxes)

    def post(self, work: Sequence[Envelope]) -> PostingPlan:
        """Plan ``work`` against the facts so far, post the entries and keep the facts as stored."""
        inputs = PostingInputs(list(work), self.facts, DEMO_POLICIES, {}, {}, tax_settings=self.taxes)
        plan = plan_postings(inputs, RecentCompletions())
        self.ledger.post([e for e, _ in plan.entries])
        self.facts = {
            k: OrderFacts.stored(k, f.lapas_id, f.completion, f.state(), f.refunded_gross)
            for k, f in plan.facts.items()
        }
        return plan


def _one_shot(gross: int) -> MemoryLedger:
    """The books of the order settled once, at ``gross``."""
    books = Books()
    books.post([completed(KEY, ORDER, at(0)), totals(gross, "ONCE", marketplace_id=None)])
    return books.ledger


def test_a_reread_posts_only_the_difference_and_the_books_equal_one_settlement_of_the_new_total() -> None:
    books = Books()
    books.post([completed(KEY, ORDER, at(0)), totals(100_000, "M-1.h1")])
    assert books.ledger.total(RECEIVABLE) == 4_000
    bank_before = books.ledger.total(BANK)
    plan = books.post([totals(104_000, "M-1.h2")])
    settlement = next(e for e, _ in plan.entries if e.posting_key == f"{KEY}:settlement:M-1.h2")
    lines = {(line.account, line.side.value, line.amount) for line in settlement.lines}
    assert (RECEIVABLE, "C", 4_000) in lines
    assert books.ledger.total(RECEIVABLE) == 0
    assert books.ledger.total(BANK) - bank_before == 4_000 - 240 - 20  # the difference of net: 4,000 − fee − PPh 22
    assert _nonzero(books.ledger) == _nonzero(_one_shot(104_000))  # the distribution followed cumulatively
    assert books.facts[KEY].latest == {"M-1": "M-1.h2"}


def test_an_identical_reread_or_redelivery_posts_nothing_and_is_recorded() -> None:
    books = Books()
    first, second = totals(100_000, "M-1.h1"), totals(104_000, "M-1.h2")
    books.post([completed(KEY, ORDER, at(0)), first])
    books.post([second])
    balances = dict(books.ledger.balances)
    same_totals = totals(104_000, "M-1.h3")  # same money, another content id (e.g. another row order)
    for work in ([same_totals], [reissued(second)], [reissued(first)]):
        plan = books.post(work)
        assert plan.entries == [] and plan.conflicts == [] and plan.refused == []
    assert books.ledger.balances == balances
    assert books.facts[KEY].latest == {"M-1": "M-1.h3"} and len(books.facts[KEY].settlements) == 2


def test_another_marketplace_id_or_none_is_an_additional_settlement() -> None:
    books = Books()
    books.post([completed(KEY, ORDER, at(0)), totals(60_000, "M-1.h1")])
    books.post([totals(30_000, "M-2.h1", marketplace_id="M-2")])
    books.post([totals(14_000, "OLD-1", marketplace_id=None)])
    assert books.ledger.total(RECEIVABLE) == 0
    assert books.ledger.total(BANK) == sum(_net(g) for g in (60_000, 30_000, 14_000))
    assert len(books.facts[KEY].settlements) == 3


def _net(gross: int) -> int:
    data = totals(gross, "x").data
    return int(data["net_payout"])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 104).map(lambda k: k * 1_000), min_size=1, max_size=6), st.booleans())
def test_any_rising_totals_under_one_id_post_the_last_total(grosses: list[int], twice: bool) -> None:
    """For any non-decreasing totals under one marketplace id (each a new content id; with ``twice`` each also
    re-read under another id), the cash posted is the last total's net and the books are those of one
    settlement of the last total (receivable, fees, PPh 22, suspense, revenue and the distribution alike).

    Totals up to the order's gross: above it, a later delta may take a rupiah back from savings and be held
    for a person — the cumulative distribution's rule for any later settlement, not this one's."""
    grosses.sort()
    books = Books()
    books.post([completed(KEY, ORDER, at(0))])
    for i, gross in enumerate(grosses):
        books.post([totals(gross, f"M-1.h{i}")] + ([totals(gross, f"M-1.r{i}")] if twice else []))
        assert books.ledger.total(BANK) == _net(gross)
    assert _nonzero(books.ledger) == _nonzero(_one_shot(grosses[-1]))


def _nonzero(ledger: MemoryLedger) -> dict[str, int]:
    return {k: v for k, v in ledger.balances.items() if v}
