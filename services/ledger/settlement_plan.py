"""Planning an order's settlements and its cumulative distribution: pure (no database, no Kafka).

An order may be settled several times (items settled on different days, a daily statement's adjustment). Each
settlement posts its own cash side under ``<order>:settlement:<settlement id>``: it clears what is left of the
receivable up to its own gross, and the difference of its cash, fees and PPh 22 goes to suspense. The
distribution always follows what was settled in total: after the n-th settlement the parts distributed are the
exact largest-remainder split of the cumulative settlement (:func:`cumulative`), and the entries post only the
difference to what the first ``distributed`` settlements distributed — so rounding never drifts.

When the distribution cannot be made — no batch is allocated, no policy is in force, the proceeds do not cover
the material cost — the cash side still posts; the cleared gross stays in (or moves to)
``clearing:unallocated_proceeds:<lapas>`` and the order records why (``hold``). :func:`plan_release` posts it
once the cause is gone (a person allocates batches, or a later settlement makes the distribution possible).

A settlement that names the marketplace's own settlement id reports that id's current totals: a later one under
the same id (a re-read after an adjustment) posts only its difference to the totals posted last for that id
(:func:`settlement_difference`) — as one more settlement, so the distribution still follows the cumulative sum.
A difference may be negative (the marketplace clawed something back): it is kept as a *signed* settlement
(:func:`settlement_of`), whose entry posts each amount that went down on the opposite side, and whose
distribution delta is held for a person when it would take back from inmate savings. A re-read whose statement
time is before the last one's is stale (:func:`is_stale`): it is closed without posting.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from infra.errors import error_text
from services.ledger.domain import accounts
from services.ledger.domain.accounts import Side
from services.ledger.domain.distribution import distribution_of
from services.ledger.domain.errors import DistributionError, NoPolicyError
from services.ledger.domain.facts import NO_ALLOCATION, OrderFacts
from services.ledger.domain.journal import EntryKind, JournalEntry, LineBuilder, request_hash
from services.ledger.domain.model import CompletionRequest, OrderRef, SettlementRequest
from services.ledger.domain.policy import SplitPolicy
from services.ledger.domain.postings import (
    build_distribution,
    build_settlement,
    proceeds_account,
    settlement_key,
)
from services.ledger.domain.refunds import LineRefund
from services.ledger.domain.tax import WithholdingSlip, recognise_revenue, withholding_check
from services.ledger.requests import settlement_request

_SAVINGS = "liability:inmate_savings:"
_DEBIT = Side.DEBIT  # a module constant: reading a member off an enum class costs a descriptor call (every line)


def release_key(order_key: str, through: int) -> str:
    """Posting key of the release of held proceeds to revenue, once the first ``through`` settlements can be
    distributed."""
    return f"{order_key}:release:s{through}"


def cumulative(settlements: Sequence[SettlementRequest]) -> SettlementRequest:
    """The settlements taken together (amounts and fees per type summed; id and time of the last one). One
    settlement is itself, so a single settlement hashes and distributes as it always did."""
    if len(settlements) == 1:
        return settlements[0]
    fees: dict[str, int] = {}
    for s in settlements:
        for fee_type, amount in s.fees.items():
            fees[fee_type] = fees.get(fee_type, 0) + amount
    last = settlements[-1]
    return SettlementRequest(
        order=last.order,
        settlement_id=last.settlement_id,
        gross=sum(s.gross for s in settlements),
        fees=dict(sorted(fees.items())),
        pph22_withheld=sum(s.pph22_withheld for s in settlements),
        net_payout=sum(s.net_payout for s in settlements),
        settled_at=last.settled_at,
        bank_account=last.bank_account,
    )


_TOTALS = ("gross_amount", "pph22_withheld", "net_payout")


def _fee_totals(payload: dict[str, Any]) -> dict[str, int]:
    fees: dict[str, int] = {}
    for fee in payload.get("fees", ()):
        fees[fee["fee_type"]] = fees.get(fee["fee_type"], 0) + int(fee["amount"])
    return fees


SIGNED = "signed"
"""The marker of a settlement payload that holds a signed difference (some amounts negative): it is no
``settlement_reported`` event, so it is read by :func:`settlement_of`, not by the contract."""


def settlement_of(payload: dict[str, Any], ref: OrderRef) -> SettlementRequest:
    """The settlement request of a payload the order's facts keep: a ``settlement_reported`` payload (checked
    against its contract), or a signed difference (:data:`SIGNED`; its amounts come from checked payloads)."""
    if not payload.get(SIGNED):
        return settlement_request(payload, ref)
    return SettlementRequest(
        order=ref,
        settlement_id=str(payload["settlement_id"]),
        gross=int(payload["gross_amount"]),
        fees=_fee_totals(payload),
        pph22_withheld=int(payload["pph22_withheld"]),
        net_payout=int(payload["net_payout"]),
        settled_at=_time(payload),
    )


def is_stale(last: dict[str, Any], now: dict[str, Any]) -> bool:
    """Whether ``now`` (a re-read of a marketplace settlement id) reports an older statement than ``last`` (the
    totals posted last for that id): its statement time (``settled_at``: the marketplace's release or statement
    time) is before the last one's. Equal times are not stale: the marketplace restated the same statement."""
    return _time(now) < _time(last)


def _time(payload: dict[str, Any]) -> datetime:
    value = payload["settled_at"]
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def settlement_difference(last: dict[str, Any], now: dict[str, Any]) -> dict[str, Any] | None:
    """``now`` (a settlement payload carrying a marketplace settlement id's current totals) less ``last`` (the
    totals posted last for that id), field by field and fee type by fee type: the payload of what ``now``
    changes, or ``None`` when it changes nothing. When a total went down the payload is signed (:data:`SIGNED`,
    read by :func:`settlement_of`): the marketplace clawed something back, and the entry says so."""
    fees_now, fees_last = _fee_totals(now), _fee_totals(last)
    changes = {f: int(now.get(f, 0)) - int(last.get(f, 0)) for f in _TOTALS}
    fee_changes = {t: fees_now.get(t, 0) - fees_last.get(t, 0) for t in sorted(fees_now.keys() | fees_last.keys())}
    if not any(changes.values()) and not any(fee_changes.values()):
        return None
    fees = [{"fee_type": t, "amount": d} for t, d in fee_changes.items() if d]
    signed = any(d < 0 for d in [*changes.values(), *fee_changes.values()])
    return {**now, **changes, "fees": fees, **({SIGNED: True} if signed else {})}


def lowered(payload: dict[str, Any]) -> list[str]:
    """The totals a signed difference lowers (field names and fee types), for the memo and the reasons."""
    fields = [f for f in _TOTALS if int(payload.get(f, 0)) < 0]
    return sorted(fields + [t for t, d in _fee_totals(payload).items() if d < 0])


def cleared_amounts(gross: int, settlements: Sequence[SettlementRequest]) -> list[int]:
    """What each settlement clears from the receivable ``gross``: its own gross, up to what is left. A signed
    settlement that lowers the gross re-opens what the running total no longer clears (a negative part)."""
    cleared, running, before = [], 0, 0
    for s in settlements:
        running += s.gross
        now = min(max(running, 0), gross)
        cleared.append(now - before)
        before = now
    return cleared


@dataclass
class SettlementOutcome:
    """The entries one settlement (or release) posts and the hold it leaves (``None``: distributed)."""

    entries: list[JournalEntry] = field(default_factory=list)
    hold: str | None = None
    slip: WithholdingSlip | None = None


def settled_requests(order: OrderFacts, ref: OrderRef) -> list[SettlementRequest]:
    """The order's settlements as requests, in order (signed differences included)."""
    return [settlement_of(s, ref) for s in order.settlements]


def _requests(order: OrderFacts, completion: CompletionRequest) -> list[SettlementRequest]:
    return settled_requests(order, completion.order)


def plan_settlement(
    order: OrderFacts,
    payload: dict[str, Any],
    completion: CompletionRequest,
    policies: Sequence[SplitPolicy],
    parsed: SettlementRequest | None = None,
) -> SettlementOutcome:
    """Post a NEW settlement (``payload``; the caller checked its id is new) of ``order``, updating ``order``.

    ``completion`` is the order's effective completion (:meth:`OrderFacts.effective_completion`); ``parsed``: what
    :func:`settlement_of` makes of ``payload``, when the caller has it already (parsed once, bench issue 13).
    A settlement that withheld PPh 22, or whose withholding is off by more than the setting's tolerance, gets its
    :class:`WithholdingSlip` (a signed difference does not: its amounts are changes, not a withholding)."""
    settlement = parsed if parsed is not None else settlement_of(payload, completion.order)
    signed = bool(payload.get(SIGNED))
    earlier = _requests(order, completion)
    cleared_all = cleared_amounts(_gross(order), [*earlier, settlement])
    cleared = cleared_all[-1]
    order.settlements.append(payload)
    order.changed = True
    order.pin_tax()
    # The requests just parsed, not a second parse of every stored payload (bench issue 13).
    outcome = distribute(
        order, completion, policies, release_last=False, take_back=False, parsed=[*earlier, settlement]
    )
    # A settlement that pays nothing, withholds nothing and clears nothing (its gross is beyond what is left of
    # the receivable) moves no money: it is recorded in the facts, and no (empty) entry is posted.
    moves_money = cleared or settlement.net_payout or any(settlement.fees.values()) or settlement.pph22_withheld
    slip = None if signed else _slip(order, payload, settlement)
    if outcome.hold is None:
        # Distributed: this settlement recognises its own cleared gross (the release took what waited before).
        revenue = accounts.sales_revenue(completion.order.lapas_id)
        pair = (proceeds_account(order.lapas_id, allocated=order.allocated_at_completion), revenue)
        if moves_money:
            outcome.entries.insert(
                0,
                build_settlement(
                    settlement,
                    cleared,
                    pair,
                    signed=signed,
                    booked_lapas=order.lapas_id,
                    tax=order.tax,
                    recognised_before=sum(cleared_all[:-1]),
                    fees_before=cumulative(earlier).fees if earlier else None,
                    checked=not earlier,  # a first settlement is the cumulative one distribute just validated
                ),
            )
        outcome.slip = slip
        return outcome
    order.hold = outcome.hold
    held: tuple[str, str] | None = None
    if order.allocated_at_completion:  # the cleared gross moves to unallocated, with the reason
        held = accounts.undistributed_proceeds(order.lapas_id), accounts.unallocated_proceeds(order.lapas_id)
    entries = (
        [
            build_settlement(
                settlement,
                cleared,
                held,
                hold=order.hold,
                signed=signed,
                booked_lapas=order.lapas_id,
                tax=order.tax,
                fees_before=cumulative(earlier).fees if earlier else None,
            )
        ]
        if moves_money
        else []
    )
    return SettlementOutcome(entries, order.hold, slip)


def _slip(order: OrderFacts, payload: dict[str, Any], settlement: SettlementRequest) -> WithholdingSlip | None:
    check = withholding_check(settlement.gross, settlement.pph22_withheld, order.tax)
    if not settlement.pph22_withheld and not check.flagged:
        return None
    reference = payload.get("invoice_number") or payload.get("marketplace_settlement_id") or settlement.settlement_id
    return WithholdingSlip(
        posting_key=settlement_key(order.order_key, settlement.settlement_id),
        order_key=order.order_key,
        lapas_id=settlement.order.lapas_id,
        settled_at=settlement.settled_at,
        check=check,
        slip_ref=str(reference),
        tax_ref=order.tax.ref,
    )


def distribute(
    order: OrderFacts,
    completion: CompletionRequest,
    policies: Sequence[SplitPolicy],
    *,
    release_last: bool = True,
    take_back: bool = True,
    parsed: Sequence[SettlementRequest] | None = None,
) -> SettlementOutcome:
    """Distribute ``order`` cumulatively through all its settlements, updating ``order``: first the release
    to revenue of the gross held in unallocated proceeds (the settlements after the ``distributed`` first;
    the last one too when ``release_last``), then one delta entry per batch. When that cannot be done,
    nothing but the reason (``hold``; ``order`` unchanged).

    Without ``take_back`` (an event, not a person, asks) a delta that would take from an inmate's savings — a
    later settlement that lowers the base, or a rupiah the largest remainder moves — is held instead: the
    savings may have been paid out, and the database would refuse the batch again and again. ``parsed``: the
    order's settlements already parsed by the caller (what :func:`settled_requests` would return)."""
    settlements = list(parsed) if parsed is not None else _requests(order, completion)
    if not completion.allocations:
        return SettlementOutcome(hold=order.hold or NO_ALLOCATION)
    n = len(settlements)
    if n == 0:
        order.hold, order.changed = None, True
        return SettlementOutcome()
    policies = order.pinned(policies)  # a version loaded since the first distribution changes no delta
    # The completion was validated where it was parsed (completion_request); each cumulative settlement here.
    settled = cumulative(settlements)
    try:
        settled.validate()
        after = distribution_of(completion, settled, policies, order.tax)
        before = None
        if order.distributed:
            (earlier := cumulative(settlements[: order.distributed])).validate()
            before = distribution_of(completion, earlier, policies, order.tax)
    except (DistributionError, NoPolicyError) as exc:
        return SettlementOutcome(hold=error_text(exc))
    entries: list[JournalEntry] = []
    cleared = cleared_amounts(_gross(order), settlements)
    held = sum(cleared[order.distributed : n if release_last else n - 1])
    if held:
        entries.append(_release(order, completion, settlements[-1], held, n, sum(cleared[: order.distributed])))
    entries += build_distribution(after, settled, before, n)
    taken = sum(
        line.amount for e in entries for line in e.lines if line.side is _DEBIT and line.account.startswith(_SAVINGS)
    )
    if taken and not take_back:
        return SettlementOutcome(
            hold=f"the cumulative settlement takes {taken} back from inmate savings: a person decides"
        )
    order.distributed, order.hold, order.changed = n, None, True
    order.policy_refs = sorted({b.policy_ref for b in after.batches})
    return SettlementOutcome(entries)


def _gross(order: OrderFacts) -> int:
    """The gross the order's completion recognised (its receivable)."""
    gross = order.completion["gross_amount"]
    return int(gross)


def _release(
    order: OrderFacts, completion: CompletionRequest, last: SettlementRequest, amount: int, through: int, before: int
) -> JournalEntry:
    """Dr unallocated proceeds / Cr revenue: held proceeds recognised once they can be distributed (less the
    output PPN inside them under the order's tax setting; ``before``: the gross recognised by earlier entries)."""
    lines = LineBuilder()
    lines.debit(accounts.unallocated_proceeds(order.lapas_id), amount)
    recognise_revenue(lines, completion.order.lapas_id, before, amount, order.tax)
    entry = JournalEntry(
        posting_key=release_key(order.order_key, through),
        request_hash=request_hash(EntryKind.SETTLEMENT, {"release": amount, "through": through}, part="release"),
        kind=EntryKind.SETTLEMENT,
        memo=f"order {order.order_key}: {amount} held in unallocated released to revenue (settlements 1..{through})",
        effective_at=last.settled_at,
        lines=lines.lines(),
        order_key=order.order_key,
    )
    entry.validate()
    return entry


def netted_settlement_id(refund_id: str) -> str:
    """The id of the settlement that stands for the cash a netted refund took out of a settlement's payout."""
    return "netted-" + hashlib.sha256(refund_id.encode()).hexdigest()[:16]


def gross_up_netted(
    order: OrderFacts, completion: CompletionRequest, refund: LineRefund, policies: Sequence[SplitPolicy]
) -> list[JournalEntry]:
    """Plan a refund netted in a settlement together with that settlement, updating ``order``.

    The settlement's net payout is short of what the marketplace netted (R − fees and PPh 22 given back): the
    order's distribution is grossed up by that cash — one more settlement in the facts, which pays and clears
    nothing (its cash side is the suspense the settlement left, cleared by the refund's entry), so the
    distribution follows ``min(ΣN + netted, G − ΣF − ΣW)`` — and the refund then takes that cash back from the
    refunded lines' batches like a refund paid from the bank. So a netted refund and a paid one end with the
    same books but for the bank, and a settlement held only because the netted refund brought it below the
    material cost is distributed. Returns the release and distribution entries (none when the distribution
    still waits: then ``order.hold`` says why). Once per refund: a parked refund planned again adds nothing."""
    settlement_id = netted_settlement_id(refund.refund_id)
    if any(s.get("settlement_id") == settlement_id for s in order.settlements) or not refund.cash:
        return []
    order.settlements.append(
        {
            "settlement_id": settlement_id,
            "netted_refund": refund.refund_id,
            "gross_amount": 0,
            "fees": [],
            "pph22_withheld": 0,
            "net_payout": refund.cash,
            "settled_at": refund.refunded_at.isoformat(),
            SIGNED: True,
        }
    )
    order.changed = True
    outcome = distribute(order, completion, policies, take_back=False)
    if outcome.hold is not None:
        order.hold = outcome.hold
    return outcome.entries


def held_amount(order: OrderFacts) -> int:
    """What of ``order``'s gross waits in unallocated proceeds: for an order completed without batches, the
    gross less what was released; otherwise what the settlements after the distributed ones cleared."""
    ref = OrderRef(order.order_key, str(order.completion.get("channel", "")), order.lapas_id)
    cleared = cleared_amounts(_gross(order), settled_requests(order, ref))
    if order.allocated_at_completion:
        return sum(cleared[order.distributed :])
    return _gross(order) - sum(cleared[: order.distributed])
