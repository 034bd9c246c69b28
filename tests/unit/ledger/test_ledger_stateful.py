"""Stateful test of the whole posting model, in memory, with the domain builders only.

Steps: complete / settle (with distribution) / partial refund / full refund / redeliver / conflicting
redelivery / payout / refused payout. After every step: global debits = credits, every entry balanced, no
savings balance negative, each posting key posted once, revenue = settled − refunded, and the clearing and
receivable accounts hold exactly the completed-but-unsettled gross.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from services.ledger.domain import accounts as acc
from services.ledger.domain.distribution import DistributionPlan, plan_distribution
from services.ledger.domain.errors import InsufficientBalanceError
from services.ledger.domain.journal import JournalEntry
from services.ledger.domain.model import CompletionRequest, PayoutRequest, SettlementRequest
from services.ledger.domain.policy import ClawBack
from services.ledger.domain.postings import (
    build_completion,
    build_distribution,
    build_payout,
    build_settlement,
)
from services.ledger.domain.refunds import LineRefund, build_line_refund
from tests.unit.ledger.ledger_support import (
    DEMO_POLICIES,
    INMATE_LAPAS,
    Conflict,
    MemoryLedger,
    at,
    completions,
    per_lapas_totals,
    settlements,
)


@dataclass
class OrderState:
    completion: CompletionRequest
    settlement: SettlementRequest | None = None
    plan: DistributionPlan | None = None
    refunded: int = 0
    refund_count: int = 0
    taken: dict[str, int] = field(default_factory=dict)


@dataclass
class Delivery:
    """What one event produced, and how to build it again from a changed payload (same posting keys)."""

    entries: list[JournalEntry]
    changed: Callable[[], list[JournalEntry]]


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.ledger = MemoryLedger()
        self.orders: dict[str, OrderState] = {}
        self.deliveries: list[Delivery] = []
        self.settled = 0
        self.refunded = 0
        self.payouts = 0

    # --- helpers -------------------------------------------------------------------------------------

    def _post(self, entries: list[JournalEntry], changed: Callable[[], list[JournalEntry]]) -> None:
        fresh = self.ledger.post(entries)
        assert len(fresh) == len(entries), "a new event must not collide with an existing posting key"
        self.deliveries.append(Delivery(entries, changed))

    def _settled_orders(self, open_only: bool = True) -> list[str]:
        return sorted(
            k
            for k, o in self.orders.items()
            if o.plan is not None and (not open_only or o.refunded < o.completion.gross)
        )

    # --- rules -----------------------------------------------------------------------------------------

    @rule(data=st.data())
    def complete(self, data: st.DataObject) -> None:
        completion = data.draw(completions(order_id=f"{len(self.orders) + 1:06d}"))
        self._post(
            [build_completion(completion)],
            lambda: [build_completion(replace(completion, gross=completion.gross + 1))],
        )
        self.orders[completion.order.order_key] = OrderState(completion)

    @precondition(lambda self: any(o.settlement is None for o in self.orders.values()))
    @rule(data=st.data())
    def settle(self, data: st.DataObject) -> None:
        key = data.draw(st.sampled_from(sorted(k for k, o in self.orders.items() if o.settlement is None)))
        order = self.orders[key]
        settlement = data.draw(settlements(order.completion))
        plan = plan_distribution(order.completion, settlement, DEMO_POLICIES)
        gross = order.completion.gross
        self._post(
            [build_settlement(settlement, gross), *build_distribution(plan, settlement)],
            lambda: [build_settlement(replace(settlement, net_payout=settlement.net_payout + 1), gross)],
        )
        order.settlement, order.plan = settlement, plan
        self.settled += order.completion.gross

    def _refund(self, key: str, amount: int, data: st.DataObject) -> None:
        order = self.orders[key]
        assert order.plan is not None and order.settlement is not None
        order.refund_count += 1
        fees_returned = data.draw(st.integers(min_value=0, max_value=amount // 20))
        request = LineRefund(
            order.completion.order,
            f"rf-{order.refund_count}",
            amount,
            order.settlement.settled_at + timedelta(days=order.refund_count),
            fees_returned=fees_returned,
        )
        claw_back = {b.policy_ref: data.draw(st.sampled_from(list(ClawBack))) for b in order.plan.batches}
        plan, refunded_before, taken, allocations = (
            order.plan,
            order.refunded,
            order.taken,
            order.completion.allocations,
        )
        later = replace(request, refunded_at=request.refunded_at + timedelta(hours=1))
        entries, order.taken = build_line_refund(
            plan, allocations, request, refunded_before, taken, claw_back, self.ledger.balances
        )
        self._post(
            entries,
            lambda: build_line_refund(plan, allocations, later, refunded_before, taken, claw_back, {})[0],
        )
        order.refunded += amount
        self.refunded += amount

    @precondition(lambda self: any(o.completion.gross - o.refunded >= 2 for o in self.orders.values() if o.plan))
    @rule(data=st.data())
    def partial_refund(self, data: st.DataObject) -> None:
        keys = [k for k in self._settled_orders() if self.orders[k].completion.gross - self.orders[k].refunded >= 2]
        key = data.draw(st.sampled_from(keys))
        remaining = self.orders[key].completion.gross - self.orders[key].refunded
        self._refund(key, data.draw(st.integers(min_value=1, max_value=remaining - 1)), data)

    @precondition(lambda self: bool(self._settled_orders()))
    @rule(data=st.data())
    def full_refund(self, data: st.DataObject) -> None:
        key = data.draw(st.sampled_from(self._settled_orders()))
        order = self.orders[key]
        self._refund(key, order.completion.gross - order.refunded, data)

    @precondition(lambda self: bool(self.deliveries))
    @rule(data=st.data())
    def redeliver(self, data: st.DataObject) -> None:
        delivery = data.draw(st.sampled_from(self.deliveries))
        before = (dict(self.ledger.balances), len(self.ledger.posted_keys))
        assert self.ledger.post(delivery.entries) == []
        assert (self.ledger.balances, len(self.ledger.posted_keys)) == before

    @precondition(lambda self: bool(self.deliveries))
    @rule(data=st.data())
    def redeliver_changed_payload(self, data: st.DataObject) -> None:
        """Same posting keys, different payload: a conflict, and nothing is posted."""
        delivery = data.draw(st.sampled_from(self.deliveries))
        before = (dict(self.ledger.balances), len(self.ledger.posted_keys))
        with pytest.raises(Conflict):
            self.ledger.post(delivery.changed())
        assert (self.ledger.balances, len(self.ledger.posted_keys)) == before

    def _inmates_with_savings(self) -> list[str]:
        prefix = "liability:inmate_savings:"
        return sorted(k.removeprefix(prefix) for k, v in self.ledger.balances.items() if k.startswith(prefix) and v > 0)

    @precondition(lambda self: bool(self._inmates_with_savings()))
    @rule(data=st.data())
    def payout(self, data: st.DataObject) -> None:
        inmate = data.draw(st.sampled_from(self._inmates_with_savings()))
        balance = self.ledger.balances[acc.inmate_savings(inmate)]
        amount = data.draw(st.one_of(st.just(balance), st.integers(min_value=1, max_value=balance)))
        self.payouts += 1
        request = PayoutRequest(inmate, f"release-{self.payouts}", amount, at(800))
        self._post(
            [build_payout(request, self.ledger.balances, INMATE_LAPAS[inmate])],
            lambda: [
                build_payout(
                    replace(request, paid_at=at(801)), {acc.inmate_savings(inmate): amount}, INMATE_LAPAS[inmate]
                )
            ],
        )

    @precondition(lambda self: bool(self.orders))
    @rule(data=st.data())
    def refused_payout(self, data: st.DataObject) -> None:
        inmate = data.draw(
            st.sampled_from(
                sorted(
                    {m.inmate_id for o in self.orders.values() for a in o.completion.allocations for m in a.work_group}
                )
            )
        )
        balance = self.ledger.balances.get(acc.inmate_savings(inmate), 0)
        request = PayoutRequest(inmate, "too-much", balance + data.draw(st.integers(1, 10**6)), at(800))
        with pytest.raises(InsufficientBalanceError):
            build_payout(request, self.ledger.balances, INMATE_LAPAS[inmate])

    # --- invariants ------------------------------------------------------------------------------------

    @invariant()
    def debits_equal_credits(self) -> None:
        assert self.ledger.debits == self.ledger.credits
        assert (
            sum(v if acc.account_info(k).normal_side is acc.Side.DEBIT else -v for k, v in self.ledger.balances.items())
            == 0
        )

    @invariant()
    def every_lapas_books_balance(self) -> None:
        # Each lapas' trial balance sums to zero on its own, no account is of no lapas, and their sum is the ledger.
        totals = per_lapas_totals(self.ledger.balances, INMATE_LAPAS)
        assert None not in totals and all(v == 0 for v in totals.values()), totals

    @invariant()
    def every_entry_is_balanced(self) -> None:
        for entry in self.ledger.entries.values():
            entry.validate()
            assert entry.debit_total == entry.credit_total

    @invariant()
    def no_savings_negative(self) -> None:
        for account, balance in self.ledger.balances.items():
            if account.startswith(("liability:inmate_savings:", "asset:inmate_receivable:")):
                assert balance >= 0, (account, balance)

    @invariant()
    def each_posting_key_once(self) -> None:
        assert len(self.ledger.posted_keys) == len(set(self.ledger.posted_keys)) == len(self.ledger.entries)

    @invariant()
    def revenue_is_settled_minus_refunded(self) -> None:
        assert self.ledger.total("revenue:sales:") == self.settled - self.refunded

    @invariant()
    def clearing_holds_unsettled_gross(self) -> None:
        unsettled = sum(o.completion.gross for o in self.orders.values() if o.settlement is None)
        assert self.ledger.total("clearing:undistributed_proceeds:") == unsettled
        assert self.ledger.total("asset:marketplace_receivable:") == unsettled


LedgerMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
TestLedgerMachine = LedgerMachine.TestCase
