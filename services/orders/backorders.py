"""Backorders: units produced or restocked later are reserved for the orders that waited for them.

An order whose reservation failed for lack of stock, and that is paid and still going (``BACKORDER_STATES``),
waits. When stock arrives — a catalogue load adds a production batch, an inspection restocks returned units — the
same transaction fills the waiting orders of the SKUs concerned (load → plan → write):

1. **load** — the waiting orders, locked first (:func:`services.orders.adapters.order_repo.load_waiting`, rank 1 of
   :mod:`services.orders.adapters.locks`), then every ``batch_stock`` row of their SKUs (rank 5), then — ``SKIP
   LOCKED``, so never waiting — the orders that started waiting meanwhile: an order whose reservation failed in a
   transaction that held those stock rows (it could not see the new units yet) is filled too, not left waiting
   beside free stock (:func:`lock_stock_and_latecomers`);
2. **plan** — :func:`fill_waiting`, pure: one allocation over the locked stock, oldest order first, all-or-nothing
   per order (the allocator's rules, so never more than is available); each filled order gets a reservation at the
   stage its state calls for (hard while unshipped, consumed once shipped) and an ``order_allocated`` event with
   its allocations, which the ledger distributes a completed order's held proceeds on;
3. **write** — orders, reservations and movements set-based, the events through the outbox.

An order that still cannot be covered stays waiting and unchanged. A second run finds nothing to do: a filled
order holds stock and no longer waits.

Stock given back — a cancellation or a status change releasing a hold, an unpaid hold expiring inline or by the
sweeper — fills waiting orders the same way, in the transaction that frees it (:func:`fill_freed`): that transaction
holds the stock rows already, so the orders waiting for the freed SKUs are taken ``SKIP LOCKED`` (never waiting, so
the lock order holds; one locked elsewhere is being changed by a transaction that waits for these stock rows and sees
the freed units when it gets them).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from infra.db.rowsets import Writes
from infra.db.unit_of_work import UnitOfWork
from infra.messaging.outbox import OutboundMessage
from services.orders.adapters.catalogue_repo import LoadReport, load_catalogue
from services.orders.adapters.order_repo import (
    BatchInfoCache,
    add_orders,
    add_reservations,
    lapas_of_workshops,
    load_waiting,
    next_reservation_ids,
)
from services.orders.adapters.stock_repo import add_movements, load_stock
from services.orders.catalogue import Catalogue
from services.orders.domain.lifecycle import STAGE_EVIDENCE, StockStage
from services.orders.domain.records import Movement, OrderRow, Reservation
from services.orders.outbound import OrdersTopics, Outbound
from services.orders.stock_plan import StockInputs, StockPlan

__all__ = [
    "Filled",
    "add_filled",
    "fill_backorders",
    "fill_freed",
    "fill_waiting",
    "lock_stock_and_latecomers",
    "receive_catalogue",
    "waiting_skus",
]


@dataclass(frozen=True, slots=True)
class Filled:
    """What filling backorders changes: the orders filled (with their new reservations), the stock movements and
    the events to publish."""

    orders: list[OrderRow]
    movements: list[Movement]
    messages: list[OutboundMessage]

    @property
    def order_keys(self) -> list[str]:
        """The filled orders' keys, oldest first."""
        return [o.order_key for o in self.orders]


def waiting_skus(waiting: Iterable[OrderRow]) -> set[str]:
    """Every SKU the waiting orders need (an order is covered whole or not at all)."""
    return {ln.sku for o in waiting for ln in o.lines}


def fill_waiting(stock: StockPlan, waiting: Sequence[OrderRow], out: Outbound) -> list[OrderRow]:
    """Reserve for ``waiting`` (oldest first) what ``stock`` has free; returns the orders filled. Pure.

    Each filled order holds a new reservation at the stage of its state (its movements are in ``stock``), no longer
    records a failure, and has an ``order_allocated`` event in ``out``. The others are left as they were.
    """
    outcomes = stock.allocate(waiting)
    filled: list[OrderRow] = []
    for order in waiting:
        held = outcomes[order.order_key]
        if isinstance(held, str) or order.snapshot is None:
            continue
        target = STAGE_EVIDENCE[order.snapshot.state]
        order.reservation = Reservation(stock.new_reservation_id(), "hard", None, held, is_new=True)
        stock.move(order, StockStage.NONE, target, None, fresh=True)
        order.snapshot = replace(order.snapshot, stock_stage=target)
        order.reservation_failed = None
        out.order_allocated(order, stock.batch_info)
        filled.append(order)
    return filled


def add_filled(writes: Writes, uow: UnitOfWork, filled: Sequence[OrderRow]) -> None:
    """Add the filled orders and their new reservations to ``writes`` (the caller adds movements and executes)."""
    add_orders(writes, uow, filled)
    add_reservations(writes, uow, [(o.order_key, o.reservation) for o in filled if o.reservation is not None])


async def lock_stock_and_latecomers(
    uow: UnitOfWork,
    skus: Iterable[str],
    waiting: Sequence[OrderRow],
    batches: BatchInfoCache,
    workshops: Iterable[str] = (),
) -> tuple[StockInputs, list[OrderRow]]:
    """Lock the stock of ``skus`` and of the ``waiting`` orders' SKUs (the orders are locked already), then the
    orders of ``skus`` that started waiting while this transaction waited for those stock rows (``SKIP LOCKED``:
    never waits, so the lock order holds), if every SKU they need is locked. Returns the stock inputs and the
    orders to fill: ``waiting`` (oldest first), then the latecomers."""
    wanted = set(skus) | waiting_skus(waiting)
    inputs = await load_stock(
        uow,
        wanted,
        due_at=None,
        workshops=set(workshops) | {ln.workshop_id for o in waiting for ln in o.lines},
        new_reservations=len(waiting),
        batches=batches,
    )
    known = {o.order_key for o in waiting}
    late = [
        o
        for o in await load_waiting(uow, skus, skip_locked=True)
        if o.order_key not in known and waiting_skus([o]) <= wanted
    ]
    if late:
        inputs.reservation_ids += await next_reservation_ids(uow, len(late))
        if {ln.workshop_id for o in late for ln in o.lines} - inputs.lapas_of_workshop.keys():
            inputs.lapas_of_workshop.update(await lapas_of_workshops(uow))
    return inputs, [*waiting, *late]


async def fill_freed(uow: UnitOfWork, stock: StockPlan, out: Outbound, exclude: Iterable[str] = ()) -> list[OrderRow]:
    """Fill, from ``stock`` (a plan whose stock rows this transaction holds), the orders waiting for the SKUs its
    movements freed, except ``exclude`` (the orders the plan decided on itself); returns the orders filled, their
    movements in ``stock`` and their events in ``out`` (the caller writes them, e.g. with :func:`add_filled`).

    Only an order whose every SKU ``stock`` holds is considered (the others wait for their next stock change)."""
    freed = stock.freed_skus()
    if not freed:
        return []
    held, skip = stock.skus, set(exclude)
    waiting = [
        o
        for o in await load_waiting(uow, freed, skip_locked=True)
        if o.order_key not in skip and waiting_skus([o]) <= held
    ]
    if not waiting:
        return []
    workshops = {ln.workshop_id for o in waiting for ln in o.lines}
    lapas = {} if stock.knows_workshops(workshops) else await lapas_of_workshops(uow)
    stock.add_reservation_ids(await next_reservation_ids(uow, len(waiting)), lapas)
    return fill_waiting(stock, waiting, out)


async def fill_backorders(
    uow: UnitOfWork, skus: Iterable[str], topics: OrdersTopics, batches: BatchInfoCache | None = None
) -> Filled:
    """Fill the orders waiting for ``skus`` from the stock there is now, in ``uow`` (see the module docstring).

    Call it in the transaction that added the stock, before that transaction locks any stock row of those SKUs
    (new rows are invisible to others until commit, so inserting them first is fine).
    """
    skus = set(skus)
    waiting = await load_waiting(uow, skus)
    inputs, waiting = await lock_stock_and_latecomers(uow, skus, waiting, batches or BatchInfoCache())
    if not waiting:
        return Filled([], [], [])
    stock = StockPlan(inputs)
    out = Outbound(topics)
    filled = fill_waiting(stock, waiting, out)
    if filled:
        out.availability(stock.availability())
        writes = Writes()
        add_filled(writes, uow, filled)
        add_movements(writes, uow, stock.movements)
        uow.publish_with(writes, out.messages)
        await writes.execute(uow.conn)
    return Filled(filled, stock.movements, out.messages)


async def receive_catalogue(
    uow: UnitOfWork, catalogue: Catalogue, source: str, topics: OrdersTopics
) -> tuple[LoadReport, Filled]:
    """``karya catalogue load``: load ``catalogue`` (new batches become stock receipts), then fill the orders waiting
    for the SKUs of the new batches, in ``uow``. Raises CatalogueError as :func:`load_catalogue` does."""
    report = await load_catalogue(uow, catalogue, source)
    new = set(report.new_batches)
    filled = await fill_backorders(uow, {b.sku for b in catalogue.batches if b.batch_id in new}, topics)
    return report, filled
