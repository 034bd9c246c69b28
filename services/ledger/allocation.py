"""The allocation use case: a person names the production batches of an order whose distribution waits.

``karya ledger allocate ORDER --batch BATCH:QTY ...`` runs it (the CLI is a thin wrapper); HTTP can later.
It runs *load → plan → write* in the caller's unit of work:

- **load** — the order's facts (locked, in the lock order of :mod:`services.ledger.adapters.locks`), the named
  batches from the catalogue (the orders service's schema: batch, workshop's lapas, product's list price, work
  group) and the split policies;
- **plan** — :func:`plan_allocation`, pure: validates the picks against the catalogue (rule ``batch_exists``,
  ``same_lapas``, ``quantity_fits``) and the order (``order_completed``, ``allocate_once``), then releases the
  proceeds held in unallocated to revenue and posts the cumulative distribution
  (:func:`services.ledger.settlement_plan.distribute`);
- **write** — the entries, the facts and the ``entry_posted`` announcements; then the events parked for the
  order (refunds waiting for the allocation) are posted by the posting use case in the same transaction.

Each posting happens once (its posting key); allocating the same batches again answers "already allocated",
other batches for an order already distributed are refused. An order not yet settled only records the batches:
its settlement then distributes as usual.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import text

from infra.db.unit_of_work import UnitOfWork
from services.ledger.adapters.facts_repo import load_facts, park, save_facts
from services.ledger.adapters.journal_repo import post_entries
from services.ledger.adapters.policy_repo import PolicyCache
from services.ledger.domain.errors import LedgerDomainError
from services.ledger.domain.facts import OrderFacts
from services.ledger.domain.journal import JournalEntry
from services.ledger.domain.policy import SplitPolicy
from services.ledger.outbound import LedgerTopics, entry_posted_messages
from services.ledger.posting import PostEvents
from services.ledger.requests import UNKNOWN_LAPAS, completion_request
from services.ledger.settlement_plan import distribute, held_amount

CATALOGUE_SCHEMA = "orders"
"""Where the catalogue lives (the orders service's schema; the ledger only reads it)."""


class AllocationRefused(LedgerDomainError):
    """An allocation a person asked for breaks a rule (named in the message)."""


@dataclass(frozen=True, slots=True)
class Pick:
    """``quantity`` units of the order taken from production batch ``batch_id``."""

    batch_id: str
    quantity: int


@dataclass(frozen=True, slots=True)
class CatalogueBatch:
    """What the catalogue says about one production batch."""

    batch_id: str
    sku: str
    workshop_id: str
    lapas_id: str
    produced_qty: int
    unit_material_cost: int
    supplier_id: str
    unit_price: int
    work_group: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class AllocationOutcome:
    """What :func:`allocate` did: the posting keys posted now (empty when only recorded), or already done."""

    posted: list[str]
    already_allocated: bool = False
    waiting_for_settlement: bool = False
    still_parked: list[str] = field(default_factory=list)


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
    catalogue: Mapping[str, CatalogueBatch],
    policies: Sequence[SplitPolicy],
) -> tuple[list[JournalEntry], OrderFacts | None]:
    """The entries an allocation posts and the order's facts after it (``None``: nothing changes — the same
    batches were allocated before). Pure; raises :class:`AllocationRefused` naming the rule broken, with the
    reason of a distribution that still cannot be made."""
    if order is None:
        raise AllocationRefused(f"allocation refused (order_completed): the ledger has no completion of {order_key}")
    if not picks:
        raise AllocationRefused("allocation refused: name at least one --batch BATCH:QTY")
    if len({p.batch_id for p in picks}) != len(picks):
        raise AllocationRefused("allocation refused: a batch is named twice; give each batch once with its quantity")
    payload = [_allocation(order, p, catalogue) for p in picks]
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
    outcome = distribute(facts, completion, policies)
    if outcome.hold is not None:
        raise AllocationRefused(f"allocation refused: the distribution still cannot be made: {outcome.hold}")
    facts.changed = True
    return outcome.entries, facts


def _allocation(order: OrderFacts, pick: Pick, catalogue: Mapping[str, CatalogueBatch]) -> dict[str, Any]:
    batch = catalogue.get(pick.batch_id)
    if batch is None:
        raise AllocationRefused(f"allocation refused (batch_exists): no production batch {pick.batch_id}")
    if order.lapas_id not in (UNKNOWN_LAPAS, batch.lapas_id):
        raise AllocationRefused(
            f"allocation refused (same_lapas): batch {batch.batch_id} was made in lapas {batch.lapas_id}, "
            f"order {order.order_key} was sold for lapas {order.lapas_id}"
        )
    if pick.quantity > batch.produced_qty:
        raise AllocationRefused(
            f"allocation refused (quantity_fits): {pick.quantity} units of batch {batch.batch_id}, "
            f"which produced {batch.produced_qty}"
        )
    return {
        "batch_id": batch.batch_id,
        "sku": batch.sku,
        "workshop_id": batch.workshop_id,
        "lapas_id": batch.lapas_id,
        "quantity": pick.quantity,
        "unit_price": batch.unit_price,
        "unit_material_cost": batch.unit_material_cost,
        "supplier_id": batch.supplier_id,
        "work_group": [{"inmate_id": i, "work_share": s} for i, s in batch.work_group],
    }


async def load_batches(
    uow: UnitOfWork, batch_ids: Sequence[str], schema: str = CATALOGUE_SCHEMA
) -> dict[str, CatalogueBatch]:
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
        r.batch_id: CatalogueBatch(
            r.batch_id,
            r.sku,
            r.workshop_id,
            r.lapas_id,
            int(r.produced_qty),
            int(r.unit_material_cost_idr),
            r.supplier_id,
            int(r.list_price_idr),
            tuple(zip(r.inmates, (int(s) for s in r.shares), strict=True)),
        )
        for r in rows
    }


async def allocate(
    uow: UnitOfWork,
    topics: LedgerTopics,
    order_key: str,
    picks: Sequence[Pick],
    *,
    catalogue_schema: str = CATALOGUE_SCHEMA,
) -> AllocationOutcome:
    """Allocate ``picks`` to ``order_key`` in ``uow``'s transaction (the caller commits; ``entry_posted`` goes
    to ``topics.entries``). Raises :class:`AllocationRefused` naming the rule an allocation breaks."""
    # load
    facts = (await load_facts(uow, [order_key])).get(order_key)
    catalogue = await load_batches(uow, [p.batch_id for p in picks], catalogue_schema)
    policies = await PolicyCache().get(uow)
    # plan
    entries, after = plan_allocation(order_key, facts, picks, catalogue, policies)
    if after is None:
        return AllocationOutcome([], already_allocated=True)
    # write
    result = await post_entries(uow, [(e, f"cli:allocate:{order_key}") for e in entries])
    if result.conflicts:
        raise AllocationRefused(f"allocation refused (posting_conflict): {result.conflicts[0].posting_key}")
    await save_facts(uow, [after])
    await uow.publish(entry_posted_messages(result.posted, topics.entries))
    # What waited for this allocation (refunds) posts now; one still refused waits on, with the reason reported.
    rerun = await PostEvents(topics)(uow, [], also=[order_key])
    await park(uow, [(r.envelope, "allocation") for r in rerun.refusals])
    return AllocationOutcome(
        [c.entry.posting_key for c in result.posted],
        waiting_for_settlement=not after.settled,
        still_parked=[r.reason for r in rerun.refusals],
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
