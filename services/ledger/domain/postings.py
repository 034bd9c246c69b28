"""Posting builders: pure functions from requests (and, where needed, balances) to journal entries.

Accounting (G = gross recognised at completion, F = fees, W = PPh 22 withheld, N = net payout,
B = distributable base = min(N, G − F − W), see :mod:`services.ledger.domain.distribution`):

1. **Sale completed** (``<order>:completed``)::

       Dr asset:marketplace_receivable:<channel>     G
       Cr clearing:undistributed_proceeds:<lapas>    G      (completed, not yet settled; unallocated_proceeds
                                                            when the completion names no batch)

2. **Settlement** (``<order>:settlement:<settlement id>``, one per settlement; see
   :mod:`services.ledger.settlement_plan` for several settlements, held distributions and their release): cash
   side and revenue recognition in one entry (G: what this settlement clears of the receivable)::

       Dr asset:bank:<account>                       N
       Dr expense:marketplace_fee:<type>             F_type   (each fee type)
       Dr asset:pph22_prepaid                        W        (by the lapas' tax treatment, see below)
       Cr asset:marketplace_receivable:<channel>     G        (what it clears of what completion recognised)
       Dr/Cr clearing:suspense                       |N + F + W − G|   (the difference, either side)
       Dr clearing:undistributed_proceeds:<lapas>    G
       Cr revenue:sales:<lapas>                      G

   Revenue is recognised at settlement, at the gross completion recognised, so revenue = settled − refunded.
   Under a lapas' tax setting (:mod:`services.ledger.domain.tax`) the output PPN inside G is credited to
   ``liability:ppn_output`` instead of revenue, the input PPN inside each fee debited to ``asset:ppn_input``
   instead of the fee, and W booked by its treatment (creditable: prepaid, with the income tax it prepays
   accrued; expense; exempt: to claim back).
   The settlement's own ``gross`` field is recorded in the request (and its hash) but the receivable is
   cleared at G; a marketplace that settles a different amount shows up in suspense.

3. **Distribution** (``<order>:distribution:<batch>``, one entry per batch, with the policy version in force
   at completion): B is attributed to batches by quantity × unit price, then per batch::

       Dr expense:material_cost:<lapas>      / Cr liability:supplier_payable:<supplier>   unit cost × qty
       Dr expense:pnbp_share:<lapas>         / Cr liability:pnbp_payable:<lapas>          PNBP share
       Dr expense:inmate_premi:<lapas>       / Cr liability:inmate_savings:<wbp>          premi, per inmate
       Dr expense:capital_allocation:<lapas> / Cr equity:production_capital:<lapas>      capital share

   Distributions are expenses of the sale (material cost, premi as a wage share, the state's levy) and an
   allocation to capital. Once distributed, a settled order leaves an income of exactly W (the PPh 22 credit),
   plus any shortfall of the payout, which is undistributed and waits in suspense for reconciliation.

4. **Refund** (per refund id): planned by :mod:`services.ledger.domain.refunds` — one path for every refund,
   with lines or only an amount (then spread over every batch by quantity × unit price): only the refunded
   lines' batches, from the cash given back, premi by the policy's ``claw_back_premi``.

5. **Payout** (``payout:<wbp>:<payout id>``): ``Dr liability:inmate_savings:<wbp> / Cr asset:bank``,
   refused when the savings balance is lower than the amount.

``balances`` arguments map account codes to normal-side balances (see :mod:`services.ledger.domain.accounts`);
only the inmate accounts are read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from services.ledger.domain import accounts
from services.ledger.domain.distribution import DistributionPlan
from services.ledger.domain.errors import InsufficientBalanceError, RequestError
from services.ledger.domain.journal import EntryKind, JournalEntry, Line, LineBuilder, request_hash
from services.ledger.domain.model import CompletionRequest, PayoutRequest, SettlementRequest
from services.ledger.domain.tax import UNSET, TaxSetting, fee_lines, recognise_revenue, withheld_lines

__all__ = [
    "EntryKind",
    "JournalEntry",
    "Line",
    "build_completion",
    "build_distribution",
    "build_payout",
    "build_settlement",
    "completion_entry",
    "completion_key",
    "distribution_key",
    "entries_balance_changes",
    "payout_key",
    "proceeds_account",
    "refund_key",
    "refund_reversal_key",
    "request_hash",
    "settlement_key",
]


# Members as module constants: reading a member off an enum class costs a descriptor call.
_SALE_COMPLETED, _SETTLEMENT, _DISTRIBUTION = EntryKind.SALE_COMPLETED, EntryKind.SETTLEMENT, EntryKind.DISTRIBUTION
_PAYOUT = EntryKind.PAYOUT


def completion_key(order_key: str) -> str:
    """Posting key of an order's completion entry."""
    return f"{order_key}:completed"


def settlement_key(order_key: str, settlement_id: str) -> str:
    """Posting key of one settlement (or adjustment) of an order: an order may be settled several times."""
    return f"{order_key}:settlement:{settlement_id}"


def distribution_key(order_key: str, batch_id: str, through: int = 1) -> str:
    """Posting key of the distribution of one batch of an order up to its ``through``-th settlement (the
    first distribution keeps the plain key; each later one posts the delta to the cumulative)."""
    base = f"{order_key}:distribution:{batch_id}"
    return base if through == 1 else f"{base}:s{through}"


def refund_key(order_key: str, refund_id: str) -> str:
    """Posting key of a refund's cash and revenue entry."""
    return f"{order_key}:refund:{refund_id}"


def refund_reversal_key(order_key: str, refund_id: str, batch_id: str) -> str:
    """Posting key of a refund's reversal of one batch's distribution."""
    return f"{order_key}:refund:{refund_id}:{batch_id}"


def payout_key(inmate_id: str, payout_id: str) -> str:
    """Posting key of a savings payout."""
    return f"payout:{inmate_id}:{payout_id}"


def _finish(entry: JournalEntry) -> JournalEntry:
    entry.validate()
    return entry


def build_completion(request: CompletionRequest) -> JournalEntry:
    """Order completed: Dr marketplace receivable / Cr undistributed proceeds, at gross (Cr unallocated proceeds
    when no batch is allocated: the distribution waits for one)."""
    request.validate()
    return completion_entry(request)


def completion_entry(request: CompletionRequest) -> JournalEntry:
    """:func:`build_completion` of a request validated already (the posting path validates a completion once,
    where it parses it: :func:`services.ledger.requests.completion_request`)."""
    order = request.order
    lines = LineBuilder()
    lines.debit(accounts.marketplace_receivable(order.lapas_id, order.channel), request.gross)
    lines.credit(proceeds_account(request.order.lapas_id, allocated=bool(request.allocations)), request.gross)
    return _finish(
        JournalEntry(
            posting_key=completion_key(order.order_key),
            request_hash=request_hash(_SALE_COMPLETED, request),
            kind=_SALE_COMPLETED,
            memo=f"order {order.order_key} completed on {order.channel}: gross {request.gross}",
            effective_at=request.completed_at,
            lines=lines.lines(),
            order_key=order.order_key,
        )
    )


def proceeds_account(lapas_id: str, *, allocated: bool) -> str:
    """Where a completion puts its gross until settlement: undistributed proceeds, or unallocated proceeds
    when no batch is allocated."""
    return (accounts.undistributed_proceeds if allocated else accounts.unallocated_proceeds)(lapas_id)


def build_settlement(
    request: SettlementRequest,
    recognised_gross: int,
    recognise: tuple[str, str] | bool | None = True,
    hold: str | None = None,
    *,
    signed: bool = False,
    booked_lapas: str | None = None,
    tax: TaxSetting = UNSET,
    recognised_before: int = 0,
    fees_before: Mapping[str, int] | None = None,
    checked: bool = False,
) -> JournalEntry:
    """Settlement: bank, fees, PPh 22 prepaid against the receivable (difference to suspense), and revenue.

    ``recognised_gross`` is what this settlement clears from the receivable (the completion's gross for a
    single settlement; a later settlement clears what is left of it, up to its own gross). ``recognise``: the
    ``(debit, credit)`` pair the cleared gross moves between — ``True`` is undistributed proceeds to revenue;
    a held distribution moves it from undistributed to unallocated proceeds, or (completed unallocated) not
    at all (``None``). ``hold``: the reason the distribution waits, for the memo.

    ``signed``: the request is the difference of a marketplace settlement's totals to the last ones posted, and
    amounts that went down are negative: each is posted on the opposite side (a lower net credits the bank, a
    lower gross re-opens the receivable and takes the revenue back), so no line amount is ever negative.

    ``booked_lapas``: the lapas whose books the completion put the receivable in (``unknown`` for an order
    completed with no lapas and allocated since; default the request's). The receivable is cleared there; the cash,
    fees and PPh 22 are the request's lapas' when the entry recognises its revenue (so each lapas' part of the entry
    balances), else they stay with the receivable.

    ``tax``: the lapas' tax setting (:mod:`services.ledger.domain.tax`): fees are posted without the input PPN
    inside them, the PPh 22 by its treatment, and revenue without the output PPN inside the recognised gross (the
    PPN of the cumulative recognised gross, ``recognised_before`` recognised by earlier settlements; the input PPN
    likewise of the cumulative fees, ``fees_before`` per type by earlier settlements); a set
    setting is recorded as the entry's ``policy_ref``.

    ``checked``: ``request`` was validated already (the posting path validates a settlement once, where it first
    plans it) and is not validated again; a signed difference, which no ``validate()`` fits, is checked either way.
    """
    if signed:
        request.order.validate()
        amounts = [request.gross, request.pph22_withheld, request.net_payout, *request.fees.values()]
        if any(isinstance(v, bool) or not isinstance(v, int) for v in [*amounts, recognised_gross]):
            raise RequestError("a settlement difference must be int numbers of rupiah")
    else:
        if not checked:
            request.validate()
        if isinstance(recognised_gross, bool) or not isinstance(recognised_gross, int) or recognised_gross < 0:
            raise RequestError(f"recognised gross must be an int >= 0, got {recognised_gross!r}")
    order = request.order
    booked = booked_lapas or order.lapas_id
    recognises_revenue = recognise is True or (
        isinstance(recognise, tuple) and accounts.account_info(recognise[1]).type is accounts.AccountType.REVENUE
    )
    cash = order.lapas_id if recognises_revenue else booked
    lines = LineBuilder()
    lines.debit(accounts.bank(cash, request.bank_account), request.net_payout)
    fee_lines(lines, cash, request.fees, tax, before=fees_before)
    withheld_lines(lines, cash, request.pph22_withheld, tax)
    lines.credit(accounts.marketplace_receivable(booked, order.channel), recognised_gross)
    difference = request.net_payout + request.fee_total + request.pph22_withheld - recognised_gross
    lines.credit(accounts.suspense(cash), difference)
    if recognise is True:
        recognise = accounts.undistributed_proceeds(order.lapas_id), accounts.sales_revenue(order.lapas_id)
    if isinstance(recognise, tuple):
        lines.debit(recognise[0], recognised_gross)
        if accounts.account_info(recognise[1]).type is accounts.AccountType.REVENUE:
            recognise_revenue(lines, order.lapas_id, recognised_before, recognised_gross, tax)
        else:
            lines.credit(recognise[1], recognised_gross)
    memo = (
        f"order {order.order_key} {'settlement changed' if signed else 'settled'} ({request.settlement_id}): "
        f"gross {request.gross}, fees "
        f"{request.fee_total}, PPh 22 {request.pph22_withheld}, net {request.net_payout}"
        + (f", difference {difference:+d} to suspense" if difference else "")
        + (f"; distribution held: {hold}" if hold else "")
        + (f"; tax {tax.ref}" if tax is not UNSET else "")
    )
    return _finish(
        JournalEntry(
            posting_key=settlement_key(order.order_key, request.settlement_id),
            request_hash=request_hash(_SETTLEMENT, request),
            kind=_SETTLEMENT,
            memo=memo,
            effective_at=request.settled_at,
            lines=lines.lines(),
            policy_ref=tax.ref if tax is not UNSET else None,
            order_key=order.order_key,
        )
    )


def build_distribution(
    plan: DistributionPlan,
    settlement: SettlementRequest,
    before: DistributionPlan | None = None,
    through: int = 1,
) -> list[JournalEntry]:
    """One distribution entry per batch of ``plan`` (batches whose proceeds are 0 get none).

    With ``before`` (the distribution of the first ``through − 1`` settlements, cumulative), each entry posts
    only the difference between ``plan`` (the cumulative distribution through the ``through``-th settlement)
    and ``before``, so the parts distributed so far are always the exact split of what was settled so far."""
    if settlement.order != plan.order:
        raise RequestError(f"settlement is for {settlement.order.order_key}, plan for {plan.order.order_key}")
    earlier = {b.batch_id: b for b in before.batches} if before is not None else {}
    entries = []
    for batch in plan.batches:
        lines = LineBuilder()
        for leg in batch.legs:
            lines.debit(leg.debit, leg.amount)
            lines.credit(leg.credit, leg.amount)
        for leg in earlier[batch.batch_id].legs if batch.batch_id in earlier else ():
            lines.debit(leg.debit, -leg.amount)
            lines.credit(leg.credit, -leg.amount)
        built = lines.lines()
        if not built:
            continue
        entries.append(
            _finish(
                JournalEntry(
                    posting_key=distribution_key(plan.order.order_key, batch.batch_id, through),
                    request_hash=request_hash(_DISTRIBUTION, settlement, part=batch.batch_id),
                    kind=_DISTRIBUTION,
                    memo=(
                        f"order {plan.order.order_key}, batch {batch.batch_id} ({batch.sku}): proceeds "
                        f"{batch.proceeds} of base {plan.base}, material {batch.material_cost}, "
                        f"policy {batch.policy_ref}"
                    ),
                    effective_at=settlement.settled_at,
                    lines=built,
                    policy_ref=batch.policy_ref,
                    order_key=plan.order.order_key,
                    batch_id=batch.batch_id,
                )
            )
        )
    return entries


def build_payout(request: PayoutRequest, balances: Mapping[str, int], lapas: str) -> JournalEntry:
    """Savings payout on release: Dr inmate savings / Cr the bank of ``lapas`` (the inmate's); refused above the
    savings balance."""
    request.validate()
    savings = accounts.inmate_savings(request.inmate_id)
    balance = balances.get(savings, 0)
    if request.amount > balance:
        raise InsufficientBalanceError(
            f"payout {request.payout_id} of {request.amount} for {request.inmate_id} exceeds the savings "
            f"balance {balance}"
        )
    lines = LineBuilder()
    lines.debit(savings, request.amount)
    lines.credit(accounts.bank(lapas, request.bank_account), request.amount)
    return _finish(
        JournalEntry(
            posting_key=payout_key(request.inmate_id, request.payout_id),
            request_hash=request_hash(_PAYOUT, request),
            kind=_PAYOUT,
            memo=f"savings payout {request.payout_id} to {request.inmate_id} on release: {request.amount}",
            effective_at=request.paid_at,
            lines=lines.lines(),
        )
    )


def entries_balance_changes(entries: Sequence[JournalEntry]) -> dict[str, int]:
    """Normal-side balance change per account over ``entries`` (for callers keeping balances in memory)."""
    changes: dict[str, int] = {}
    for entry in entries:
        for line in entry.lines:
            changes[line.account] = changes.get(line.account, 0) + accounts.normal_delta(
                line.account, line.side, line.amount
            )
    return changes
