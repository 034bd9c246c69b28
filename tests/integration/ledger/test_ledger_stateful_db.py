"""A Hypothesis state machine over the real journal: complete / settle / partial and full refunds /
redelivery / re-emission / changed payloads / payouts, each step posted by ``LedgerProcessor`` (or as
``karya ledger payout`` does) in a real PostgreSQL transaction; after every step the database-wide
invariants are checked."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, TypeVar

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import text

from infra.db.engine import make_engine
from infra.messaging.envelope import Envelope, make_envelope
from services.ledger.adapters.journal_repo import normal_balances, post_entries
from services.ledger.domain import accounts
from services.ledger.domain.errors import InsufficientBalanceError
from services.ledger.domain.model import PayoutRequest
from services.ledger.domain.postings import build_payout
from tests.integration.ledger_support import (
    LEDGER_RESET,
    Batch,
    LedgerDatabase,
    as_superuser,
    assert_journal_sound,
    completed,
    ledger_uow,
    new_inmate,
    new_order_key,
    new_processor,
    post,
    refunded,
    reissued,
    settled,
    uid,
)

pytestmark = pytest.mark.integration
R = TypeVar("R")

#: (lapas, SKUs) with a demo policy; Kerobokan changes policy version on 2026-07-01 (+08:00).
LAPAS = {
    "cipinang": ["CPN-GLV-001", "CPN-WDW-001"],
    "kerobokan": ["KRB-CCN-001", "KRB-MAT-001"],
    "sukamiskin": ["SMK-BTK-001"],
    "tangerang": ["TNG-MAT-001"],
}
_STATE = """SELECT
  (SELECT coalesce(sum(credit_total - debit_total), 0) FROM ledger.account_balances
    WHERE account LIKE 'revenue:sales:%') AS revenue,
  (SELECT count(*) FROM ledger.posting_conflicts) AS conflicts,
  ARRAY(SELECT DISTINCT order_key FROM ledger.pending_events) AS waiting"""
_LEFT_AFTER_FULL_REFUND = """SELECT e.order_key, l.account,
  sum(CASE l.side WHEN 'D' THEN l.amount ELSE -l.amount END) AS net
  FROM ledger.journal_lines l JOIN ledger.journal_entries e USING (sequence)
  WHERE e.order_key = ANY(:k) AND e.kind IN ('distribution', 'refund_reversal') AND l.account LIKE '%pnbp%'
  GROUP BY 1, 2 HAVING sum(CASE l.side WHEN 'D' THEN l.amount ELSE -l.amount END) <> 0"""
_ORDER_INCOME = """SELECT e.order_key, sum(CASE l.side WHEN 'C' THEN l.amount ELSE -l.amount END) AS income
  FROM ledger.journal_lines l JOIN ledger.journal_entries e USING (sequence)
  WHERE e.order_key = ANY(:k) AND (l.account LIKE 'revenue:%' OR l.account LIKE 'expense:%'
    OR l.account LIKE 'asset:pph22_prepaid:%')
  GROUP BY 1"""
MOMENTS = [
    datetime(2026, 3, 1, 9, tzinfo=UTC),
    datetime(2026, 6, 30, 15, 59, tzinfo=UTC),
    datetime(2026, 6, 30, 16, 0, tzinfo=UTC),
    datetime(2026, 9, 1, 9, tzinfo=UTC),
]


def _shortfall(order: Order) -> int:
    """What the order's payout fell short of gross − fees − PPh 22 (undistributed, in suspense), or 0."""
    assert order.settlement is not None
    data = order.settlement.data
    expected = int(data["gross_amount"]) - sum(int(f["amount"]) for f in data["fees"]) - int(data["pph22_withheld"])
    return max(0, expected - int(data["net_payout"]))


@dataclass(repr=False)
class Order:
    """What the test has sent for one order."""

    key: str
    batches: list[Batch]
    at: datetime
    completion: Envelope
    completion_sent: bool = False
    settlement: Envelope | None = None
    refunds: list[tuple[str, int, Envelope]] = field(default_factory=list)

    def __repr__(self) -> str:
        return f"Order({self.key})"

    @property
    def gross(self) -> int:
        """Gross of the completion."""
        return sum(b.value for b in self.batches)

    @property
    def posted(self) -> bool:
        """Completion and settlement both sent: settlement, distribution and every refund are posted."""
        return self.completion_sent and self.settlement is not None

    @property
    def refunded(self) -> int:
        """Gross refunded by the refunds sent."""
        return sum(amount for _, amount, _ in self.refunds)


class LedgerDbMachine(RuleBasedStateMachine):
    """See the module docstring."""

    db: ClassVar[LedgerDatabase]

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.run(as_superuser(self.db.admin_url, *LEDGER_RESET))  # every example starts from an empty journal
        self.engine = make_engine(self.db.urls.service, pool_size=1)
        self.processor = new_processor()
        self.inmates = [new_inmate() for _ in range(3)]
        self.orders: list[Order] = []
        self.sent: list[Envelope] = []
        self.conflicts = 0
        self.payouts = 0

    def run(self, work: Coroutine[Any, Any, R]) -> R:
        """Run ``work`` on this machine's event loop."""
        return self.loop.run_until_complete(work)

    def teardown(self) -> None:
        """Release the engine and the loop."""
        self.run(self.engine.dispose())
        self.loop.close()

    def send(self, envelopes: list[Envelope]) -> None:
        """Post ``envelopes`` as one batch; none may be rejected."""
        assert self.run(post(self.engine, self.processor, envelopes)) == []
        self.sent.extend(envelopes)

    # --- rules

    def _new_order(self, data: st.DataObject) -> Order:
        lapas = data.draw(st.sampled_from(sorted(LAPAS)), label="lapas")
        key = new_order_key(data.draw(st.sampled_from(["shopee", "tokopedia", "tiktok_shop"]), label="channel"))
        batches = []
        for n in range(data.draw(st.integers(1, 2), label="batches")):
            price = data.draw(st.integers(5_000, 250_000), label="unit price")
            members = data.draw(st.lists(st.sampled_from(self.inmates), min_size=1, max_size=3, unique=True))
            batches.append(
                Batch(
                    f"B-{key[-8:]}-{n}",
                    LAPAS[lapas][n % len(LAPAS[lapas])],
                    lapas,
                    data.draw(st.integers(1, 5)),
                    price,
                    data.draw(st.integers(0, price * 3 // 10), label="unit material cost"),
                    f"sup-{n}",
                    tuple((m, data.draw(st.integers(1, 3), label="work share")) for m in members),
                )
            )
        at = data.draw(st.sampled_from(MOMENTS), label="completed at")
        order = Order(key, batches, at, completed(key, batches, at))
        self.orders.append(order)
        return order

    def _settlement(self, order: Order, data: st.DataObject) -> Envelope:
        gross = order.gross
        fees = {
            "commission_fee": data.draw(st.integers(0, gross // 10)),
            "service_fee": data.draw(st.integers(0, 500)),
        }
        expected = gross - sum(fees.values()) - (gross * 5 + 500) // 1000
        net = expected + data.draw(st.sampled_from([0, 0, 0, -1, 7, -(gross // 50)]), label="payout difference")
        return settled(
            order.key,
            gross,
            order.at + timedelta(days=3),
            fees=fees,
            net=net,
            settlement_id=f"ESC-{order.key[-8:]}",
        )

    def _refund(self, order: Order, amount: int) -> Envelope:
        refund_id = f"R{len(order.refunds) + 1}"
        envelope = refunded(order.key, refund_id, amount, order.at + timedelta(days=5 + len(order.refunds)))
        order.refunds.append((refund_id, amount, envelope))
        return envelope

    @rule(data=st.data(), complete_now=st.booleans())
    def create(self, data: st.DataObject, complete_now: bool) -> None:
        """A new order; its completion now or later (a settlement or refund may then arrive first)."""
        order = self._new_order(data)
        if complete_now:
            order.completion_sent = True
            self.send([order.completion])

    @rule(data=st.data())
    def whole_life_in_one_batch(self, data: st.DataObject) -> None:
        """Completion, settlement and maybe a refund of a new order in one batch, in any order."""
        order = self._new_order(data)
        order.settlement = self._settlement(order, data)
        order.completion_sent = True
        events = [order.completion, order.settlement]
        if data.draw(st.booleans(), label="with refund"):
            events.append(self._refund(order, data.draw(st.integers(1, order.gross), label="refund")))
        self.send(data.draw(st.permutations(events), label="batch order"))

    @precondition(lambda self: any(not o.completion_sent for o in self.orders))
    @rule(data=st.data())
    def complete(self, data: st.DataObject) -> None:
        """The completion of an order created without one."""
        order = data.draw(st.sampled_from([o for o in self.orders if not o.completion_sent]))
        order.completion_sent = True
        self.send([order.completion])

    @precondition(lambda self: any(o.settlement is None for o in self.orders))
    @rule(data=st.data())
    def settle(self, data: st.DataObject) -> None:
        """The settlement of an order (before its completion, it waits)."""
        order = data.draw(st.sampled_from([o for o in self.orders if o.settlement is None]))
        order.settlement = self._settlement(order, data)
        self.send([order.settlement])

    @precondition(lambda self: any(o.settlement is not None and o.gross - o.refunded >= 2 for o in self.orders))
    @rule(data=st.data(), reemitted=st.booleans())
    def partial_refund(self, data: st.DataObject, reemitted: bool) -> None:
        """Part of what is left refunded (waits for the settlement when that has not been posted); maybe
        re-emitted under a new event id in the same batch."""
        order = data.draw(st.sampled_from([o for o in self.orders if o.settlement and o.gross - o.refunded >= 2]))
        refund = self._refund(order, data.draw(st.integers(1, order.gross - order.refunded - 1)))
        self.send([refund, reissued(refund)] if reemitted else [refund])

    @precondition(lambda self: any(o.settlement is not None and o.gross > o.refunded for o in self.orders))
    @rule(data=st.data(), reemitted=st.booleans())
    def full_refund(self, data: st.DataObject, reemitted: bool) -> None:
        """Everything left refunded (maybe re-emitted in the same batch)."""
        order = data.draw(st.sampled_from([o for o in self.orders if o.settlement and o.gross > o.refunded]))
        refund = self._refund(order, order.gross - order.refunded)
        self.send([refund, reissued(refund)] if reemitted else [refund])

    @precondition(lambda self: bool(self.sent))
    @rule(data=st.data(), new_id=st.booleans(), twice=st.booleans())
    def redeliver(self, data: st.DataObject, new_id: bool, twice: bool) -> None:
        """An event again: the same event (redelivery) or the same payload under a new id (re-emission),
        alone or twice in one batch."""
        envelope = data.draw(st.sampled_from(self.sent))
        copies = [reissued(envelope) if new_id else envelope for _ in range(2 if twice else 1)]
        self.send(copies)

    @precondition(lambda self: any(o.posted for o in self.orders))
    @rule(data=st.data())
    def changed_payload(self, data: st.DataObject) -> None:
        """A posted settlement or refund under its key with a changed amount: rejected as a conflict."""
        order = data.draw(st.sampled_from([o for o in self.orders if o.posted]))
        original = data.draw(st.sampled_from([order.settlement, *(e for _, _, e in order.refunds)]))
        assert original is not None
        field_name = "net_payout" if "net_payout" in original.data else "amount"
        changed = make_envelope(
            type=original.type,
            source="karya/gateway",
            subject=order.key,
            data={**original.data, field_name: original.data[field_name] + 1},
        )
        before = self.run(self._entry_count())
        reasons = self.run(post(self.engine, self.processor, [changed]))
        assert len(reasons) == 1 and "posting conflict" in reasons[0], reasons
        assert self.run(self._entry_count()) == before
        self.conflicts += 1

    @precondition(lambda self: any(o.posted for o in self.orders))
    @rule(data=st.data())
    def payout(self, data: st.DataObject) -> None:
        """A savings payout as ``karya ledger payout`` posts it; more than the balance is refused."""
        inmate = data.draw(st.sampled_from(self.inmates))
        self.run(self._payout(inmate, data))

    async def _payout(self, inmate: str, data: st.DataObject) -> None:
        account = accounts.inmate_savings(inmate)
        async with self.engine.begin() as conn:
            current = await normal_balances(ledger_uow(conn), [account])
            balance = current.get(account, 0)
            amount = data.draw(st.sampled_from([balance, balance // 2, balance + 1]), label="payout")
            self.payouts += 1
            request = PayoutRequest(inmate, f"P{self.payouts}-{uid()}", amount, datetime.now(UTC))
            if amount == 0:
                return
            if amount > balance:
                with pytest.raises(InsufficientBalanceError):
                    build_payout(request, current, "cipinang")
                return
            result = await post_entries(
                ledger_uow(conn), [(build_payout(request, current, "cipinang"), f"cli:payout:{request.payout_id}")]
            )
            assert len(result.posted) == 1 and not result.conflicts

    # --- invariants

    @invariant()
    def journal_is_sound(self) -> None:
        """Database-wide invariants, then this run's orders against the model."""
        self.run(self._check())

    async def _check(self) -> None:
        settled_gross = sum(o.gross for o in self.orders if o.posted)
        refunded_gross = sum(o.refunded for o in self.orders if o.posted)
        async with self.engine.connect() as conn:
            await assert_journal_sound(conn)
            state = (await conn.execute(text(_STATE))).one()
            assert state.revenue == settled_gross - refunded_gross, (
                f"revenue {state.revenue} != settled {settled_gross} - refunded {refunded_gross}"
            )
            assert state.conflicts == self.conflicts
            assert not set(state.waiting) & {o.key for o in self.orders if o.posted}, "events still parked"
            postings: dict[str, set[str]] = defaultdict(set)
            for r in await conn.execute(
                text("SELECT order_key, posting_key FROM ledger.journal_entries WHERE order_key IS NOT NULL")
            ):
                postings[r.order_key].add(r.posting_key.removeprefix(f"{r.order_key}:"))
            assert set(postings) <= {o.key for o in self.orders}
            for order in self.orders:
                self._check_postings(order, postings[order.key])
            refunded_in_full = [o for o in self.orders if o.posted and o.refunded == o.gross]
            # A fully refunded order (refunds of an amount only: the cash paid back is the amount) gives the state
            # back all its PNBP; supplier and inmates keep theirs (not restockable, claw_back_premi never) and
            # production capital absorbs them, so the order's revenue − fees − PPh 22 − distribution is what it
            # was once distributed: the shortfall of its payout, if any, that waits in suspense.
            keys = [o.key for o in refunded_in_full]
            left = (await conn.execute(text(_LEFT_AFTER_FULL_REFUND), {"k": keys})).all()
            assert left == [], f"fully refunded but PNBP not fully reversed: {left}"
            income = {r.order_key: int(r.income) for r in await conn.execute(text(_ORDER_INCOME), {"k": keys})}
            assert income == {o.key: _shortfall(o) for o in refunded_in_full}

    def _check_postings(self, order: Order, keys: set[str]) -> None:
        batches = {b.batch_id for b in order.batches}
        required = {"completed"} if order.completion_sent else set()
        if order.posted:
            required |= {f"settlement:ESC-{order.key[-8:]}"} | {f"distribution:{b}" for b in batches}
            required |= {f"refund:{rid}" for rid, _, _ in order.refunds}
            allowed = required | {f"refund:{rid}:{b}" for rid, _, _ in order.refunds for b in batches}
        else:
            allowed = required
        assert required <= keys <= allowed, f"{order.key}: posted {sorted(keys)}, required {sorted(required)}"

    async def _entry_count(self) -> int:
        async with self.engine.connect() as conn:
            return int((await conn.execute(text("SELECT count(*) FROM ledger.journal_entries"))).scalar_one())


async def test_ledger_state_machine_against_the_database(own_database: LedgerDatabase) -> None:
    machine = type("BoundLedgerDbMachine", (LedgerDbMachine,), {"db": own_database})
    config = settings(
        max_examples=15,
        stateful_step_count=15,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        # No shrinking: every attempt replays a whole example against PostgreSQL, so shrinking runs for
        # minutes; a failing run prints its (at most 15) steps, and the example database replays it first.
        phases=[Phase.explicit, Phase.reuse, Phase.generate],
    )
    # Each example runs on an event loop of its own, in a worker thread (this test's loop stays free).
    await asyncio.to_thread(run_state_machine_as_test, machine, settings=config)
