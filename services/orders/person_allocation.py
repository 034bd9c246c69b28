"""A person's allocation, announced by the ledger: the goods of an order left from the batches a person named.

``karya ledger allocate`` (a person allocating a completed order's proceeds to production batches) announces
``karya.ledger.order_allocated_by_person.v1``. The goods left long ago; so the orders service stops waiting for
stock for the order (a backorder would otherwise be filled by the next stock arrival, counting the units twice) and
records the units as consumed from the named batches — never more than a batch has free, so never negative stock.
What it cannot record is a stock reconciliation item (``orders.stock_reconciliation``), visible for a person, never
a crash or a dead letter: a batch with fewer free units (what it had is recorded), a batch or an order the service
does not know, an order that already holds other batches from stock (nothing changes).

*load → plan → write* in the consumer's transaction: the orders (locked first), the named batches' facts and the
stock rows of their SKUs (locked, :mod:`services.orders.adapters.locks` order), :func:`plan_person_allocation`
(pure), then orders, reservations, movements and items set-based, and the availability through the outbox.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from uuid import UUID

from pydantic import ValidationError
from sqlalchemy import text

from infra.db.rowsets import Writes
from infra.db.unit_of_work import UnitOfWork
from infra.errors import describe_error, error_text
from infra.messaging.envelope import Envelope
from services.contracts.ledger import OrderAllocatedByPerson
from services.orders.adapters.order_repo import BatchInfoCache, add_orders, add_reservations, load_orders
from services.orders.adapters.stock_repo import add_movements, load_stock
from services.orders.domain.lifecycle import StockStage
from services.orders.domain.records import BatchFacts, Held, OrderRow, Reservation
from services.orders.fulfilment_plan import Refusal
from services.orders.outbound import OrdersTopics, Outbound
from services.orders.stock_plan import StockPlan

__all__ = ["ReconciliationItem", "apply_person_allocations", "plan_person_allocation"]

WHOLE_ORDER = "*"
"""The batch of a reconciliation item about the order as a whole."""


@dataclass(frozen=True, slots=True)
class ReconciliationItem:
    """Units a person's allocation named that the stock could not record, and why."""

    order_key: str
    batch_id: str
    wanted: int
    recorded: int
    reason: str


def plan_person_allocation(
    order: OrderRow | None, event: OrderAllocatedByPerson, stock: StockPlan, facts: Mapping[str, BatchFacts],
    event_id: UUID,
) -> list[ReconciliationItem]:  # fmt: skip
    """Record ``event``'s units as consumed by ``order`` in ``stock`` (at most what each batch has free) and stop
    it waiting; returns what could not be recorded. Pure (changes ``order`` and ``stock`` in memory)."""
    key, total = event.order_key, sum(a.quantity for a in event.allocations)
    if order is None:
        return [ReconciliationItem(key, WHOLE_ORDER, total, 0, "order unknown to the orders service")]
    if order.reservation is not None:
        holds = {a.batch_id: a.quantity for a in order.reservation.allocations}
        if holds == {a.batch_id: a.quantity for a in event.allocations}:
            return []
        named = ", ".join(f"{b}:{q}" for b, q in sorted(holds.items()))
        reason = f"order already holds {named} from stock ({order.reservation.state}); the person named other batches"
        return [ReconciliationItem(key, WHOLE_ORDER, total, 0, reason)]
    items: list[ReconciliationItem] = []
    taken: list[Held] = []
    for a in event.allocations:
        batch = facts.get(a.batch_id)
        if batch is None:
            items.append(ReconciliationItem(key, a.batch_id, a.quantity, 0, "batch unknown to the orders service"))
            continue
        free = stock.free(a.batch_id)
        recorded = min(a.quantity, free)
        if recorded:
            taken.append(Held(a.batch_id, batch.sku, batch.workshop_id, recorded))
        if recorded < a.quantity:
            reason = f"batch had {free} free unit(s) for {a.quantity} allocated: {a.quantity - recorded} short"
            items.append(ReconciliationItem(key, a.batch_id, a.quantity, recorded, reason))
    order.reservation_failed = None  # no longer waits: a person said where its goods came from
    if taken:
        order.reservation = Reservation(stock.new_reservation_id(), "hard", None, taken, is_new=True)
        stock.move(order, StockStage.NONE, StockStage.CONSUMED, event_id, fresh=True)
        if order.snapshot is not None:
            order.snapshot = replace(order.snapshot, stock_stage=StockStage.CONSUMED)
    return items


async def apply_person_allocations(
    uow: UnitOfWork, envelopes: Sequence[tuple[int, Envelope]], topics: OrdersTopics, batches: BatchInfoCache
) -> list[Refusal]:
    """Apply each ``order_allocated_by_person`` of ``envelopes`` (index in the batch, envelope) in ``uow`` (see the
    module docstring); returns the refusals of content that breaks the contract."""
    events: list[tuple[Envelope, OrderAllocatedByPerson]] = []
    refusals: list[Refusal] = []
    for index, envelope in envelopes:
        try:
            events.append((envelope, OrderAllocatedByPerson.model_validate(envelope.data)))
        except ValidationError as exc:
            reason = error_text(exc, context=f"invalid {envelope.type}")
            refusals.append(Refusal(index, reason, describe_error(exc)))
    if not events:
        return refusals
    # load: orders first, then the batches' stock rows (the lock order)
    orders = await load_orders(uow, {e.order_key for _, e in events})
    facts = await batches.get(uow, {a.batch_id for _, e in events for a in e.allocations})
    inputs = await load_stock(
        uow, {f.sku for f in facts.values()}, due_at=None, new_reservations=len(events), batches=batches
    )
    stock = StockPlan(inputs)
    # plan
    items: list[tuple[UUID, ReconciliationItem]] = []
    changed: dict[str, OrderRow] = {}
    for envelope, event in events:
        order = orders.get(event.order_key)
        before = order.reservation if order is not None else None
        found = plan_person_allocation(order, event, stock, facts, envelope.event_id)
        items += [(envelope.event_id, item) for item in found]
        if order is not None and (order.reservation is not before or order.reservation_failed is None):
            changed[order.order_key] = order
    out = Outbound(topics)
    out.availability(stock.availability())
    # write
    writes = Writes()
    add_orders(writes, uow, list(changed.values()))
    new = [(o.order_key, o.reservation) for o in changed.values() if o.reservation is not None and o.reservation.is_new]
    add_reservations(writes, uow, new)
    add_movements(writes, uow, stock.movements)
    await writes.execute(uow.conn)
    await _add_items(uow, items)
    await uow.publish(out.messages)
    return refusals


async def _add_items(uow: UnitOfWork, items: Sequence[tuple[UUID, ReconciliationItem]]) -> None:
    """Record ``items`` in one statement (a redelivered announcement adds nothing)."""
    if not items:
        return
    await uow.conn.execute(
        text(
            f"INSERT INTO {uow.table('stock_reconciliation')} (source_event, order_key, batch_id, wanted, recorded, "
            "reason) SELECT * FROM unnest(CAST(:e AS uuid[]), CAST(:k AS text[]), CAST(:b AS text[]), "
            "CAST(:w AS int[]), CAST(:r AS int[]), CAST(:why AS text[])) ON CONFLICT DO NOTHING"
        ),
        {
            "e": [e for e, _ in items],
            "k": [i.order_key for _, i in items],
            "b": [i.batch_id for _, i in items],
            "w": [i.wanted for _, i in items],
            "r": [i.recorded for _, i in items],
            "why": [i.reason for _, i in items],
        },
    )
