"""Every rupiah lands (issue 15, acceptance 2): a Hypothesis state machine drives random per-order lives —
completions with or without batches, one or two settlements, refunds of a line or (amount-only) of the whole order,
some netted in the escrow, with fees and PPh 22 given back, under a policy whose ``claw_back_premi`` is ``never``,
``from_savings`` or ``receivable``; allocations by a person, payouts, and approved reverts (proposed by one user,
approved by another) of payouts and of any entry of an order — in any arrival order (what arrives early parks and
posts later) through the real use cases on the real database (the envelopes the Kafka handler gets), and after
every step checks the money against a model the test computes itself (``money_model.py``):

- the journal is sound (every entry balances, lines = balances, chain intact) and nothing was rejected;
- per order once distributed: revenue − fees − PPh 22 − distribution = what the settlements' shortfall still
  leaves in suspense (0 once every event of the order has arrived), less what its reverted entries had added;
- per order: bank = Σ net settled − Σ refunds paid by us (and suspense, parked events) as the model says, reverted
  entries accounted;
- every inmate's savings = the exact largest-remainder premi share of the cumulative base their batches kept, less
  what refunds clawed back (from savings as far as they reach; under ``receivable`` the rest is the inmate's
  receivable), minus payouts, reverted entries accounted. A refused revert (it would take savings below zero) is
  refused exactly when the model says so, and withdrawn by its proposer.

An order under a claw-back policy is settled once and has no netted refund: what a refund claws back from savings
depends on the balance when it posts, which the model follows step by step; a second settlement, or the gross-up
of a netted refund, between two refunds would change the legs each reverses mid-way.

Bounded for CI by the ``money`` settings profile (``MONEY_EXAMPLES`` / ``MONEY_STEPS`` raise it locally).
"""

from __future__ import annotations

import asyncio
import os
from collections import defaultdict
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import Any, ClassVar, TypeVar

import pytest
from hypothesis import HealthCheck, Phase, event, settings
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
from services.ledger.adapters.policy_repo import store_policies
from services.ledger.allocation import AllocationRefused, Pick, allocate
from services.ledger.corrections import approve, propose_revert, withdraw
from services.ledger.domain.corrections import CorrectionRefused
from services.ledger.domain.errors import InsufficientBalanceError
from services.ledger.domain.policy_file import parse_policies
from services.ledger.domain.postings import payout_key
from services.ledger.outbound import LedgerTopics
from services.ledger.payouts import pay_out
from services.orders.app import SCHEMA as ORDERS
from tests.integration import ledger_support as ls
from tests.integration.ledger.money_model import (
    FROM_SAVINGS,
    NEVER,
    ORDER_MONEY,
    RECEIVABLE,
    RECEIVABLES,
    SAVINGS,
    Order,
    Refund,
    Settlement,
    claw_back_policies,
    contribution,
    order_events,
)
from tests.integration.ledger.scenario_support import add_batch

pytestmark = pytest.mark.integration
R = TypeVar("R")

LAPAS = "sukamiskin"
AT = datetime(2026, 3, 2, 9, tzinfo=UTC)

settings.register_profile(
    "money",
    max_examples=int(os.environ.get("MONEY_EXAMPLES", "10")),
    stateful_step_count=int(os.environ.get("MONEY_STEPS", "20")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    # No shrinking (each attempt replays a whole example against PostgreSQL); a failure prints its steps.
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)


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
        self.clawed: dict[str, int] = defaultdict(int)  # per inmate: premi refunds took back from savings
        self.owed: dict[str, int] = defaultdict(int)  # per inmate: premi booked as a receivable
        self.reverted: dict[str, tuple[str, dict[str, int]]] = {}  # per reverted entry: order, what the revert added
        self.reverts = 0

    def run(self, work: Coroutine[Any, Any, R]) -> R:
        """Run ``work`` on this machine's event loop."""
        return self.loop.run_until_complete(work)

    def teardown(self) -> None:
        """Release the engine and the loop."""
        self.run(self.engine.dispose())
        self.loop.close()

    def reverted_sum(self, name: str, order_key: str | None = None) -> int:
        """What the reverts (of ``order_key``'s entries, or of any) added to ``name``."""
        return sum(added.get(name, 0) for key, added in self.reverted.values() if order_key in (None, key))

    def expected_savings(self) -> dict[str, int]:
        """Each inmate's savings by the model."""
        out = {i: self.reverted_sum(SAVINGS + i) - self.paid[i] - self.clawed[i] for i in self.inmates}
        for order in self.orders:
            for inmate, amount in order.premi().items():
                out[inmate] += amount
        return out

    def claw_back(self) -> None:
        """Apply the take-back of every refund posted since the last step, in arrival order, as the ledger does:
        under ``from_savings`` and ``receivable`` each premi leg's change comes out of savings as far as the
        balance then reaches (a leg handed a rupiah back gets it back); the rest is a receivable under
        ``receivable`` and absorbed under ``from_savings``. (Under ``never`` only the batch totals move.)"""
        savings = self.expected_savings()
        for order in self.orders:
            for refund in order.posted_refunds:
                if refund.rid in order.clawed:
                    continue
                order.clawed.add(refund.rid)
                for inmate, change in order.premi_take_back(refund):
                    if order.claw_back == NEVER:
                        continue
                    taken = min(max(savings[inmate], 0), change) if change > 0 else change
                    event(f"{order.claw_back}: " + ("savings short" if taken < change else "taken from savings"))
                    savings[inmate] -= taken
                    self.clawed[inmate] += taken
                    if order.claw_back == RECEIVABLE:
                        self.owed[inmate] += change - taken

    # --- rules

    @rule(
        data=st.data(),
        batched=st.booleans(),
        two=st.booleans(),
        netted=st.booleans(),
        paid=st.integers(0, 2),
        claw_back=st.sampled_from([NEVER, FROM_SAVINGS, RECEIVABLE]),
    )
    def new_order(self, data: st.DataObject, batched: bool, two: bool, netted: bool, paid: int, claw_back: str) -> None:
        """Plan a new order's life: batches (1–2), settlements (1–2; 1 under a claw-back policy), refunds (one
        netted, up to two paid, each of a line or amount-only), under a policy of its own SKUs."""
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
        two, netted = two and claw_back == NEVER, netted and claw_back == NEVER
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
            if rid != "RF-N" and data.draw(st.booleans(), label=f"{rid} amount-only"):
                refunds.append(Refund(rid, amount, None, 0, 0, 0, False))
                continue
            batch = data.draw(st.sampled_from(batches), label=f"{rid} line")
            fr = data.draw(st.integers(0, amount // 10), label=f"{rid} fees returned")
            pr = data.draw(st.integers(0, amount // 200), label=f"{rid} pph22 returned")
            refunds.append(Refund(rid, amount, batch.sku, min(amount, batch.unit_price), fr, pr, rid == "RF-N"))
        if any(r.netted for r in refunds):  # the escrow of ESC-1 already deducted the netted refund's cash
            s1 = settlements[0]
            settlements[0] = Settlement(s1.sid, s1.gross, s1.fee, s1.net - refunds[0].cash)
        lapas_known = batched or data.draw(st.booleans(), label="lapas known")
        order = Order(key, batches, batched, lapas_known, settlements, refunds, claw_back)
        order.events = order_events(order, LAPAS, AT)
        if claw_back != NEVER:
            self.run(self._policies(order))
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

    async def _policies(self, order: Order) -> None:
        """A policy per SKU of ``order`` with the order's ``claw_back_premi``."""
        async with self.engine.begin() as conn:
            await store_policies(ls.ledger_uow(conn), parse_policies(claw_back_policies(order, LAPAS), "money test"))

    @precondition(lambda self: any(set(o.events) - o.sent for o in self.orders))
    @rule(data=st.data(), redeliver=st.booleans(), reemit=st.booleans())
    def deliver(self, data: st.DataObject, redeliver: bool, reemit: bool) -> None:
        """Some of an order's events not sent yet, in any order, as one batch (maybe with a redelivery of a sent
        event, or one re-emitted under a new event id)."""
        order = data.draw(st.sampled_from([o for o in self.orders if set(o.events) - o.sent]))
        names = data.draw(st.lists(st.sampled_from(sorted(set(order.events) - order.sent)), min_size=1, unique=True))
        batch = [(n, order.events[n]) for n in names]
        if redeliver and order.sent:
            again = data.draw(st.sampled_from(sorted(order.sent)), label="redelivered")
            batch.append(("", ls.reissued(order.events[again]) if reemit else order.events[again]))
        batch = data.draw(st.permutations(batch), label="arrival order")
        rejected = self.run(ls.post(self.engine, self.processor, [e for _, e in batch]))
        assert rejected == [], f"money dead-lettered: {rejected}"
        order.sent |= set(names)
        order.arrived += [n for n, _ in batch if n in names and n not in order.arrived]
        self.claw_back()

    @precondition(lambda self: any(o.completed and not o.batched and not o.allocated for o in self.orders))
    @rule(data=st.data())
    def allocate_by_person(self, data: st.DataObject) -> None:
        """``karya ledger allocate ORDER --batch B:QTY ...`` for an order completed without batches; refused (and
        nothing changes) while what was settled does not cover a batch's material cost."""
        order = data.draw(
            st.sampled_from([o for o in self.orders if o.completed and not o.batched and not o.allocated])
        )
        picks = [Pick(b.batch_id, b.quantity) for b in order.batches]
        if order.posted_settlements and not order.covers:
            with pytest.raises(AllocationRefused, match="the distribution still cannot be made"):
                self.run(self._allocate(order.key, picks))
            return
        self.run(self._allocate(order.key, picks))
        order.allocated = True
        self.claw_back()

    async def _allocate(self, key: str, picks: list[Pick]) -> None:
        async with self.engine.begin() as conn:
            outcome = await allocate(ls.ledger_uow(conn), LedgerTopics(), key, picks, catalogue_schema=ORDERS)
        assert not outcome.already_allocated and not outcome.refused, outcome

    @rule(data=st.data(), too_much=st.booleans())
    def payout(self, data: st.DataObject, too_much: bool) -> None:
        """A savings payout through the payout use case (often the whole balance); above the balance it is
        refused."""
        inmate = data.draw(st.sampled_from(self.inmates))
        balance = self.expected_savings()[inmate]
        whole = st.just(balance)  # often all of it: later take-backs and reverts then find savings short
        amount = balance + 1 if too_much or balance == 0 else data.draw(whole | st.integers(1, balance), label="payout")
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
        self.run(self._revert(payout_key(inmate, payout_id), "paid twice"))
        self.payouts.remove((inmate, payout_id, amount))
        self.paid[inmate] -= amount

    @precondition(lambda self: any(o.completed for o in self.orders))
    @rule(data=st.data())
    def revert_order_entry(self, data: st.DataObject) -> None:
        """Any entry of an order (completion, settlement, distribution, refund, reversal, allocation…) reverted:
        proposed by one user, approved by another. One that would take savings below zero is refused, exactly when
        the model says so, and its proposer withdraws the proposal."""
        order = data.draw(st.sampled_from([o for o in self.orders if o.completed]), label="order")
        entries = self.run(self._revertible(order.key))
        if not entries:
            return
        key = data.draw(st.sampled_from(sorted(entries)), label="reverted entry")
        added = {name: -amount for name, amount in contribution(entries[key]).items()}
        savings = self.expected_savings()
        short = {a for a, n in added.items() if a.startswith(SAVINGS) and savings[a.removeprefix(SAVINGS)] + n < 0}
        event(f"revert of an order's {key.split(':')[3]} entry" + (" refused" if short else ""))
        if short:
            with pytest.raises(CorrectionRefused, match=r"refused \(savings_never_negative\)"):
                self.run(self._revert(key, "posted in error"))
            return
        self.run(self._revert(key, "posted in error"))
        self.reverted[key] = (order.key, added)

    async def _revertible(self, order_key: str) -> dict[str, list[Any]]:
        """The lines of each entry of ``order_key`` that may still be reverted (not a revert, not reverted)."""
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                text(
                    "SELECT e.posting_key, l.account, l.side, l.amount FROM ledger.journal_entries e "
                    "JOIN ledger.journal_lines l USING (sequence) WHERE e.order_key = :o AND e.kind <> 'reversal' "
                    "AND NOT EXISTS (SELECT 1 FROM ledger.journal_entries r WHERE r.reverses = e.posting_key "
                    "AND r.kind = 'reversal') ORDER BY l.sequence, l.line_no"
                ),
                {"o": order_key},
            )
            out: dict[str, list[Any]] = defaultdict(list)
            for r in rows:
                out[r.posting_key].append((r.account, r.side, int(r.amount)))
        return out

    async def _revert(self, posting_key: str, reason: str) -> None:
        """Propose (finance-a) and approve (finance-b) the revert of ``posting_key``; a refused approval is rolled
        back and the proposal withdrawn by its proposer (so the entry may be proposed again), then re-raised."""
        now = datetime.now(UTC)
        async with self.engine.begin() as conn:
            proposal = await propose_revert(
                ls.ledger_uow(conn), posting_key, reason=reason, proposed_by="finance-a", at=now
            )
        try:
            async with self.engine.begin() as conn:
                await approve(
                    ls.ledger_uow(conn), LedgerTopics(), proposal.proposal_id, approved_by="finance-b", at=now
                )
        except CorrectionRefused:
            async with self.engine.begin() as conn:
                await withdraw(
                    ls.ledger_uow(conn), proposal.proposal_id, withdrawn_by="finance-a", reason="refused", at=now
                )
            raise

    # --- invariants

    @invariant()
    def money_lands(self) -> None:
        """See the module docstring."""
        self.run(self._check())

    async def _check(self) -> None:
        async with self.engine.connect() as conn:
            await ls.assert_journal_sound(conn)
            money = {r.order_key: r for r in await conn.execute(text(ORDER_MONEY))}
            waiting = set((await conn.execute(text("SELECT DISTINCT order_key FROM ledger.pending_events"))).scalars())
            conflicts = (await conn.execute(text("SELECT count(*) FROM ledger.posting_conflicts"))).scalar_one()
            dead = (await conn.execute(text("SELECT count(*) FROM ledger.dead_letters"))).scalar_one()
            undecided = await conn.scalar(  # every revert proposed was approved, or refused and withdrawn
                text(
                    "SELECT count(*) FROM ledger.correction_proposals p WHERE NOT EXISTS (SELECT 1 FROM "
                    "ledger.correction_approvals a WHERE a.proposal_id = p.proposal_id) AND NOT EXISTS (SELECT 1 "
                    "FROM ledger.correction_closures c WHERE c.proposal_id = p.proposal_id AND c.outcome = 'withdrawn')"
                )
            )
            held = await ls.balances(conn, [a + i for i in self.inmates for a in (SAVINGS, RECEIVABLES)])
        assert (conflicts, dead) == (0, 0), f"posting conflicts {conflicts}, dead letters {dead}"
        assert undecided == 0, "a revert proposal was left open"
        assert waiting == {o.key for o in self.orders if o.waiting}, "parked events differ from the model"
        for order in self.orders:
            self._check_order(order, money.get(order.key))
        expected = self.expected_savings()
        actual = {i: held.get(SAVINGS + i, 0) for i in self.inmates}
        assert actual == expected, f"savings {actual} != model {expected}"
        owed = {i: self.owed[i] + self.reverted_sum(RECEIVABLES + i) for i in self.inmates}
        receivables = {i: held.get(RECEIVABLES + i, 0) for i in self.inmates}
        assert receivables == owed, f"inmate receivables {receivables} != model {owed}"

    def _check_order(self, order: Order, money: Any) -> None:
        settled = order.posted_settlements
        refunds = order.posted_refunds
        undo = {name: self.reverted_sum(name, order.key) for name in ("bank", "suspense", "residual")}
        bank = sum(s.net for s in settled) - sum(r.paid_now for r in refunds) + undo["bank"]
        netted = sum(r.cash for r in refunds if r.netted)
        suspense = sum(s.gross - s.fee - s.pph - s.net for s in settled) - netted + undo["suspense"]
        got = (0, 0, 0) if money is None else (money.bank, money.suspense, money.residual)
        assert got[0] == bank, f"{order.key}: bank {got[0]} != Σ net − Σ refunds paid {bank}"
        assert got[1] == suspense, f"{order.key}: suspense {got[1]} != {suspense}"
        if order.distributed:  # each refund moves it by −R + fr + pr + c = 0
            residual = sum(s.gross - s.fee - s.pph for s in settled) - order.base + undo["residual"]
            assert got[2] == residual, f"{order.key}: revenue − fees − tax − distribution {got[2]} != {residual}"
            if order.sent == set(order.events):
                done = (undo["residual"], undo["suspense"])
                assert (got[2], got[1]) == done, f"{order.key}: every event in, yet {got} (reverts added {done})"


async def test_every_rupiah_lands_in_any_arrival_order(own_database: ls.LedgerDatabase) -> None:
    machine = type("BoundMoneyMachine", (MoneyMachine,), {"db": own_database})
    config = settings.get_profile("money")
    await asyncio.to_thread(run_state_machine_as_test, machine, settings=config)
