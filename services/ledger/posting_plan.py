"""The plan step of posting: from one batch's events and what was read for them to the entries to post.

Pure: no database, no Kafka. :func:`plan_postings` takes what the use case loaded (:class:`PostingInputs`) and
returns a :class:`PostingPlan` — the entries with the event each came from, the events to park, the refusals,
the posting conflicts and the order facts as they stand after the batch. Per order, events are taken in
accounting order (completion, settlement, refunds); a settlement that arrives before its completion, or a refund
before its settlement, is parked until the batch that brings what it waits for. An order the orders service reports
returned or cancelled before the ledger saw it completed ended without a sale: its refunds — parked or arriving
later — are closed without posting (nothing was booked, no cash reached us); its settlements stay parked. A
re-read of a marketplace settlement whose statement is older than the one posted is closed without posting too.
Every refund takes one path (:mod:`services.ledger.domain.refunds`); a netted one is first planned together
with the settlement it was netted in (:func:`services.ledger.settlement_plan.gross_up_netted`). Last, an entry whose
effective time falls in a closed period of its order's lapas is moved to the first open period with a note of the
period it belongs to (:func:`services.ledger.domain.periods.place_entries`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from pydantic import ValidationError

from infra.errors import describe_error, error_text
from infra.messaging.envelope import Envelope
from services.contracts.marketplace import REFUND_REPORTED, SETTLEMENT_REPORTED, RefundReported, SettlementReported
from services.contracts.orders import ORDER_CANCELLED, ORDER_COMPLETED, ORDER_RETURNED, UNITS_RESTOCKED, UnitsRestocked
from services.ledger.domain import accounts
from services.ledger.domain.distribution import distribution_of
from services.ledger.domain.errors import LedgerDomainError
from services.ledger.domain.facts import NO_ALLOCATION, OrderFacts
from services.ledger.domain.journal import Conflict, EntryKind, JournalEntry, request_hash
from services.ledger.domain.model import CompletionRequest, OrderRef
from services.ledger.domain.periods import ClosedPeriod, place_entries
from services.ledger.domain.policy import SplitPolicy
from services.ledger.domain.postings import completion_entry, refund_key, settlement_key
from services.ledger.domain.refunds import build_line_refund, check_within_gross, taken_by_amount_only_refunds
from services.ledger.domain.tax import TaxSetting, WithholdingSlip
from services.ledger.requests import (
    Checked,
    RecentCompletions,
    completion_request,
    line_refund_of_event,
    listings,
    refund_request,
    settlement_of_event,
    settlement_request,
)
from services.ledger.restock import NEVER_COMPLETED, WAITING_FOR, plan_restock, waits
from services.ledger.settlement_plan import (
    cumulative,
    distribute,
    gross_up_netted,
    is_stale,
    plan_settlement,
    settled_requests,
    settlement_difference,
)

_ORDER = {
    ORDER_COMPLETED: 0,
    ORDER_CANCELLED: 1,
    ORDER_RETURNED: 1,
    SETTLEMENT_REPORTED: 2,
    REFUND_REPORTED: 3,
    UNITS_RESTOCKED: 4,
}
POSTED_EVENT_TYPES = frozenset(_ORDER)
"""The event types the ledger acts on; other order events (reservations, shipments) have no ledger effect."""
ENDING_TYPES = frozenset({ORDER_CANCELLED, ORDER_RETURNED})
"""Order events after which an order the ledger never saw completed ended without a sale."""
REFUND_CLOSED = "order ended {how} before completion: no sale was booked, the marketplace refunded from escrow"
"""The recorded reason of a refund closed without posting (``how``: returned or cancelled)."""
STALE_SETTLEMENT = (
    "stale re-read of marketplace settlement {id}: its statement time is before that of {last}, posted last"
)
"""The recorded reason of a settlement closed without posting because a newer statement was posted already."""
ORDER_ENDED = "order ended {how} before completion"
"""The recorded reason of the ending event itself (the ledger remembers it to close later refunds on arrival)."""
_INMATE = ("liability:inmate_savings:", "asset:inmate_receivable:")
_CONTRACTS: dict[str, type[SettlementReported] | type[RefundReported] | type[UnitsRestocked]] = {
    SETTLEMENT_REPORTED: SettlementReported,
    REFUND_REPORTED: RefundReported,
    UNITS_RESTOCKED: UnitsRestocked,
}


Origin = tuple[str, int, int]
"""Where an event first arrived: (topic, partition, offset)."""


@dataclass(frozen=True, slots=True)
class Refused:
    """An event the ledger will not post: a value-free ``reason`` and the ``facts`` to log. ``origin``: for an
    event parked by an earlier batch, where it first arrived (from the inbox), so that the entry point can
    dead-letter it from there; ``None`` for the others."""

    envelope: Envelope
    reason: str
    facts: dict[str, object]
    origin: Origin | None = None


@dataclass(frozen=True)
class PostingInputs:
    """Everything the plan reads, loaded before it runs.

    ``work``: the parked events of the batch's orders (oldest first), then the batch's own. ``facts``: the
    orders' stored facts (locked). ``known``: the request hash of every posting key already in the journal among
    the orders' settlement keys and the refund keys the events name. ``balances``: normal-side balances before
    the batch of the inmate accounts the orders' refunds may take back from (absent: 0). ``closed``: the closed
    periods of the orders' lapas (:func:`batch_lapas`), by lapas; empty when none is closed. ``tax_settings``:
    every lapas' tax setting versions (:mod:`services.ledger.domain.tax`). ``checked``: the payloads
    :func:`check_arrivals` parsed (the others are parsed by the plan).
    """

    work: Sequence[Envelope]
    facts: Mapping[str, OrderFacts]
    policies: Sequence[SplitPolicy]
    known: Mapping[str, str] = field(default_factory=dict)
    balances: Mapping[str, int] = field(default_factory=dict)
    ended: Mapping[str, str] = field(default_factory=dict)
    closed: Mapping[str, Sequence[ClosedPeriod]] = field(default_factory=dict)
    tax_settings: Sequence[TaxSetting] = ()
    checked: Checked = field(default_factory=Checked)


@dataclass
class PostingPlan:
    """What one batch posts and changes, with the event each entry came from."""

    facts: dict[str, OrderFacts]
    entries: list[tuple[JournalEntry, str]] = field(default_factory=list)
    parked: list[tuple[Envelope, str]] = field(default_factory=list)
    refused: list[Refused] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    inmate_changes: dict[str, int] = field(default_factory=dict)
    planned: dict[str, str] = field(default_factory=dict)
    completions: dict[str, CompletionRequest] = field(default_factory=dict)
    closed: list[tuple[Envelope, str]] = field(default_factory=list)
    ended: dict[str, str] = field(default_factory=dict)
    slips: list[WithholdingSlip] = field(default_factory=list)

    def add(self, entries: Sequence[JournalEntry], source: str) -> None:
        """Plan ``entries``; keep the batch's running change of every inmate account (refunds read it)."""
        changes = self.inmate_changes
        for e in entries:
            self.entries.append((e, source))
            self.planned.setdefault(e.posting_key, e.request_hash)
            for line in e.lines:
                if line.account.startswith(_INMATE):
                    changes[line.account] = changes.get(line.account, 0) + accounts.normal_delta(
                        line.account, line.side, line.amount
                    )


def check_arrivals(
    envelopes: Iterable[Envelope], checked: Checked | None = None
) -> tuple[list[Envelope], list[Refused]]:
    """The envelopes the ledger posts from, and the refusals of settlements and refunds that break their contract.

    A settlement or refund may wait for its order (parked); it is checked against its contract on arrival, while
    its origin is at hand for the dead letter, not when its order completes. ``checked`` keeps each parsed payload
    for the plan (:attr:`PostingInputs.checked`), which then does not validate it again."""
    relevant: list[Envelope] = []
    refused: list[Refused] = []
    for envelope in envelopes:
        if envelope.type not in _ORDER:
            continue
        contract = _CONTRACTS.get(envelope.type)
        if contract is not None:
            try:
                payload = contract.model_validate(envelope.data)
                if checked is not None:
                    checked.keep(envelope, payload)
            except ValidationError as exc:
                refused.append(Refused(envelope, reason(envelope, exc), {"rule": "contract", **describe_error(exc)}))
                continue
        relevant.append(envelope)
    return relevant, refused


def lookup_keys(work: Iterable[Envelope]) -> list[str]:
    """The posting keys the plan may meet, to look up before it runs: each refund by the id it reports
    (settlements are told apart by the order's facts, which list every settlement posted)."""
    return [
        refund_key(e.subject, e.data["refund_id"])
        for e in work
        if e.type == REFUND_REPORTED and isinstance(e.data.get("refund_id"), str)
    ]


def batch_lapas(work: Iterable[Envelope], facts: Mapping[str, OrderFacts]) -> set[str]:
    """The lapas the batch may post for, to load their closed periods before the plan runs: those of the orders'
    stored facts and of the completions in ``work``."""
    lapas = {f.lapas_id for f in facts.values()}
    lapas.update(
        e.data["lapas_id"] for e in work if e.type == ORDER_COMPLETED and isinstance(e.data.get("lapas_id"), str)
    )
    return lapas


def refund_accounts(work: Sequence[Envelope], facts: Mapping[str, OrderFacts], recent: RecentCompletions) -> list[str]:
    """The inmate savings and receivable accounts the refunds in ``work`` may take back from: those of every work
    group member of their orders' completions (stored or in ``work``); a completion that does not parse adds none
    (its refunds are refused by the plan)."""
    refunded = {e.subject for e in work if e.type == REFUND_REPORTED}
    payloads = [(k, facts[k].effective_completion()) for k in sorted(refunded) if k in facts]
    payloads += [(e.subject, e.data) for e in work if e.type == ORDER_COMPLETED and e.subject in refunded]
    inmates: set[str] = set()
    for order_key, data in payloads:
        try:
            completion = recent.request(order_key, data)
        except (LedgerDomainError, ValidationError):
            continue
        inmates.update(m.inmate_id for a in completion.allocations for m in a.work_group)
    return [code for i in sorted(inmates) for code in (accounts.inmate_savings(i), accounts.inmate_receivable(i))]


def plan_postings(inputs: PostingInputs, recent: RecentCompletions) -> PostingPlan:
    """Plan the batch (see the module docstring); ``inputs`` are not changed (the plan's ``facts`` are copies).

    ``recent`` remembers parsed completions across batches (a cache: the plan is the same without it)."""
    facts = {k: replace(f, settlements=list(f.settlements)) for k, f in inputs.facts.items()}
    plan = PostingPlan(facts=facts, ended=dict(inputs.ended))
    grouped: dict[str, list[Envelope]] = defaultdict(list)
    for envelope in inputs.work:
        grouped[envelope.subject].append(envelope)
    for order_key in sorted(grouped):
        for envelope in sorted(grouped[order_key], key=lambda e: _ORDER[e.type]):
            try:
                _plan_event(envelope, inputs, plan, recent)
            except (LedgerDomainError, ValidationError) as exc:
                plan.refused.append(Refused(envelope, reason(envelope, exc), describe_error(exc)))
    if inputs.closed:  # late items post in the first open period of their lapas
        plan.entries = place_entries(plan.entries, {k: f.lapas_id for k, f in plan.facts.items()}, inputs.closed)
    return plan


def _completion_of(order: OrderFacts, plan: PostingPlan, recent: RecentCompletions) -> CompletionRequest:
    """The order's effective completion request (with the allocations a person made later), parsed once per
    batch (settlements and refunds of an order share it) unless a recent batch parsed the same payload."""
    request = plan.completions.get(order.order_key)
    if request is None:
        request = plan.completions[order.order_key] = recent.request(order.order_key, order.effective_completion())
    return request


def _plan_event(envelope: Envelope, inputs: PostingInputs, plan: PostingPlan, recent: RecentCompletions) -> None:
    source = str(envelope.event_id)
    order = plan.facts.get(envelope.subject)
    if envelope.type == ORDER_COMPLETED:
        completion = completion_request(envelope.data)  # validated there
        plan.add([completion_entry(completion)], source)
        if order is None:
            plan.facts[envelope.subject] = OrderFacts(
                envelope.subject,
                completion.order.lapas_id,
                envelope.data,
                hold=None if completion.allocations else NO_ALLOCATION,
                is_new=True,
            )
            # What _completion_of would parse from these facts: later settlements and refunds reuse it.
            plan.completions[envelope.subject] = completion
            recent.remember(envelope.subject, envelope.data, completion)
        return
    if envelope.type == UNITS_RESTOCKED:
        _plan_restock(envelope, order, plan, inputs.checked.payload(envelope, UnitsRestocked))
        return
    if envelope.type in ENDING_TYPES:
        if order is None:  # ended without a sale; after a completion a return changes nothing here
            plan.ended.setdefault(envelope.subject, envelope.type)
            plan.closed.append((envelope, ORDER_ENDED.format(how=_how(envelope.type))))
        return
    if order is None:
        ending = plan.ended.get(envelope.subject)
        if ending is not None and envelope.type == REFUND_REPORTED:  # nothing was booked: nothing to reverse
            plan.closed.append((envelope, REFUND_CLOSED.format(how=_how(ending))))
        else:  # a settlement of an ended order (money did arrive) waits for a person, visibly
            plan.parked.append((envelope, "completion"))
        return
    completion = _completion_of(order, plan, recent)
    order.choose_tax(inputs.tax_settings, completion.order.lapas_id, completion.completed_at)
    if envelope.type == SETTLEMENT_REPORTED:
        _plan_settlement(envelope, order, completion, inputs, plan)
        return
    if not order.settled:
        plan.parked.append((envelope, "settlement"))
        return
    _plan_refund(envelope, order, completion, inputs, plan)


def _plan_restock(envelope: Envelope, order: OrderFacts | None, plan: PostingPlan, restock: UnitsRestocked) -> None:
    """Returned units restocked (:mod:`services.ledger.restock`): closed without posting when the order was never
    completed, parked until its distribution posts, else the material taken back once by its posting key."""
    if order is None:
        plan.closed.append((envelope, NEVER_COMPLETED))
    elif waits(order):
        plan.parked.append((envelope, WAITING_FOR))
    elif (entry := plan_restock(order, restock)) is not None:
        plan.add([entry], str(envelope.event_id))


def _how(ending_type: str) -> str:
    """How an order ended, as the reasons say it."""
    return "cancelled" if ending_type == ORDER_CANCELLED else "returned"


def _plan_refund(
    envelope: Envelope, order: OrderFacts, completion: CompletionRequest, inputs: PostingInputs, plan: PostingPlan
) -> None:
    """A refund, line-aware or amount-only (no lines: spread over every batch by quantity × unit price): posted
    once by its key (same request again: redelivery; other: conflict). One netted in a settlement first grosses
    the order's distribution up by the cash it netted (:func:`gross_up_netted`); one whose order's distribution
    waits is parked for the allocation."""
    source = str(envelope.event_id)
    event = inputs.checked.payload(envelope, RefundReported)
    refund = line_refund_of_event(event, completion.order, listings(order.effective_completion()))
    key = refund_key(envelope.subject, refund.refund_id)
    # Posted before, or planned earlier in this batch (the same refund twice in one batch): the first request's
    # hash decides between redelivery and conflict. An amount-only refund posted before refunds had lines was
    # hashed as the old request: that hash is its redelivery too (history is never rewritten).
    stored = plan.planned.get(key) or inputs.known.get(key)
    if stored is not None:
        mine = request_hash(EntryKind.REFUND, refund)
        if stored not in (mine, _legacy_hash(envelope.data, completion.order)):
            plan.conflicts.append(Conflict(key, stored, mine, source))
        return
    # Before a netted refund grosses the distribution up: a refund refused must change nothing.
    check_within_gross(refund, order.refunded_gross, completion.gross)
    if refund.netted_in_settlement:
        plan.add(gross_up_netted(order, completion, refund, inputs.policies), source)
    if order.hold is not None or order.distributed < len(order.settlements):
        plan.parked.append((envelope, "allocation"))
        return
    settled = cumulative(settled_requests(order, completion.order))
    settled.validate()  # the completion was validated where it was parsed
    distribution = distribution_of(completion, settled, order.pinned(inputs.policies), order.tax)
    modes = {p.ref: p.claw_back_premi for p in inputs.policies}
    savings = sorted({leg.credit for _, leg in distribution.legs() if leg.credit.startswith(_INMATE[0])})
    balances = {a: inputs.balances.get(a, 0) + plan.inmate_changes.get(a, 0) for a in savings}
    taken = order.refund_taken
    if order.refunded_gross and not taken:  # refunded before the line-aware planner: start from what that took
        taken = taken_by_amount_only_refunds(distribution, order.refunded_gross)
    entries, taken = build_line_refund(
        distribution, completion.allocations, refund, order.refunded_gross, taken, modes, balances, order.tax
    )
    plan.add(entries, source)
    order.refunded_gross, order.refund_taken, order.changed = order.refunded_gross + refund.amount, taken, True


def _legacy_hash(data: dict[str, Any], ref: OrderRef) -> str | None:
    """The request hash an amount-only refund was posted under before refunds had lines (the old
    :class:`RefundRequest`); ``None`` for a refund that says more than an amount (it never had another hash)."""
    if data.get("lines") or data.get("fees_returned") or data.get("pph22_returned") or data.get("netted_in_settlement"):
        return None
    return request_hash(EntryKind.REFUND, refund_request(data, ref))


def _plan_settlement(
    envelope: Envelope, order: OrderFacts, completion: CompletionRequest, inputs: PostingInputs, plan: PostingPlan
) -> None:
    """A settlement: new (its id unseen) posts its cash side and the cumulative distribution, or holds it; the
    same id again is a redelivery when it says the same, else a conflict. One naming a marketplace settlement
    id already posted posts only the change of its totals to the last ones posted for that id (nothing if
    nothing; signed when some went down), unless its statement is older than theirs: then it is closed without
    posting (a stale re-read), and recorded so that a redelivery of it changes nothing either."""
    source = str(envelope.event_id)
    settlement = settlement_of_event(inputs.checked.payload(envelope, SettlementReported), completion.order)
    stored = order.reported_settlement(settlement.settlement_id)
    if stored is not None:
        theirs = request_hash(EntryKind.SETTLEMENT, settlement_request(stored, completion.order))
        mine = request_hash(EntryKind.SETTLEMENT, settlement)
        if theirs != mine:
            key = settlement_key(order.order_key, settlement.settlement_id)
            plan.conflicts.append(Conflict(key, theirs, mine, source))
        elif order.hold is not None and completion.allocations:
            # A replayed settlement of a held order retries its distribution (e.g. after a policy load).
            plan.add(distribute(order, completion, inputs.policies, take_back=False).entries, source)
        return
    payload: dict[str, Any] | None = envelope.data
    marketplace_id = envelope.data.get("marketplace_settlement_id")
    if isinstance(marketplace_id, str):  # the marketplace's current totals: post their change to the last ones
        last = order.reported.get(order.latest.get(marketplace_id, ""))
        order.reported = {**order.reported, settlement.settlement_id: envelope.data}
        order.changed = True
        if last is not None and is_stale(last, envelope.data):  # an older statement read after a newer one
            plan.closed.append(
                (envelope, STALE_SETTLEMENT.format(id=marketplace_id, last=order.latest[marketplace_id]))
            )
            return
        payload = envelope.data if last is None else settlement_difference(last, envelope.data)
        order.latest = {**order.latest, marketplace_id: settlement.settlement_id}
    if payload is not None:
        parsed = settlement if payload is envelope.data else None  # a difference is a new payload: parsed there
        outcome = plan_settlement(order, payload, completion, inputs.policies, parsed)
        plan.add(outcome.entries, source)
        if outcome.slip is not None:
            plan.slips.append(outcome.slip)


def reason(envelope: Envelope, exc: Exception) -> str:
    """The stored reason of a refusal: value-free (field paths and codes; a domain error's own message, which
    names keys, accounts and amounts only)."""
    if isinstance(exc, LedgerDomainError):
        return error_text(exc)
    return error_text(exc, context=f"invalid {envelope.type.removeprefix('karya.').rsplit('.', 1)[0]}")
