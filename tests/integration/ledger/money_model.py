"""The money model of the stateful ledger test (``test_ledger_money_stateful.py``): what an order's planned life
must put in the books, computed by the test itself, independently of production code.

Each order's settlements, refunds (line, amount-only, netted) and the policy's ``claw_back_premi`` are planned up
front (:func:`order_events`, :func:`claw_back_policies`); the machine sends their events in any order and asks the
model what must be posted so far, reading the books per order with :data:`ORDER_MONEY` and :func:`contribution`.
The model's own largest-remainder split (floors, then the leftover rupiah one by one to the largest remainders, ties
to the earlier weight) mirrors the rules written in docs/accounting.md.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from infra.messaging.envelope import Envelope
from tests.integration import ledger_support as ls
from tests.integration.ledger.scenario_support import completed_without_allocation

#: sukamiskin-standard@v1 (deploy/demo/policies.yaml) and the per-SKU claw-back policies, in rule order: PNBP,
#: premi, capital.
POLICY = (25, 15, 60)
NEVER, FROM_SAVINGS, RECEIVABLE = "never", "from_savings", "receivable"
SAVINGS, RECEIVABLES = "liability:inmate_savings:", "asset:inmate_receivable:"


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
    """One refund: of one line (``sku``) or, amount-only, of the whole order pro rata; ``cash`` = amount − fees −
    PPh 22 given back (already deducted from a settlement's net when ``netted``)."""

    rid: str
    amount: int
    sku: str | None
    line_amount: int
    fees_returned: int
    pph_returned: int
    netted: bool

    @property
    def cash(self) -> int:
        """What the refund costs in cash: amount less what the marketplace gives back."""
        return self.amount - self.fees_returned - self.pph_returned

    @property
    def paid_now(self) -> int:
        """Cash paid back from the bank when the refund posts (a netted refund was paid by the settlement)."""
        return 0 if self.netted else self.cash


@dataclass
class Order:
    """One order's planned life and what of it has been sent."""

    key: str
    batches: list[ls.Batch]
    batched: bool  # the completion carries the batches (else a person allocates them)
    lapas_known: bool  # a completion without batches may not even name its lapas
    settlements: list[Settlement]
    refunds: list[Refund]
    claw_back: str = NEVER
    events: dict[str, Envelope] = field(default_factory=dict, repr=False)
    sent: set[str] = field(default_factory=set)
    arrived: list[str] = field(default_factory=list)  # names in arrival order
    allocated: bool = False
    taken_back: dict[str, int] = field(default_factory=dict)  # per batch: cumulative take-back of its refunds
    clawed: set[str] = field(default_factory=set)  # refunds whose take-back the model has applied

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
    def proceeds(self) -> list[int]:
        """The base attributed to each batch by value."""
        return largest_remainder(self.base, [b.value for b in self.batches])

    @property
    def covers(self) -> bool:
        """Every batch's share of the base covers its material cost (else the distribution is held)."""
        return all(p >= b.material_cost for p, b in zip(self.proceeds, self.batches, strict=True))

    @property
    def distributed(self) -> bool:
        """The distribution must have been made: completed, batches known, settled at least once, and the
        cumulative base covers each batch's material cost."""
        return (self.batched or self.allocated) and bool(self.posted_settlements) and self.covers

    @property
    def posted_refunds(self) -> list[Refund]:
        """Refunds that must be posted (sent, the order distributed), in arrival order."""
        by_id = {r.rid: r for r in self.refunds}
        return [by_id[n] for n in self.arrived if n in by_id] if self.distributed else []

    @property
    def waiting(self) -> bool:
        """Something sent must still be parked."""
        posted = {s.sid for s in self.posted_settlements} | {r.rid for r in self.posted_refunds}
        return bool(self.sent - posted - {"completion"})

    @property
    def netted_cash(self) -> int:
        """The cash of the netted refunds sent once the order is settled: the distribution is grossed up by it (as
        if the settlement had paid it) before the refund takes it back from the refunded line's batch."""
        done = self.posted_settlements
        return sum(r.cash for r in self.refunds if r.netted and r.rid in self.sent) if done else 0

    @property
    def base(self) -> int:
        """B = min(Σ N + netted cash, G − Σ F − Σ W) over the posted settlements."""
        done = self.posted_settlements
        return min(sum(s.net for s in done) + self.netted_cash, self.gross - sum(s.fee + s.pph for s in done))

    def legs(self, batch: ls.Batch, proceeds: int) -> list[tuple[str | None, int]]:
        """The batch's distribution legs in posting order as (inmate or None, amount), legs of 0 left out:
        material cost, then the policy's PNBP, premi (per work-group member), capital."""
        pnbp, premi, capital = largest_remainder(proceeds - batch.material_cost, list(POLICY))
        members = largest_remainder(premi, [s for _, s in batch.work_group])
        legs: list[tuple[str | None, int]] = [(None, batch.material_cost), (None, pnbp)]
        legs += [(inmate, part) for (inmate, _), part in zip(batch.work_group, members, strict=True)]
        return [(who, amount) for who, amount in [*legs, (None, capital)] if amount > 0]

    def premi(self) -> dict[str, int]:
        """Each inmate's premi from this order (the model's split of the cumulative base)."""
        out: dict[str, int] = defaultdict(int)
        if not self.distributed:
            return out
        for batch, proceeds in zip(self.batches, self.proceeds, strict=True):
            for inmate, amount in self.legs(batch, proceeds):
                if inmate is not None:
                    out[inmate] += amount
        return out

    def refunded_gross(self, refund: Refund) -> list[int]:
        """Per batch, the refund's gross: its line to the batch of its SKU, the rest pro rata by value."""
        out = [refund.line_amount if b.sku == refund.sku else 0 for b in self.batches]
        rest = largest_remainder(refund.amount - sum(out), [b.value for b in self.batches])
        return [a + b for a, b in zip(out, rest, strict=True)]

    def premi_take_back(self, refund: Refund) -> list[tuple[str, int]]:
        """Per premi leg (inmate, change) what ``refund`` takes back, in posting order; advances the batches'
        cumulative take-back. The refund's cash (netted or paid) is split over the batches by refunded gross; each
        batch takes back cumulatively at most its proceeds, each leg its largest-remainder share of that sum."""
        gross = self.refunded_gross(refund)
        shares = largest_remainder(refund.cash, gross) if any(gross) else [0] * len(gross)
        out: list[tuple[str, int]] = []
        for batch, proceeds, share in zip(self.batches, self.proceeds, shares, strict=True):
            before = self.taken_back.get(batch.batch_id, 0)
            after = min(proceeds, before + share)
            self.taken_back[batch.batch_id] = after
            legs = self.legs(batch, proceeds)
            if not legs:
                continue
            amounts = [amount for _, amount in legs]
            was, now = largest_remainder(before, amounts), largest_remainder(after, amounts)
            out += [(who, n - w) for (who, _), w, n in zip(legs, was, now, strict=True) if who is not None]
        return out


def claw_back_policies(order: Order, lapas: str) -> dict[str, Any]:
    """A policy document: per SKU of ``order``, :data:`POLICY`'s shares with the order's ``claw_back_premi``."""
    return {
        "policies": [
            {
                "policy_id": f"smk-{b.sku.lower()}",
                "version": 1,
                "lapas_id": lapas,
                "sku": b.sku,
                "effective_from": "2025-01-01T00:00:00+07:00",
                "rules": [
                    {"target": target, "share": f"{share}%"}
                    for target, share in zip(("pnbp", "inmate_premi", "production_capital"), POLICY, strict=True)
                ],
                "claw_back_premi": order.claw_back,
            }
            for b in order.batches
        ]
    }


def order_events(order: Order, lapas: str, at: datetime) -> dict[str, Envelope]:
    """The events of ``order``'s planned life by name: ``completion``, each settlement id, each refund id."""
    if order.batched:
        events = {"completion": ls.completed(order.key, order.batches, at)}
    else:
        events = {
            "completion": completed_without_allocation(order.key, lapas if order.lapas_known else None, order.gross, at)
        }
    for n, s in enumerate(order.settlements):
        events[s.sid] = ls.settled(
            order.key,
            s.gross,
            at + timedelta(days=3 + n),
            fees={"commission_fee": s.fee},
            net=s.net,
            settlement_id=s.sid,
        )
    for r in order.refunds:
        envelope = ls.refunded(order.key, r.rid, r.amount, at + timedelta(days=2))
        if r.sku is not None:  # else amount-only: what the old events carried
            envelope.data["lines"] = [{"seller_sku": r.sku, "quantity": 1, "amount": r.line_amount}]
            envelope.data.update(
                fees_returned=r.fees_returned, pph22_returned=r.pph_returned, netted_in_settlement=r.netted
            )
        events[r.rid] = envelope
    return events


ORDER_MONEY = """SELECT e.order_key,
  sum(CASE WHEN l.account LIKE 'revenue:%' OR l.account LIKE 'expense:%' OR l.account LIKE 'asset:pph22_prepaid:%'
      THEN (CASE l.side WHEN 'C' THEN l.amount ELSE -l.amount END) ELSE 0 END) AS residual,
  sum(CASE WHEN l.account LIKE 'asset:bank:%' THEN (CASE l.side WHEN 'D' THEN l.amount ELSE -l.amount END)
      ELSE 0 END) AS bank,
  sum(CASE WHEN l.account LIKE 'clearing:suspense:%' THEN (CASE l.side WHEN 'D' THEN l.amount ELSE -l.amount END)
      ELSE 0 END) AS suspense
  FROM ledger.journal_entries e JOIN ledger.journal_lines l USING (sequence)
  WHERE e.order_key IS NOT NULL GROUP BY 1"""


def contribution(lines: list[Any]) -> dict[str, int]:
    """What an entry's lines add to the sums the machine checks: the order's residual, bank and suspense (as in
    ``_ORDER_MONEY``), and each savings (credit) and receivable (debit) account."""
    out: dict[str, int] = defaultdict(int)
    for account, side, amount in lines:
        debit = amount if side == "D" else -amount
        if account.startswith(("revenue:", "expense:")) or account.startswith("asset:pph22_prepaid:"):
            out["residual"] -= debit
        elif account.startswith("asset:bank:"):
            out["bank"] += debit
        elif account.startswith("clearing:suspense:"):
            out["suspense"] += debit
        elif account.startswith(SAVINGS):
            out[account] -= debit
        elif account.startswith(RECEIVABLES):
            out[account] += debit
    return out
