"""Refunds: which batches a refund reverses, by how much, and the entries that say so. Pure.

Every refund is planned here — one that names its lines (or reports fees or PPh 22 given back, or netting in a
settlement) and an old event with only an amount alike (no lines: its whole amount is "not on a line" and is
spread over every batch), so the policy's ``claw_back_premi`` applies to both. An order refunded before this
path existed starts from what those refunds took back (:func:`taken_by_amount_only_refunds`).

Arithmetic (R the refund's amount, fr / pr the fees and PPh 22 the marketplace gives back, c the cash):

1. **Refunded gross per batch.** Each line's amount goes to the completion's allocations of its SKU (the
   line's ``seller_sku``; else its ``channel_sku_id`` or ``channel_product_id`` against the listing each
   allocation was sold under, :func:`match_sku`), split by quantity × unit price if one SKU came from several
   batches; what the lines do not explain (``R − Σ lines``: refunded shipping, a goodwill amount) is spread
   over every batch of the order by quantity × unit price. Largest remainder throughout: the parts sum exactly to R.
2. **Cash given back** c = R − fr − pr (refused when negative): from the bank, or — for a refund netted in a
   settlement — out of that settlement's payout; the order's distribution was then grossed up by c first
   (:func:`services.ledger.settlement_plan.gross_up_netted`), so both end with the same books but for the bank.
3. **Take-back per batch**: c split by the refunded gross per batch. Cumulatively per batch (the order's facts
   keep what each batch has given back), at most the batch's distributed proceeds; each leg gives back its
   largest-remainder share of the batch's cumulative take-back, so rounding never drifts.
4. **Who gives back**: PNBP and production capital are reversed. Material cost stays with the supplier (the
   event does not say the goods came back restockable), premi follows the policy's ``claw_back_premi``; what is
   not taken back — and cash paid beyond what the batch distributed — is absorbed by production capital
   (``Dr equity:production_capital / Cr expense:capital_allocation``). So revenue − fees − PPh 22 − distribution
   of the order moves by exactly −R + fr + pr + c = 0: no residual nobody owns.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from services.ledger.domain import accounts
from services.ledger.domain.allocation import allocate
from services.ledger.domain.distribution import BatchPlan, DistributionPlan, cumulative_reversal
from services.ledger.domain.errors import RefundError
from services.ledger.domain.journal import EntryKind, JournalEntry, LineBuilder, request_hash
from services.ledger.domain.model import BatchAllocation, OrderRef
from services.ledger.domain.policy import ClawBack
from services.ledger.domain.postings import distribution_key, refund_key, refund_reversal_key
from services.ledger.domain.tax import (
    UNSET,
    Pph22Treatment,
    TaxSetting,
    fee_lines,
    ppn_inside,
    recognise_revenue,
    withheld_lines,
)

__all__ = [
    "FEES_RETURNED",
    "LineRefund",
    "Listing",
    "RefundedLine",
    "build_line_refund",
    "check_within_gross",
    "gross_per_batch",
    "match_sku",
    "refund_take_back",
    "take_back_per_batch",
    "taken_by_amount_only_refunds",
]

FEES_RETURNED = "fees_returned"
"""The fee type credited with the fees a marketplace gives back (the event does not itemise them)."""


@dataclass(frozen=True, slots=True)
class RefundedLine:
    """One refunded line as the ledger matches it: the SKU (``None``: the channel named none) and its amount."""

    sku: str | None
    quantity: int
    amount: int


@dataclass(frozen=True, slots=True)
class LineRefund:
    """A refund with its lines, what the marketplace gives back and whether a settlement already netted it."""

    order: OrderRef
    refund_id: str
    amount: int
    refunded_at: datetime
    lines: tuple[RefundedLine, ...] = ()
    fees_returned: int = 0
    pph22_returned: int = 0
    netted_in_settlement: bool = False
    bank_account: str = "main"

    @property
    def cash(self) -> int:
        """What the sale gives back: amount − fees and PPh 22 given back (from the bank, or netted in a
        settlement's payout — then the order's distribution was grossed up by it first)."""
        return self.amount - self.fees_returned - self.pph22_returned

    def validate(self) -> None:
        """Raise :class:`RefundError` unless amounts are whole rupiah that fit."""
        values = [self.amount, self.fees_returned, self.pph22_returned, *(x.amount for x in self.lines)]
        if any(isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in values) or self.amount <= 0:
            raise RefundError(f"refund {self.refund_id}: amounts must be whole rupiah (amount > 0)")
        if sum(x.amount for x in self.lines) > self.amount:
            raise RefundError(f"refund {self.refund_id}: the lines' amounts exceed the refund's amount {self.amount}")
        if self.fees_returned + self.pph22_returned > self.amount:
            raise RefundError(
                f"refund {self.refund_id}: fees {self.fees_returned} and PPh 22 {self.pph22_returned} given back "
                f"exceed the refund's amount {self.amount}"
            )


@dataclass(frozen=True, slots=True)
class Listing:
    """The marketplace listing one allocation was sold under: our SKU and the channel's ids (``None``: unknown)."""

    sku: str
    channel_product_id: str | None = None
    channel_sku_id: str | None = None


def match_sku(
    seller_sku: str | None, channel_sku_id: str | None, channel_product_id: str | None, listings: Sequence[Listing]
) -> str | None:
    """The SKU a refund line refunds: its ``seller_sku`` when the order has it; else the SKU of the listing its
    ``channel_sku_id`` names, else of the listings its ``channel_product_id`` names (when they agree on one SKU);
    else ``seller_sku`` as given (``None`` or unknown: the refund is spread over the whole order)."""
    if seller_sku is not None and any(x.sku == seller_sku for x in listings):
        return seller_sku
    for wanted, of in ((channel_sku_id, "channel_sku_id"), (channel_product_id, "channel_product_id")):
        skus = {x.sku for x in listings if wanted is not None and getattr(x, of) == wanted}
        if len(skus) == 1:
            return skus.pop()
    return seller_sku


def _weights(allocations: Sequence[BatchAllocation]) -> list[int]:
    weights = [a.quantity * a.unit_price for a in allocations]
    return weights if any(weights) else [a.quantity for a in allocations]


def gross_per_batch(allocations: Sequence[BatchAllocation], refund: LineRefund) -> list[int] | None:
    """The refunded gross per allocation (in order, summing to ``refund.amount``); ``None`` when a line's SKU is
    not among the allocations (the caller spreads the whole refund pro rata instead)."""
    out = [0] * len(allocations)
    for line in refund.lines:
        matches = [i for i, a in enumerate(allocations) if line.sku is not None and a.sku == line.sku]
        if not matches:
            return None
        for i, part in zip(matches, allocate(line.amount, _weights([allocations[i] for i in matches])), strict=True):
            out[i] += part
    rest = refund.amount - sum(line.amount for line in refund.lines)
    for i, part in enumerate(allocate(rest, _weights(allocations))):
        out[i] += part
    return out


def take_back_per_batch(gross: Sequence[int], cash: int) -> list[int]:
    """``cash`` split by the refunded gross per batch (largest remainder; all to nothing when no gross)."""
    return allocate(cash, list(gross)) if any(gross) else [0] * len(gross)


def taken_by_amount_only_refunds(plan: DistributionPlan, refunded_gross: int) -> dict[str, int]:
    """Per batch, what the amount-only (pro-rata) refunds of ``refunded_gross`` took back: the starting point of
    the first line-aware refund of an order refunded the old way (each leg's share may differ by a rupiah)."""
    parts, position, taken = cumulative_reversal(plan, refunded_gross), 0, {}
    for batch in plan.batches:
        taken[batch.batch_id] = sum(parts[position : position + len(batch.legs)])
        position += len(batch.legs)
    return taken


@dataclass
class _Reversal:
    lines: LineBuilder = field(default_factory=LineBuilder)
    absorbed: int = 0


def _reverse_batch(
    batch: BatchPlan, before: int, after: int, claw_back: ClawBack, balances: dict[str, int], out: _Reversal
) -> None:
    """Reverse the legs of ``batch`` from cumulative take-back ``before`` to ``after`` into ``out``."""
    legs = batch.legs
    if not legs:
        return
    amounts = [leg.amount for leg in legs]
    for leg, was, now in zip(legs, allocate(before, amounts), allocate(after, amounts), strict=True):
        delta = now - was
        kind = accounts.account_info(leg.credit)
        if kind.kind.name == "supplier_payable":
            out.absorbed += delta  # not restockable: the supplier keeps the material cost
        elif kind.kind.name == "inmate_savings" and kind.owner is not None and claw_back is not ClawBack.NEVER:
            savings = max(balances.get(leg.credit, 0), 0)
            taken = min(savings, delta) if delta > 0 else delta
            out.lines.credit(leg.debit, taken)
            out.lines.debit(leg.credit, taken)
            balances[leg.credit] = balances.get(leg.credit, 0) - taken
            if claw_back is ClawBack.RECEIVABLE:
                out.lines.credit(leg.debit, delta - taken)
                out.lines.debit(accounts.inmate_receivable(kind.owner), delta - taken)
            else:
                out.absorbed += delta - taken
        elif kind.kind.name == "inmate_savings":
            out.absorbed += delta  # never: the inmate keeps the premi
        else:
            out.lines.credit(leg.debit, delta)
            out.lines.debit(leg.credit, delta)


def refund_take_back(refund: LineRefund, ppn: int, tax: TaxSetting) -> int:
    """What the batches give back for ``refund``: its cash, less the output PPN of the refunded gross (``ppn``: the
    state gives that back), plus the input PPN inside the fees given back, plus — when the withholding is claimed
    back (exempt) — the PPh 22 given back. So revenue − fees − tax − distribution of the order moves by 0."""
    exempt = refund.pph22_returned if tax.pph22 is Pph22Treatment.EXEMPT else 0
    return max(0, refund.cash - ppn + ppn_inside(refund.fees_returned, tax) + exempt)


def check_within_gross(refund: LineRefund, refunded_before: int, gross: int) -> None:
    """Raise :class:`RefundError` (rule ``refund_within_gross``) when ``refund`` brings the order's refunds
    (``refunded_before`` earlier) above its ``gross``."""
    if refunded_before + refund.amount > gross:
        raise RefundError(
            f"refund refused (refund_within_gross): order {refund.order.order_key}: refund {refund.refund_id} of "
            f"{refund.amount} brings refunds to {refunded_before + refund.amount}, more than the gross {gross} "
            f"({gross - refunded_before} left)"
        )


def build_line_refund(
    plan: DistributionPlan,
    allocations: Sequence[BatchAllocation],
    refund: LineRefund,
    refunded_before: int,
    taken: Mapping[str, int],
    claw_back: Mapping[str, ClawBack],
    balances: Mapping[str, int],
    tax: TaxSetting = UNSET,
) -> tuple[list[JournalEntry], dict[str, int]]:
    """The refund's cash entry and one reversal entry per batch that changes, and the cumulative take-back per
    batch after it.

    ``refunded_before``: gross refunded by earlier refunds; ``taken``: cumulative take-back per batch so far;
    ``claw_back``: the mode per policy ref of the plan's batches (absent: never); ``balances``: normal-side
    balances of the order's inmate savings accounts; ``tax``: the order's tax setting (the output PPN of the
    refunded gross, the input PPN of the fees given back and the PPh 22 given back follow it, and so does what the
    batches give back: :func:`refund_take_back`)."""
    refund.validate()
    order = plan.order
    if refund.order != order:
        raise RefundError(f"refund is for {refund.order.order_key}, plan for {order.order_key}")
    check_within_gross(refund, refunded_before, plan.gross)
    gross = gross_per_batch(allocations, refund)
    if gross is None:  # a line names no SKU of the order: the whole refund is spread pro rata
        gross = allocate(refund.amount, _weights(allocations))
    cash = LineBuilder()
    lapas = order.lapas_id
    ppn = -recognise_revenue(cash, lapas, plan.gross - refunded_before, -refund.amount, tax)
    shares = take_back_per_batch(gross, refund_take_back(refund, ppn, tax))
    paid = accounts.suspense(lapas) if refund.netted_in_settlement else accounts.bank(lapas, refund.bank_account)
    cash.credit(paid, refund.cash)
    fee_lines(cash, lapas, {FEES_RETURNED: refund.fees_returned}, tax, sign=-1)
    withheld_lines(cash, lapas, -refund.pph22_returned, tax)
    entries = [
        JournalEntry(
            posting_key=refund_key(order.order_key, refund.refund_id),
            request_hash=request_hash(EntryKind.REFUND, refund),
            kind=EntryKind.REFUND,
            memo=(
                f"order {order.order_key} refund {refund.refund_id}: {refund.amount} (cumulative "
                f"{refunded_before + refund.amount} of {plan.gross}), cash {refund.cash}"
                + (" (netted in a settlement: clears suspense)" if refund.netted_in_settlement else "")
            ),
            effective_at=refund.refunded_at,
            lines=cash.lines(),
            policy_ref=tax.ref if tax is not UNSET else None,
            order_key=order.order_key,
        )
    ]
    working = dict(balances)
    after_taken = dict(taken)
    by_batch = {b.batch_id: b for b in plan.batches}
    lapas = order.lapas_id
    for allocation, refunded, share in zip(allocations, gross, shares, strict=True):
        batch = by_batch.get(allocation.batch_id)
        before = taken.get(allocation.batch_id, 0)
        capacity = batch.proceeds if batch is not None else 0
        after = min(capacity, before + share)
        out = _Reversal(absorbed=share - (after - before))
        if batch is not None:
            _reverse_batch(batch, before, after, claw_back.get(batch.policy_ref, ClawBack.NEVER), working, out)
        out.lines.debit(accounts.production_capital(lapas), out.absorbed)
        out.lines.credit(accounts.capital_allocation_expense(lapas), out.absorbed)
        after_taken[allocation.batch_id] = after
        built = out.lines.lines()
        if not built:
            continue
        entries.append(
            JournalEntry(
                posting_key=refund_reversal_key(order.order_key, refund.refund_id, allocation.batch_id),
                request_hash=request_hash(EntryKind.REFUND_REVERSAL, refund, part=allocation.batch_id),
                kind=EntryKind.REFUND_REVERSAL,
                memo=(
                    f"order {order.order_key} refund {refund.refund_id}, batch {allocation.batch_id}: refunded "
                    f"gross {refunded}, take-back {share} (cumulative {after} of "
                    f"{capacity}), absorbed by production capital {out.absorbed}"
                ),
                effective_at=refund.refunded_at,
                lines=built,
                policy_ref=batch.policy_ref if batch is not None else None,
                reverses=distribution_key(order.order_key, allocation.batch_id),
                order_key=order.order_key,
                batch_id=allocation.batch_id,
            )
        )
    for entry in entries:
        entry.validate()
    return entries, after_taken
