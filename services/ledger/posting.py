"""The ledger use case: post completions, settlements (with their distribution) and refunds for one batch.

Per order, events are taken in accounting order (completion, settlement, refunds). A settlement that arrives
before its completion, or a refund before its settlement, is parked in ``ledger.pending_events`` and posted in
the batch that brings what it waits for. Posting keys make every posting happen once; the same key with a
different request is a recorded conflict, an alert metric and a dead letter — never a second posting.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from prometheus_client import Counter
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncConnection

from infra.errors import describe_error, error_text
from infra.messaging.consumer import InboundEvent, Rejection
from infra.messaging.delivery import Delivery
from infra.messaging.envelope import Envelope
from infra.messaging.outbox import enqueue
from infra.messaging.topics import MARKETPLACE_SETTLEMENTS
from services.contracts.marketplace import REFUND_REPORTED, SETTLEMENT_REPORTED, RefundReported, SettlementReported
from services.contracts.orders import ORDER_COMPLETED
from services.ledger.adapters.facts_repo import (
    OrderFacts,
    arrival_origins,
    load_facts,
    park,
    save_facts,
    take_pending,
)
from services.ledger.adapters.journal_repo import (
    Conflict,
    existing_hashes,
    normal_balances,
    post_entries,
    record_conflicts,
)
from services.ledger.adapters.policy_repo import PolicyCache
from services.ledger.domain import accounts
from services.ledger.domain.distribution import plan_distribution
from services.ledger.domain.errors import LedgerDomainError
from services.ledger.domain.journal import EntryKind, JournalEntry, request_hash
from services.ledger.domain.model import CompletionRequest
from services.ledger.domain.policy import SplitPolicy
from services.ledger.domain.postings import (
    build_completion,
    build_distribution,
    build_refund,
    build_settlement,
    refund_key,
    settlement_key,
)
from services.ledger.outbound import LedgerTopics, entry_posted_messages
from services.ledger.requests import RecentCompletions, completion_request, refund_request, settlement_request

_ORDER = {ORDER_COMPLETED: 0, SETTLEMENT_REPORTED: 1, REFUND_REPORTED: 2}
POSTED_EVENT_TYPES = frozenset(_ORDER)
"""The event types the ledger posts from; other order events (reservations, shipments) have no ledger effect."""
_INMATE = ("liability:inmate_savings:", "asset:inmate_receivable:")


@dataclass
class _PostingPlan:
    """Entries planned for one Kafka batch of events, with the event each came from."""

    entries: list[tuple[JournalEntry, str]] = field(default_factory=list)
    parked: list[tuple[Envelope, str]] = field(default_factory=list)
    rejections: list[tuple[Envelope, str, dict[str, object]]] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    inmate_changes: dict[str, int] = field(default_factory=dict)
    planned: dict[str, str] = field(default_factory=dict)
    looked_up: set[str] = field(default_factory=set)  # posting keys whose stored hash (if any) is in ``known``

    completions: dict[str, CompletionRequest] = field(default_factory=dict)
    recent: RecentCompletions = field(default_factory=RecentCompletions)

    def completion_of(self, order: OrderFacts) -> CompletionRequest:
        """The order's completion request, parsed once per batch (settlements and refunds of an order share it)
        unless a recent batch parsed the same payload."""
        request = self.completions.get(order.order_key)
        if request is None:
            request = self.completions[order.order_key] = self.recent.request(order.order_key, order.completion)
        return request

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


class LedgerProcessor:
    """Batch handler of ``orders.events`` and ``marketplace.settlements`` (see the module docstring)."""

    def __init__(self, conflicts_metric: Counter | None = None, topics: LedgerTopics | None = None) -> None:
        """``topics``: where entries are announced and parked settlements are dead-lettered from (default: the
        base names, no prefix)."""
        self._topics = topics or LedgerTopics()
        self._policies = PolicyCache()
        self._conflicts = conflicts_metric
        self._recent = RecentCompletions()

    async def __call__(self, conn: AsyncConnection, events: Sequence[InboundEvent]) -> list[Rejection]:
        """Post what ``events`` (and events parked for their orders) call for; return the rejected ones."""
        by_id = {e.envelope.event_id: e for e in events}
        relevant, invalid = _checked_at_arrival(events)
        if not relevant:
            return invalid
        keys = {e.subject for e in relevant}
        work = [*await take_pending(conn, keys), *relevant]
        facts = await load_facts(conn, keys)
        policies = await self._policies.get(conn)
        grouped: dict[str, list[Envelope]] = defaultdict(list)
        for envelope in work:
            grouped[envelope.subject].append(envelope)
        batch = _PostingPlan(recent=self._recent)
        # Posting keys this batch may meet, looked up once: settlements, and refunds by their reported id.
        refund_keys = [
            refund_key(e.subject, e.data["refund_id"])
            for e in work
            if e.type == REFUND_REPORTED and isinstance(e.data.get("refund_id"), str)
        ]
        known = await existing_hashes(conn, [*(settlement_key(k) for k in keys), *refund_keys])
        batch.looked_up.update(refund_keys)
        for order_key in sorted(grouped):
            for envelope in sorted(grouped[order_key], key=lambda e: _ORDER[e.type]):
                try:
                    await self._plan(conn, envelope, facts, policies, batch, known)
                except (LedgerDomainError, ValidationError) as exc:
                    batch.rejections.append((envelope, _reason(envelope, exc), describe_error(exc)))
        result = await post_entries(conn, batch.entries)
        await record_conflicts(conn, batch.conflicts)
        by_source: dict[str, Envelope] | None = None
        for conflict in [*batch.conflicts, *result.conflicts]:
            if self._conflicts is not None:
                self._conflicts.inc()
            if by_source is None:
                by_source = {}
                for e in work:
                    by_source.setdefault(str(e.event_id), e)  # the first event with that id, as a scan finds
            source = by_source.get(conflict.source_event) if conflict.source_event is not None else None
            if source is not None:
                batch.rejections.append(
                    (
                        source,
                        f"posting conflict on {conflict.posting_key}: same key, different request",
                        {"rule": "posting_conflict", "posting_key": conflict.posting_key},
                    )
                )
        await save_facts(conn, facts.values())
        await park(conn, batch.parked)
        await enqueue(conn, "ledger", entry_posted_messages(result.posted, self._topics.entries))
        rejected = invalid
        seen: set[str] = set()
        origins = await arrival_origins(conn, [e.event_id for e, _, _ in batch.rejections if e.event_id not in by_id])
        for envelope, reason, logged in batch.rejections:
            if str(envelope.event_id) not in seen:
                seen.add(str(envelope.event_id))
                origin = origins.get(envelope.event_id)
                event = by_id.get(envelope.event_id) or _parked_event(envelope, origin, self._topics.settlements)
                rejected.append(Rejection(event, reason, logged))
        return rejected

    async def _plan(
        self,
        conn: AsyncConnection,
        envelope: Envelope,
        facts: dict[str, OrderFacts],
        policies: list[SplitPolicy],
        batch: _PostingPlan,
        known: dict[str, str],
    ) -> None:
        source = str(envelope.event_id)
        order = facts.get(envelope.subject)
        if envelope.type == ORDER_COMPLETED:
            completion = completion_request(envelope.data)
            batch.add([build_completion(completion)], source)
            if order is None:
                facts[envelope.subject] = OrderFacts(
                    envelope.subject, completion.order.lapas_id, envelope.data, is_new=True
                )
                # What completion_of would parse from these facts: later settlements and refunds reuse it.
                batch.completions[envelope.subject] = completion
                batch.recent.remember(envelope.subject, envelope.data, completion)
            return
        if order is None:
            batch.parked.append((envelope, "completion"))
            return
        completion = batch.completion_of(order)
        ref = completion.order
        if envelope.type == SETTLEMENT_REPORTED:
            settlement = settlement_request(envelope.data, ref)
            entry = build_settlement(settlement, completion.gross)
            if order.settlement is None and known.get(entry.posting_key) is None:
                # Planned before anything is added: a settlement whose distribution is refused posts nothing
                # (it is dead-lettered whole, and can be replayed once a person has fixed the cause).
                plan = plan_distribution(completion, settlement, policies)
                batch.add([entry, *build_distribution(plan, settlement)], source)
                order.settlement, order.changed = envelope.data, True
            else:
                batch.add([entry], source)
            return
        if order.settlement is None:
            batch.parked.append((envelope, "settlement"))
            return
        refund = refund_request(envelope.data, ref)
        key = refund_key(envelope.subject, refund.refund_id)
        # Posted before, or planned earlier in this batch (the same refund twice in one batch): the first
        # request's hash decides between redelivery and conflict.
        stored = batch.planned.get(key) or (
            known.get(key) if key in batch.looked_up else (await existing_hashes(conn, [key])).get(key)
        )
        if stored is not None:
            mine = request_hash(EntryKind.REFUND, refund)
            if stored != mine:
                batch.conflicts.append(Conflict(key, stored, mine, source))
            return
        settlement = settlement_request(order.settlement, ref)
        plan = plan_distribution(completion, settlement, policies)
        savings = sorted({leg.credit for _, leg in plan.legs() if leg.credit.startswith("liability:inmate_savings:")})
        receivables = [accounts.inmate_receivable(code.rsplit(":", 1)[1]) for code in savings]
        balances = await normal_balances(conn, savings + receivables)
        for account in savings + receivables:
            balances[account] = balances.get(account, 0) + batch.inmate_changes.get(account, 0)
        batch.add(build_refund(plan, refund, order.refunded_gross, balances), source)
        order.refunded_gross, order.changed = order.refunded_gross + refund.amount, True


_CONTRACTS: dict[str, type[SettlementReported] | type[RefundReported]] = {
    SETTLEMENT_REPORTED: SettlementReported,
    REFUND_REPORTED: RefundReported,
}


def _checked_at_arrival(events: Sequence[InboundEvent]) -> tuple[list[Envelope], list[Rejection]]:
    """The events the ledger posts from, and the rejections of settlements and refunds that break their contract.

    A settlement or refund may wait for its order (parked); it is checked against its contract now, while its
    record (topic, partition, offset) is at hand for the dead letter, not when its order completes."""
    relevant: list[Envelope] = []
    invalid: list[Rejection] = []
    for event in events:
        envelope = event.envelope
        if envelope.type not in _ORDER:
            continue
        contract = _CONTRACTS.get(envelope.type)
        if contract is not None:
            try:
                contract.model_validate(envelope.data)
            except ValidationError as exc:
                invalid.append(Rejection(event, _reason(envelope, exc), {"rule": "contract", **describe_error(exc)}))
                continue
        relevant.append(envelope)
    return relevant, invalid


def _reason(envelope: Envelope, exc: Exception) -> str:
    """The stored reason of a rejection: value-free (field paths and codes; a domain error's own message, which
    names keys, accounts and amounts only)."""
    if isinstance(exc, LedgerDomainError):
        return error_text(exc)
    return error_text(exc, context=f"invalid {envelope.type.removeprefix('karya.').rsplit('.', 1)[0]}")


def _parked_event(
    envelope: Envelope, origin: tuple[str, int, int] | None, settlements: str = MARKETPLACE_SETTLEMENTS
) -> InboundEvent:
    """A rejected event that an earlier batch parked: its delivery is rebuilt to carry it to the dead-letter topic
    of the topic it came from, with the partition and offset it arrived at (from the inbox). Without an inbox row
    (none is expected) the topic is ``settlements`` (the ledger's, passed in), where settlements and refunds come
    from, and partition and offset are -1."""
    topic, partition, offset = origin or (settlements, -1, -1)
    return InboundEvent(envelope, Delivery(topic, partition, offset, envelope.subject.encode(), envelope.to_bytes()))
