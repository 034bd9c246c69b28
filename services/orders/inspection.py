"""Inspection of returned units in quarantine: restock them (sellable again) or write them off.

Restocked units first fill the orders waiting for their SKU (:mod:`services.orders.backorders`), in the same
transaction: those orders are locked before the quarantine row and the stock, in the lock order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

from infra.db.rowsets import Writes
from infra.db.unit_of_work import UnitOfWork
from infra.messaging.outbox import OutboundMessage
from services.orders.adapters.locks import lock_quarantine_row
from services.orders.adapters.order_repo import BatchInfoCache, load_waiting
from services.orders.adapters.sql import Sql
from services.orders.adapters.stock_repo import add_movements, load_stock
from services.orders.backorders import add_filled, fill_waiting, lock_stock_and_latecomers
from services.orders.domain.records import Held, Movement, OrderRow
from services.orders.domain.stock import MovementKind
from services.orders.outbound import OrdersTopics, Outbound
from services.orders.stock_plan import StockInputs, StockPlan


class Verdict(StrEnum):
    """What inspection decided about a quarantined lot."""

    RESTOCK = "restock"
    WRITE_OFF = "write-off"


_OUTCOME = {
    Verdict.RESTOCK: (MovementKind.RESTOCK, "restocked"),
    Verdict.WRITE_OFF: (MovementKind.WRITE_OFF, "written_off"),
}
_SKU_OF_ROW = Sql(
    "SELECT b.sku, b.workshop_id FROM {schema}.quarantine q JOIN {schema}.batch_stock b USING (batch_id) "
    "WHERE q.id = :i"
)
_MARK_INSPECTED = Sql("UPDATE {schema}.quarantine SET status = :s, inspected_at = now(), note = :n WHERE id = :i")


@dataclass(frozen=True, slots=True)
class Inspected:
    """One quarantine row after inspection."""

    quarantine_id: int
    order_key: str
    batch_id: str
    quantity: int
    verdict: Verdict


@dataclass(frozen=True, slots=True)
class InspectionPlan:
    """The movements of one inspected lot (and of the backorders it fills), the quarantine row's new status, the
    orders filled and the events to publish."""

    movements: list[Movement]
    status: str
    messages: list[OutboundMessage]
    filled: list[OrderRow] = field(default_factory=list)


def plan_inspection(
    lot: Inspected,
    inputs: StockInputs,
    note: str,
    topics: OrdersTopics,
    waiting: Sequence[OrderRow] = (),
    *,
    at: datetime,
) -> InspectionPlan:
    """Restock or write off ``lot`` (inspected ``at``) against the locked stock of its SKU. A restock announces the
    units restocked (``units_restocked``, for the ledger), fills the ``waiting`` orders (oldest first) it can and
    announces the SKU's availability.

    Raises the domain's StockInvariantViolation if the counters cannot take the movement.
    """
    kind, status = _OUTCOME[lot.verdict]
    stock = StockPlan(inputs)
    sku, workshop_id = next(((r[1], r[2]) for r in inputs.rows if r[0] == lot.batch_id), ("", ""))
    stock.record(
        [Held(lot.batch_id, sku, workshop_id, lot.quantity)],
        kind,
        lot.order_key,
        f"inspection: {note or lot.verdict.value}",
    )
    out = Outbound(topics)
    filled: list[OrderRow] = []
    if lot.verdict is Verdict.RESTOCK:
        out.units_restocked(lot.order_key, lot.quarantine_id, lot.batch_id, lot.quantity, at)
        filled = fill_waiting(stock, waiting, out)
        out.availability(stock.availability())
    return InspectionPlan(stock.movements, status, out.messages, filled)


async def inspect_quarantine(
    uow: UnitOfWork, quarantine_id: int, verdict: Verdict, topics: OrdersTopics, note: str = ""
) -> Inspected | None:
    """Restock or write off one quarantine row awaiting inspection, in ``uow`` (load → plan → write).

    Records the movement (the counters follow) and, on restock, fills the orders waiting for the SKU and puts the
    new available-to-sell of the SKU in the outbox. Returns ``None`` if the row does not exist or was already
    inspected.
    """
    # The lot's SKU never changes: read unlocked, so that the waiting orders are locked first (lock order).
    found = (await uow.conn.execute(_SKU_OF_ROW.on(uow), {"i": quarantine_id})).one_or_none()
    waiting = await load_waiting(uow, {found.sku}) if found is not None and verdict is Verdict.RESTOCK else []
    row = await lock_quarantine_row(uow, quarantine_id)
    if row is None or found is None or row.status != "awaiting_inspection":
        return None
    lot = Inspected(quarantine_id, row.order_key, row.batch_id, row.quantity, verdict)
    cache = BatchInfoCache()
    if verdict is Verdict.RESTOCK:
        inputs, waiting = await lock_stock_and_latecomers(uow, {found.sku}, waiting, cache, [found.workshop_id])
    else:
        inputs = await load_stock(uow, {found.sku}, due_at=None, workshops={found.workshop_id}, batches=cache)
    plan = plan_inspection(lot, inputs, note, topics, waiting, at=datetime.now(UTC))
    writes = Writes()
    add_filled(writes, uow, plan.filled)
    add_movements(writes, uow, plan.movements)
    await writes.execute(uow.conn)
    await uow.conn.execute(_MARK_INSPECTED.on(uow), {"s": plan.status, "n": note, "i": quarantine_id})
    await uow.publish(plan.messages)
    return lot
