"""The allocation use case: a person names the production batches of an order whose distribution waits.

``karya ledger allocate ORDER --batch BATCH:QTY ...`` runs it (the CLI is a thin wrapper); HTTP can later. The
orders service's ``order_allocated`` (a backorder filled when stock was produced or restocked) runs the same plan
and write from the allocations the event carries (:func:`allocate_announced`, called by the ledger's Kafka
handler). It runs *load → plan → write* in the caller's unit of work:

- **load** — the order's facts (locked, in the lock order of :mod:`services.ledger.adapters.locks`), the named
  batches from the catalogue (the orders service's schema: batch, workshop's lapas, product's list price, work
  group) and the split policies;
- **plan** — :func:`plan_allocation`, pure: validates the picks against the catalogue (rule ``batch_exists``,
  ``same_lapas``, ``quantity_fits``) and the order (``order_completed``, ``allocate_once``), then releases the
  proceeds held in unallocated to revenue and posts the cumulative distribution
  (:func:`services.ledger.settlement_plan.distribute`);
- **write** — the entries, the facts and the ``entry_posted`` announcements; then the events parked for the
  order (refunds waiting for the allocation, restocks waiting for the distribution) are re-run by the posting use
  case in the same transaction: what they call for posts, what still waits stays parked, and what a rule refuses
  (a restock of a batch the order was not allocated, a refund beyond what is left) is returned in
  :attr:`AllocationOutcome.refused` for the caller to dead-letter with its rule — never parked again.

Each posting happens once (its posting key); allocating the same batches again answers "already allocated",
other batches for an order already distributed are refused. An order not yet settled only records the batches:
its settlement then distributes as usual.

A person's allocation is announced to the orders service (``karya.ledger.order_allocated_by_person.v1`` through the
outbox, in the same transaction): the goods left from those batches, so orders stops waiting for stock for the order
and records the units as consumed. An ``order_allocated`` that reaches the ledger for an order a person (or an
earlier announcement) allocated to other batches is closed without posting (:data:`ALLOCATED_BEFORE`), not
dead-lettered: the allocation made first stands.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import text

from infra.db.unit_of_work import UnitOfWork
from infra.errors import describe_error, error_text
from infra.messaging.envelope import Envelope
from infra.messaging.outbox import OutboundMessage
from services.contracts.ledger import ORDER_ALLOCATED_BY_PERSON
from services.contracts.orders import BatchFacts, OrderAllocated
from services.ledger.adapters.closed_repo import close
from services.ledger.adapters.facts_repo import load_facts, save_facts
from services.ledger.adapters.journal_repo import post_entries
from services.ledger.adapters.periods_repo import closed_periods
from services.ledger.adapters.policy_repo import PolicyCache
from services.ledger.domain.errors import LedgerDomainError
from services.ledger.domain.facts import OrderFacts
from services.ledger.domain.journal import JournalEntry
from services.ledger.domain.periods import place_entries
from services.ledger.domain.policy import SplitPolicy
from services.ledger.domain.tax import TaxSetting
from services.ledger.outbound import LedgerTopics, entry_posted_messages
from services.ledger.posting import PostEvents, Refused
from services.ledger.requests import UNKNOWN_LAPAS, completion_request
from services.ledger.settlement_plan import distribute, held_amount

ALLOCATED_BEFORE = (
    "order already allocated to other batches (by a person, or an earlier announcement): the first allocation stands"
)
"""The recorded reason of an ``order_allocated`` closed without posting."""


class AllocationRefused(LedgerDomainError):
    """An allocation a person asked for breaks a rule (named in the message)."""


@dataclass(frozen=True, slots=True)
class Pick:
    """``quantity`` units of the order taken from production batch ``batch_id``."""

    batch_id: str
    quantity: int


Catalogue = Mapping[str, tuple[BatchFacts, int]]
"""What the catalogue says about production batches: by batch id, the batch's facts and its product's list price."""


@dataclass(frozen=True)
class AllocationOutcome:
    """What :func:`allocate` did: the posting keys posted now (empty when only recorded), or already done.
    ``refused``: the parked events the allocation's rerun refused by a rule, each with the origin it first arrived
    at; the caller dead-letters them (the consumer's rejections, or the CLI's dead letters)."""

    posted: list[str]
    already_allocated: bool = False
    waiting_for_settlement: bool = False
    refused: list[Refused] = field(default_factory=list)


def parse_pick(value: str) -> Pick:
    """``BATCH:QTY`` as a :class:`Pick`; raises :class:`AllocationRefused` for anything else."""
    batch, _, qty = value.rpartition(":")
    if not batch or not qty.isdigit() or int(qty) <= 0:
        raise AllocationRefused(f"--batch {value!r}: expected BATCH:QTY with a whole quantity > 0")
    return Pick(batch, int(qty))


def plan_allocation(
    order_key: str,
    order: OrderFacts | None,
    picks: Sequence[Pick],
    catalogue: Catalogue,
    policies: Sequence[SplitPolicy],
    taxes: Sequence[TaxSetting] = (),
) -> tuple[list[JournalEntry], OrderFacts | None]:
    """The entries a person's allocation posts and the order's facts after it (``None``: nothing changes — the
    same batches were allocated before). Pure; raises :class:`AllocationRefused` naming the rule broken, with the
    reason of a distribution that still cannot be made."""
    if order is None:
        raise AllocationRefused(f"allocation refused (order_completed): the ledger has no completion of {order_key}")
    if not picks:
        raise AllocationRefused("allocation refused: name at least one --batch BATCH:QTY")
    if len({p.batch_id for p in picks}) != len(picks):
        raise AllocationRefused("allocation refused: a batch is named twice; give each batch once with its quantity")
    return plan_allocated(order_key, order, [_allocation(order, p, catalogue) for p in picks], policies, taxes)


def plan_allocated(
    order_key: str,
    order: OrderFacts,
    payload: list[dict[str, Any]],
    policies: Sequence[SplitPolicy],
    taxes: Sequence[TaxSetting] = (),
) -> tuple[list[JournalEntry], OrderFacts | None]:
    """The entries of allocating ``payload`` (allocations shaped as ``order_completed``'s, already checked against
    the catalogue) to ``order`` and its facts after (``None``: the same batches were allocated before). Pure."""
    for batch in payload:
        _same_lapas(order, str(batch["batch_id"]), str(batch["lapas_id"]))
    current = order.allocations if order.allocations is not None else order.completion.get("allocations")
    if order.hold is None or (order.distributed and payload != current):
        # Distributed (wholly, or the first settlements): the deltas to come are only right for the same batches.
        if order.hold is None and payload == current:
            return [], None
        raise AllocationRefused(
            f"allocation refused (allocate_once): the distribution of {order_key} was posted from other batches "
            "(revert it first)"
        )
    facts = replace(order, settlements=list(order.settlements), allocations=payload)
    completion = completion_request(facts.effective_completion())
    facts.choose_tax(taxes, completion.order.lapas_id, completion.completed_at)
    outcome = distribute(facts, completion, policies)
    if outcome.hold is not None:
        raise AllocationRefused(f"allocation refused: the distribution still cannot be made: {outcome.hold}")
    facts.changed = True
    return outcome.entries, facts


def _same_lapas(order: OrderFacts, batch_id: str, lapas_id: str) -> None:
    if order.lapas_id not in (UNKNOWN_LAPAS, lapas_id):
        raise AllocationRefused(
            f"allocation refused (same_lapas): batch {batch_id} was made in lapas {lapas_id}, "
            f"order {order.order_key} was sold for lapas {order.lapas_id}"
        )


def _allocation(order: OrderFacts, pick: Pick, catalogue: Catalogue) -> dict[str, Any]:
    listed = catalogue.get(pick.batch_id)
    if listed is None:
        raise AllocationRefused(f"allocation refused (batch_exists): no production batch {pick.batch_id}")
    batch, list_price = listed
    _same_lapas(order, batch.batch_id, batch.lapas_id)
    if pick.quantity > batch.produced_qty:
        raise AllocationRefused(
            f"allocation refused (quantity_fits): {pick.quantity} units of batch {batch.batch_id}, "
            f"which produced {batch.produced_qty}"
        )
    return batch.allocation(pick.quantity, list_price)


async def load_batches(uow: UnitOfWork, batch_ids: Sequence[str], schema: str) -> dict[str, tuple[BatchFacts, int]]:
    """The catalogue's batches among ``batch_ids`` (read from the orders service's ``schema``)."""
    catalogue = UnitOfWork(uow.conn, schema)
    rows = await uow.conn.execute(
        text(
            "SELECT b.batch_id, b.sku, b.workshop_id, w.lapas_id, b.produced_qty, b.unit_material_cost_idr, "
            "b.supplier_id, p.list_price_idr, coalesce(array_agg(g.inmate_id ORDER BY g.inmate_id) "
            "FILTER (WHERE g.inmate_id IS NOT NULL), '{}') AS inmates, coalesce(array_agg(g.work_share ORDER BY "
            "g.inmate_id) FILTER (WHERE g.inmate_id IS NOT NULL), '{}') AS shares "
            f"FROM {catalogue.table('production_batches')} b "
            f"JOIN {catalogue.table('workshops')} w USING (workshop_id) "
            f"JOIN {catalogue.table('products')} p ON p.sku = b.sku "
            f"LEFT JOIN {catalogue.table('batch_work_group')} g USING (batch_id) "
            "WHERE b.batch_id = ANY(:ids) GROUP BY b.batch_id, w.lapas_id, p.list_price_idr"
        ),
        {"ids": sorted(set(batch_ids))},
    )
    return {
        r.batch_id: (
            BatchFacts(
                r.batch_id,
                r.sku,
                r.workshop_id,
                r.lapas_id,
                int(r.produced_qty),
                int(r.unit_material_cost_idr),
                r.supplier_id,
                tuple(zip(r.inmates, (int(s) for s in r.shares), strict=True)),
            ),
            int(r.list_price_idr),
        )
        for r in rows
    }


async def allocate(
    uow: UnitOfWork,
    topics: LedgerTopics,
    order_key: str,
    picks: Sequence[Pick],
    *,
    catalogue_schema: str,
    allocated_by: str | None = None,
    approved_by: str | None = None,
) -> AllocationOutcome:
    """Allocate ``picks`` to ``order_key`` in ``uow``'s transaction (the caller commits; ``entry_posted`` goes
    to ``topics.entries``), validated against the catalogue in ``catalogue_schema`` (the orders service's, from
    the caller's root; the ledger only reads it). A new allocation is announced to the orders service on
    ``topics.ledger_order_events`` (``allocated_by``/``approved_by``: who, when known). Raises
    :class:`AllocationRefused` naming the rule an allocation breaks."""
    # load
    facts = (await load_facts(uow, [order_key])).get(order_key)
    catalogue = await load_batches(uow, [p.batch_id for p in picks], catalogue_schema)
    policies, taxes = await PolicyCache().load(uow)
    # plan
    entries, after = plan_allocation(order_key, facts, picks, catalogue, policies, taxes)
    # write
    outcome = await _write(uow, PostEvents(topics), topics, order_key, entries, after, f"cli:allocate:{order_key}")
    if after is not None:  # a new allocation: the goods left from these batches
        data = {
            "order_key": order_key,
            "allocations": [{"batch_id": p.batch_id, "quantity": p.quantity} for p in picks],
            "allocated_by": allocated_by,
            "approved_by": approved_by,
            "allocated_at": datetime.now(UTC),
        }
        message = OutboundMessage.event(
            topics.ledger_order_events,
            type=ORDER_ALLOCATED_BY_PERSON,
            source="karya/ledger",
            subject=order_key,
            data=data,
            causation=None,
        )
        await uow.publish([message])
    return outcome


async def allocate_announced(
    uow: UnitOfWork, post: PostEvents, topics: LedgerTopics, envelopes: Sequence[Envelope]
) -> list[Refused]:
    """Allocate what each ``order_allocated`` of ``envelopes`` announces (the orders service filled a backorder), in
    ``uow``; returns the refusals (bad content, or a rule the allocation breaks — a person decides then — and the
    events parked for the order that the allocation's rerun refused by a rule, to dead-letter from their origin).

    An order the ledger has no completion of is skipped: its completion, which follows on the same partition,
    carries the allocations. The same allocation again posts nothing (already allocated)."""
    refused: list[Refused] = []
    policies: Sequence[SplitPolicy] | None = None
    taxes: Sequence[TaxSetting] | None = None
    for envelope in envelopes:
        try:
            event = OrderAllocated.model_validate(envelope.data)
        except ValidationError as exc:
            refused.append(Refused(envelope, error_text(exc, context="invalid order_allocated"), describe_error(exc)))
            continue
        facts = (await load_facts(uow, [event.order_key])).get(event.order_key)
        if facts is None:
            continue
        payload = [dict(a) for a in envelope.data["allocations"]]
        if facts.allocations is not None and payload != facts.allocations:
            await close(uow, [(envelope, ALLOCATED_BEFORE)])
            continue
        if policies is None or taxes is None:
            policies, taxes = await PolicyCache().load(uow)
        try:
            entries, after = plan_allocated(event.order_key, facts, payload, policies, taxes)
            async with uow.conn.begin_nested():  # a conflict found while posting undoes this allocation only
                outcome = await _write(uow, post, topics, event.order_key, entries, after, str(envelope.event_id))
            refused += outcome.refused
        except AllocationRefused as exc:
            refused.append(Refused(envelope, str(exc), {"rule": _rule(str(exc)), "order_key": event.order_key}))
    return refused


def _rule(reason: str) -> str:
    """The rule an :class:`AllocationRefused` names (``allocation refused (rule): ...``), or ``distribution``."""
    head = reason.partition(":")[0]
    return head.partition("(")[2].rstrip(")") or "distribution"


async def _write(
    uow: UnitOfWork,
    post: PostEvents,
    topics: LedgerTopics,
    order_key: str,
    entries: Sequence[JournalEntry],
    after: OrderFacts | None,
    source: str,
) -> AllocationOutcome:
    """Post ``entries``, save ``after`` and re-run what waited for the allocation (``after`` ``None``: nothing);
    what the rerun refuses is returned to be dead-lettered, what still waits the posting use case parks again."""
    if after is None:
        return AllocationOutcome([], already_allocated=True)
    closed = await closed_periods(uow, [after.lapas_id])  # a late distribution posts in the first open period
    result = await post_entries(uow, place_entries([(e, source) for e in entries], {order_key: after.lapas_id}, closed))
    if result.conflicts:
        raise AllocationRefused(f"allocation refused (posting_conflict): {result.conflicts[0].posting_key}")
    await save_facts(uow, [after])
    await uow.publish(entry_posted_messages(result.posted, topics))
    # What waited for this allocation posts now; what still waits is parked again by the posting use case under
    # what it waits for; what a rule refuses is a dead letter with its rule, like any refused event (issue 15).
    rerun = await post(uow, [], also=[order_key])
    return AllocationOutcome(
        [c.entry.posting_key for c in result.posted],
        waiting_for_settlement=not after.settled,
        refused=rerun.refusals,
    )


def held_row(order: OrderFacts, since: datetime) -> dict[str, Any]:
    """One line of ``karya ledger unallocated``: the order, its lapas, the gross held and the reason."""
    return {
        "order_key": order.order_key,
        "lapas_id": order.lapas_id,
        "gross": int(order.completion["gross_amount"]),
        "settlements": len(order.settlements),
        "held": held_amount(order),
        "reason": order.hold,
        "since": since.isoformat(),
    }
