"""The posting use case: post completions, settlements (with their distribution) and refunds for one batch.

It runs *load → plan → write* in the caller's unit of work and never sees Kafka:

- **load** — in one round trip (:mod:`services.ledger.adapters.batch_reads`), the orders' facts (locked first,
  :mod:`services.ledger.adapters.locks`), the events parked for them (with where they first arrived), which of
  them ended without completion, the closed periods of their lapas and the stamp of the split policies and tax
  settings; then, for refunds, the stored request hashes of their posting keys and the inmate balances they may
  take back from;
- **plan** — :func:`services.ledger.posting_plan.plan_postings`, pure;
- **write** — two round trips: one opens the entries' accounts, locks their chain segments' heads and draws their
  sequence numbers (:func:`services.ledger.adapters.journal_repo.stage_entries`); then ONE statement writes the
  facts, the entries and their lines, the segments' new heads, the conflicts, the PPh 22 withholding slips, the
  parked events, the events closed without posting and the ``entry_posted`` announcements (the outbox), each a
  set-based part. The journal's statement triggers run at its end and see every part's rows: the database finds a
  new order's lapas in the facts written beside its entry to refuse an entry in a closed period.

Posting keys make every posting happen once; the same key with a different request is a recorded conflict, an
alert and a refusal — never a second posting.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from infra.db.rowsets import Writes
from infra.db.unit_of_work import UnitOfWork
from infra.messaging.envelope import Envelope
from services.ledger.adapters.batch_reads import read_orders, read_posted
from services.ledger.adapters.closed_repo import add_closed
from services.ledger.adapters.facts_repo import add_facts, add_parked
from services.ledger.adapters.journal_repo import add_conflicts, stage_entries
from services.ledger.adapters.periods_repo import closed_periods
from services.ledger.adapters.policy_repo import PolicyCache
from services.ledger.adapters.withholding_repo import add_slips
from services.ledger.domain.journal import Conflict
from services.ledger.outbound import LedgerTopics, entry_posted_messages
from services.ledger.posting_plan import (
    POSTED_EVENT_TYPES,
    PostingInputs,
    Refused,
    batch_lapas,
    check_arrivals,
    lookup_keys,
    plan_postings,
    refund_accounts,
)
from services.ledger.requests import Checked, RecentCompletions

__all__ = ["POSTED_EVENT_TYPES", "PostEvents", "PostingOutcome", "Refused"]


@dataclass
class PostingOutcome:
    """What one batch came to: the refusals (each event once), how many posting conflicts it met, and how many of
    the parked events it took it ``released`` (posted, closed or refused: not parked again)."""

    refusals: list[Refused] = field(default_factory=list)
    conflicts: int = 0
    released: int = 0


class PostEvents:
    """The posting use case (see the module docstring); one per process: it caches the split policies, the tax
    settings and the recently parsed completions between batches."""

    def __init__(self, topics: LedgerTopics) -> None:
        """``topics.entries``: where each posted entry is announced."""
        self._topics = topics
        self._policies = PolicyCache()
        self._recent = RecentCompletions()

    async def __call__(
        self, uow: UnitOfWork, envelopes: Sequence[Envelope], also: Sequence[str] = ()
    ) -> PostingOutcome:
        """Post what ``envelopes`` (and the events parked for their orders, and for the orders ``also`` names —
        e.g. one a person just allocated) call for, in ``uow``."""
        checked = Checked()  # the payloads parsed on arrival, for the plan
        relevant, refused = check_arrivals(envelopes, checked)
        outcome = PostingOutcome(refused)
        if not relevant and not also:
            return outcome
        # load
        keys = {e.subject for e in relevant} | set(also)
        orders = await read_orders(uow, keys, batch_lapas(relevant, {}))  # facts locked first
        facts, origins, ended, closed = orders.facts, orders.origins, orders.ended, orders.closed
        work = [*orders.parked, *relevant]
        if missing := batch_lapas(work, facts) - orders.closed_for:  # a parked completion's lapas (none so far)
            closed |= await closed_periods(uow, missing)
        policies, taxes = await self._policies.load(uow, orders.policy_stamp)
        known, balances = await read_posted(uow, lookup_keys(work), refund_accounts(work, facts, self._recent))
        # plan
        inputs = PostingInputs(work, facts, policies, known, balances, ended, closed, taxes, checked)
        plan = plan_postings(inputs, self._recent)
        # write: the journal's locks in one round trip, then every row in one statement
        writes = Writes()
        add_facts(writes, uow, plan.facts.values())
        result = await stage_entries(uow, writes, plan.entries)
        add_conflicts(writes, uow, plan.conflicts)
        add_slips(writes, uow, plan.slips)
        add_parked(writes, uow, plan.parked, orders.parked_since)
        add_closed(writes, uow, plan.closed)
        uow.publish_with(writes, entry_posted_messages(result.posted, self._topics))
        await writes.execute(uow.conn)
        conflicts = [*plan.conflicts, *result.conflicts]
        outcome.conflicts = len(conflicts)
        outcome.released = len(orders.parked) - sum(1 for e, _ in plan.parked if e.event_id in orders.parked_since)
        seen: set[str] = set()
        for r in [*plan.refused, *_conflict_refusals(conflicts, work)]:
            if str(r.envelope.event_id) not in seen:
                seen.add(str(r.envelope.event_id))
                outcome.refusals.append(replace(r, origin=origins.get(r.envelope.event_id)))
        return outcome


def _conflict_refusals(conflicts: Sequence[Conflict], work: Sequence[Envelope]) -> list[Refused]:
    """A refusal of the event behind each conflict (the first event of ``work`` with that id, as a scan finds)."""
    if not conflicts:
        return []
    by_source: dict[str, Envelope] = {}
    for e in work:
        by_source.setdefault(str(e.event_id), e)
    refused = []
    for conflict in conflicts:
        source = by_source.get(conflict.source_event) if conflict.source_event is not None else None
        if source is not None:
            refused.append(
                Refused(
                    source,
                    f"posting conflict on {conflict.posting_key}: same key, different request",
                    {"rule": "posting_conflict", "posting_key": conflict.posting_key},
                )
            )
    return refused
