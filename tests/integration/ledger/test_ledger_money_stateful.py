"""Every rupiah lands (issue 15, acceptance 2): a Hypothesis state machine drives random per-order lives —
completions with or without batches, one or two settlements, line refunds (some netted in the escrow, with fees
and PPh 22 given back), allocations by a person, payouts and approved reverts of payouts — in any arrival order
(what arrives early parks and posts later) through the real use cases on the real database, and after every step
checks the money against a model the test computes itself:

- the journal is sound (every entry balances, lines = balances, chain intact) and nothing was rejected;
- per order once distributed: revenue − fees − PPh 22 − distribution = what the settlements' shortfall still
  leaves in suspense (0 once every event of the order has arrived);
- per order: bank = Σ net settled − Σ refunds paid by us; suspense as the model says; parked events as the model says;
- every inmate's savings = the exact largest-remainder premi share of the cumulative base their batches kept
  (policy ``sukamiskin-standard@v1`` 25/15/60, ``claw_back_premi: never``), minus payouts, plus reverted payouts.
"""

from __future__ import annotations

import asyncio
import os
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
from infra.messaging.envelope import Envelope
from services.ledger.allocation import Pick, allocate
from services.ledger.corrections import approve, propose_revert
from services.ledger.domain.errors import InsufficientBalanceError
from services.ledger.domain.postings import payout_key
from services.ledger.outbound import LedgerTopics
from services.ledger.payouts import pay_out
from tests.integration import ledger_support as ls
from tests.integration.ledger.scenario_support import add_batch, completed_without_allocation

pytestmark = pytest.mark.integration
R = TypeVar("R")

LAPAS = "sukamiskin"
AT = datetime(2026, 3, 2, 9, tzinfo=UTC)
#: sukamiskin-standard@v1 (deploy/demo/policies.yaml), in rule order: PNBP, premi, capital.
POLICY = (25, 15, 60)

_ORDER_MONEY = """SELECT e.order_key,
  sum(CASE WHEN l.account LIKE 'revenue:%' OR l.account LIKE 'expense:%' OR l.account = 'asset:pph22_prepaid'
      THEN (CASE l.side WHEN 'C' THEN l.amount ELSE -l.amount END) ELSE 0 END) AS residual,
  sum(CASE WHEN l.account = 'asset:bank:main' THEN (CASE l.side WHEN 'D' THEN l.amount ELSE -l.amount END)
      ELSE 0 END) AS bank,
  sum(CASE WHEN l.account = 'clearing:suspense' THEN (CASE l.side WHEN 'D' THEN l.amount ELSE -l.amount END)
      ELSE 0 END) AS suspense
  FROM ledger.journal_entries e JOIN ledger.journal_lines l USING (sequence)
  WHERE e.order_key IS NOT NULL GROUP BY 1"""


def largest_remainder(total: int, weights: list[int]) -> list[int]:
    """The test's own split (independent of production): floors, then the leftover rupiah one by one to the
    largest remainders, ties to the earlier weight."""
    whole = sum(weights)
    parts = [total * w // whole for w in weights]
    remainders = [total * w % whole for w in weights]
    for i in sorted(range(len(weights)), key=lambda i: (-remainders[i], i))[: total - sum(parts)]:
        parts[i] += 1
    return parts


@dataclass(frozen=True)
class Settlement:
    """One settlement of an order as the model knows it."""

    sid: str
    gross: int
    fee: int
    net: int

    @property
    def pph(self) -> int:
        """PPh 22 withheld."""
        return ls.pph22(self.gross)


@dataclass(frozen=True)
class Refund:
    """One line refund: ``cash`` = amount − fees − PPh 22 given back (not paid by us when netted)."""

    rid: str
    amount: int
    sku: str
    line_amount: int
    fees_returned: int
    pph_returned: int
    netted: bool

    @property
    def cash(self) -> int:
        """What the refund costs in cash: amount less what the marketplace gives back."""
        return self.amount - self.fees_returned - self.pph_returned


@dataclass
class Order:
    """One order's planned life and what of it has been sent."""

    key: str
    batches: list[ls.Batch]
    batched: bool  # the completion carries the batches (else a person allocates them)
    lapas_known: bool  # a completion without batches may not even name its lapas
    settlements: list[Settlement]
    refunds: list[Refund]
    events: dict[str, Envelope] = field(default_factory=dict, repr=False)
    sent: set[str] = field(default_factory=set)
    allocated: bool = False

    @property
    def gross(self) -> int:
        """Gross of the order."""
        return sum(b.value for b in self.batches)

    @property
    def completed(self) -> bool:
        """The completion was sent."""
        return "completion" in self.sent

    @property
    def posted_settlements(self) -> list[Settlement]:
        """Settlements that must be posted (sent, after the completion)."""
        return [s for s in self.settlements if s.sid in self.sent] if self.completed else []

    @property
    def covers(self) -> bool:
        """Every batch's share of the base covers its material cost (else the distribution is held)."""
        proceeds = largest_remainder(self.base, [b.value for b in self.batches])
        return all(p >= b.material_cost for p, b in zip(proceeds, self.batches, strict=True))

    @property
    def distributed(self) -> bool:
        """The distribution must have been made: completed, batches known, settled at least once, and the
        cumulative base covers each batch's material cost."""
        return (self.batched or self.allocated) and bool(self.posted_settlements) and self.covers

    @property
    def posted_refunds(self) -> list[Refund]:
        """Refunds that must be posted (sent, the order distributed)."""
        return [r for r in self.refunds if r.rid in self.sent] if self.distributed else []

    @property
    def waiting(self) -> bool:
        """Something sent must still be parked."""
        posted = {s.sid for s in self.posted_settlements} | {r.rid for r in self.posted_refunds}
        return bool(self.sent - posted - {"completion"})

    @property
    def base(self) -> int:
        """B = min(Σ N, G − Σ F − Σ W) over the posted settlements."""
        done = self.posted_settlements
        return min(sum(s.net for s in done), self.gross - sum(s.fee + s.pph for s in done))

    def premi(self) -> dict[str, int]:
        """Each inmate's premi from this order (the model's split of the cumulative base)."""
        out: dict[str, int] = defaultdict(int)
        if not self.distributed:
            return out
        for batch, proceeds in zip(
            self.batches, largest_remainder(self.base, [b.value for b in self.batches]), strict=True
        ):
            premi = largest_remainder(proceeds - batch.material_cost, list(POLICY))[1]
            shares = largest_remainder(premi, [s for _, s in batch.work_group])
            for (inmate, _), part in zip(batch.work_group, shares, strict=True):
                out[inmate] += part
        return out


class MoneyMachine(RuleBasedStateMachine):
    """See the module docstring."""

    db: ClassVar[ls.LedgerDatabase]

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.run(ls.as_superuser(self.db.admin_url, *ls.LEDGER_RESET))
        self.engine = make_engine(self.db.urls.service, pool_size=2)
        self.processor = ls.new_processor()
        self.inmates = sorted(ls.new_inmate() for _ in range(3))
        self.orders: list[Order] = []
        self.paid: dict[str, int] = defaultdict(int)  # per inmate, net of reverted payouts
        self.payouts: list[tuple[str, str, int]] = []  # (inmate, payout id, amount) not reverted

    def run(self, work: Coroutine[Any, Any, R]) -> R:
        """Run ``work`` on this machine's event loop."""
        return self.loop.run_until_complete(work)

    def teardown(self) -> None:
        """Release the engine and the loop."""
        self.run(self.engine.dispose())
        self.loop.close()

    def expected_savings(self) -> dict[str, int]:
        """Each inmate's savings by the model."""
        out = {i: -self.paid[i] for i in self.inmates}
        for order in self.orders:
            for inmate, amount in order.premi().items():
                out[inmate] += amount
        return out

    # --- rules

    @rule(data=st.data(), batched=st.booleans(), two=st.booleans(), netted=st.booleans(), paid=st.integers(0, 2))
    def new_order(self, data: st.DataObject, batched: bool, two: bool, netted: bool, paid: int) -> None:
        """Plan a new order's life: batches (1–2), settlements (1–2), line refunds (one netted, up to two paid)."""
        key = ls.new_order_key(data.draw(st.sampled_from(["shopee", "tiktok_shop"]), label="channel"))
        batches = []
        for n in range(data.draw(st.integers(1, 2), label="batches")):
            price = data.draw(st.integers(10_000, 200_000), label="unit price")
            members = sorted(data.draw(st.lists(st.sampled_from(self.inmates), min_size=1, max_size=2, unique=True)))
            batches.append(
                ls.Batch(
                    f"B-{key[-8:]}-{n}",
                    f"SMK-T{key[-6:].upper()}{n}",
                    LAPAS,
                    data.draw(st.integers(1, 3), label="quantity"),
                    price,
                    data.draw(st.integers(0, price // 20), label="unit material cost"),
                    f"sup-{n}",
                    tuple((m, data.draw(st.integers(1, 3), label="work share")) for m in members),
                )
            )
        gross = sum(b.value for b in batches)
        first = data.draw(st.integers(gross // 2, gross - 1), label="first gross") if two and gross > 1 else gross
        settlements = []
        for n, part in enumerate([first, gross - first] if first < gross else [gross], start=1):
            fee = data.draw(st.integers(0, part // 10), label="fee")
            settlements.append(Settlement(f"ESC-{n}", part, fee, part - fee - ls.pph22(part)))
        refunds = []
        for rid, wanted, cap in (
            ("RF-N", netted, gross // 4),
            ("RF-P", paid > 0, gross // 2),
            ("RF-Q", paid > 1, gross // 4),
        ):
            if not wanted or cap < 1:
                continue
            amount = data.draw(st.integers(1, cap), label=f"{rid} amount")
            batch = data.draw(st.sampled_from(batches), label=f"{rid} line")
            fr = data.draw(st.integers(0, amount // 10), label=f"{rid} fees returned")
            pr = data.draw(st.integers(0, amount // 200), label=f"{rid} pph22 returned")
            refunds.append(Refund(rid, amount, batch.sku, min(amount, batch.unit_price), fr, pr, rid == "RF-N"))
        if any(r.netted for r in refunds):  # the escrow of ESC-1 already deducted the netted refund's cash
            s1 = settlements[0]
            settlements[0] = Settlement(s1.sid, s1.gross, s1.fee, s1.net - refunds[0].cash)
        lapas_known = batched or data.draw(st.booleans(), label="lapas known")
        order = Order(key, batches, batched, lapas_known, settlements, refunds)
        order.events = self._events(order)
        if not batched:
            for b in batches:
                self.run(
                    add_batch(
                        self.engine,
                        b.batch_id,
                        LAPAS,
                        b.sku,
                        produced=b.quantity,
                        unit_price=b.unit_price,
                        unit_material_cost=b.unit_material_cost,
                        supplier=b.supplier_id,
                        work_group=b.work_group,
                    )
                )
        self.orders.append(order)

    def _events(self, order: Order) -> dict[str, Envelope]:
        if order.batched:
            events = {"completion": ls.completed(order.key, order.batches, AT)}
        else:
            events = {
                "completion": completed_without_allocation(
                    order.key, LAPAS if order.lapas_known else None, order.gross, AT
                )
            }
        for n, s in enumerate(order.settlements):
            events[s.sid] = ls.settled(
                order.key,
                s.gross,
                AT + timedelta(days=3 + n),
                fees={"commission_fee": s.fee},
                net=s.net,
                settlement_id=s.sid,
            )
        for r in order.refunds:
            envelope = ls.refunded(order.key, r.rid, r.amount, AT + timedelta(days=2))
            envelope.data["lines"] = [{"seller_sku": r.sku, "quantity": 1, "amount": r.line_amount}]
            envelope.data.update(
                fees_returned=r.fees_returned, pph22_returned=r.pph_returned, netted_in_settlement=r.netted
            )
            events[r.rid] = envelope
        return events

    @precondition(lambda self: any(set(o.events) - o.sent for o in self.orders))
    @rule(data=st.data(), redeliver=st.booleans(), reemit=st.booleans())
    def deliver(self, data: st.DataObject, redeliver: bool, reemit: bool) -> None:
        """Some of an order's events not sent yet, in any order, as one batch (maybe with a redelivery of a sent
        event, or one re-emitted under a new event id)."""
        order = data.draw(st.sampled_from([o for o in self.orders if set(o.events) - o.sent]))
        names = data.draw(st.lists(st.sampled_from(sorted(set(order.events) - order.sent)), min_size=1, unique=True))
        batch = [order.events[n] for n in names]
        if redeliver and order.sent:
            again = order.events[data.draw(st.sampled_from(sorted(order.sent)), label="redelivered")]
            batch.append(ls.reissued(again) if reemit else again)
        batch = data.draw(st.permutations(batch), label="arrival order")
        rejected = self.run(ls.post(self.engine, self.processor, batch))
        assert rejected == [], f"money dead-lettered: {rejected}"
        order.sent |= set(names)

    @precondition(lambda self: any(o.completed and not o.batched and not o.allocated for o in self.orders))
    @rule(data=st.data())
    def allocate_by_person(self, data: st.DataObject) -> None:
        """``karya ledger allocate ORDER --batch B:QTY ...`` for an order completed without batches."""
        order = data.draw(
            st.sampled_from([o for o in self.orders if o.completed and not o.batched and not o.allocated])
        )
        picks = [Pick(b.batch_id, b.quantity) for b in order.batches]
        self.run(self._allocate(order.key, picks))
        order.allocated = True

    async def _allocate(self, key: str, picks: list[Pick]) -> None:
        async with self.engine.begin() as conn:
            outcome = await allocate(ls.ledger_uow(conn), LedgerTopics(), key, picks)
        assert not outcome.already_allocated and not outcome.still_parked, outcome

    @rule(data=st.data(), too_much=st.booleans())
    def payout(self, data: st.DataObject, too_much: bool) -> None:
        """A savings payout through the payout use case; above the balance it is refused."""
        inmate = data.draw(st.sampled_from(self.inmates))
        balance = self.expected_savings()[inmate]
        amount = balance + 1 if too_much or balance == 0 else data.draw(st.integers(1, balance), label="payout")
        payout_id = f"P-{ls.uid()}"
        if amount > balance:
            with pytest.raises(InsufficientBalanceError):
                self.run(self._pay(inmate, amount, payout_id))
            return
        self.run(self._pay(inmate, amount, payout_id))
        self.paid[inmate] += amount
        self.payouts.append((inmate, payout_id, amount))

    async def _pay(self, inmate: str, amount: int, payout_id: str) -> None:
        async with self.engine.begin() as conn:
            outcome = await pay_out(ls.ledger_uow(conn), LedgerTopics(), inmate, amount, payout_id, AT)
        assert outcome.posted

    @precondition(lambda self: bool(self.payouts))
    @rule(data=st.data())
    def revert_payout(self, data: st.DataObject) -> None:
        """A payout reverted: proposed by one user, approved by another."""
        inmate, payout_id, amount = data.draw(st.sampled_from(self.payouts), label="reverted payout")
        self.run(self._revert(payout_key(inmate, payout_id)))
        self.payouts.remove((inmate, payout_id, amount))
        self.paid[inmate] -= amount

    async def _revert(self, posting_key: str) -> None:
        now = datetime.now(UTC)
        async with self.engine.begin() as conn:
            proposal = await propose_revert(
                ls.ledger_uow(conn), posting_key, reason="paid twice", proposed_by="finance-a", at=now
            )
        async with self.engine.begin() as conn:
            await approve(ls.ledger_uow(conn), LedgerTopics(), proposal.proposal_id, approved_by="finance-b", at=now)

    # --- invariants

    @invariant()
    def money_lands(self) -> None:
        """See the module docstring."""
        self.run(self._check())

    async def _check(self) -> None:
        async with self.engine.connect() as conn:
            await ls.assert_journal_sound(conn)
            money = {r.order_key: r for r in await conn.execute(text(_ORDER_MONEY))}
            waiting = set((await conn.execute(text("SELECT DISTINCT order_key FROM ledger.pending_events"))).scalars())
            conflicts = (await conn.execute(text("SELECT count(*) FROM ledger.posting_conflicts"))).scalar_one()
            savings = await ls.balances(conn, [f"liability:inmate_savings:{i}" for i in self.inmates])
        assert conflicts == 0
        assert waiting == {o.key for o in self.orders if o.waiting}, "parked events differ from the model"
        for order in self.orders:
            self._check_order(order, money.get(order.key))
        expected = self.expected_savings()
        actual = {i: savings.get(f"liability:inmate_savings:{i}", 0) for i in self.inmates}
        assert actual == expected, f"savings {actual} != model {expected}"

    def _check_order(self, order: Order, money: Any) -> None:
        settled = order.posted_settlements
        refunds = order.posted_refunds
        bank = sum(s.net for s in settled) - sum(r.cash for r in refunds if not r.netted)
        netted = sum(r.cash for r in refunds if r.netted)
        short = sum(s.gross - s.fee - s.pph - s.net for s in settled)
        got = (0, 0, 0) if money is None else (money.bank, money.suspense, money.residual)
        assert got[0] == bank, f"{order.key}: bank {got[0]} != Σ net − Σ refunds paid {bank}"
        assert got[1] == short - netted, f"{order.key}: suspense {got[1]} != {short - netted}"
        if order.distributed:
            residual = sum(s.gross - s.fee - s.pph for s in settled) - order.base - netted
            assert got[2] == residual, f"{order.key}: revenue − fees − tax − distribution {got[2]} != {residual}"
            if order.sent == set(order.events):
                assert got[2] == 0 and got[1] == 0, f"{order.key}: every event in, yet {got}"


async def test_every_rupiah_lands_in_any_arrival_order(own_database: ls.LedgerDatabase) -> None:
    machine = type("BoundMoneyMachine", (MoneyMachine,), {"db": own_database})
    config = settings(
        max_examples=int(os.environ.get("MONEY_EXAMPLES", "20")),
        stateful_step_count=int(os.environ.get("MONEY_STEPS", "20")),
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        # No shrinking (each attempt replays a whole example against PostgreSQL); a failure prints its steps.
        phases=[Phase.explicit, Phase.reuse, Phase.generate],
    )
    await asyncio.to_thread(run_state_machine_as_test, machine, settings=config)
