"""Inspection of returned units in quarantine: restock them (sellable again) or write them off."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from infra.db.rowsets import Writes
from infra.db.unit_of_work import UnitOfWork
from infra.messaging.outbox import OutboundMessage
from services.orders.adapters.locks import lock_quarantine_row
from services.orders.adapters.order_repo import BatchInfoCache
from services.orders.adapters.sql import Sql
from services.orders.adapters.stock_repo import add_movements, load_stock_of_sku_of
from services.orders.domain.records import Held, Movement
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
    """The movement of one inspected lot, the quarantine row's new status and the events to publish."""

    movements: list[Movement]
    status: str
    messages: list[OutboundMessage]


def plan_inspection(lot: Inspected, inputs: StockInputs, note: str, topics: OrdersTopics) -> InspectionPlan:
    """Restock or write off ``lot`` against the locked stock of its SKU; a restock announces the SKU's availability.

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
    if lot.verdict is Verdict.RESTOCK:
        out.availability(stock.availability())
    return InspectionPlan(stock.movements, status, out.messages)


async def inspect_quarantine(
    uow: UnitOfWork, quarantine_id: int, verdict: Verdict, topics: OrdersTopics, note: str = ""
) -> Inspected | None:
    """Restock or write off one quarantine row awaiting inspection, in ``uow`` (load → plan → write).

    Records the movement (the counters follow) and, on restock, the new available-to-sell of the SKU in the
    outbox. Returns ``None`` if the row does not exist or was already inspected.
    """
    row = await lock_quarantine_row(uow, quarantine_id)
    if row is None or row.status != "awaiting_inspection":
        return None
    lot = Inspected(quarantine_id, row.order_key, row.batch_id, row.quantity, verdict)
    plan = plan_inspection(lot, await load_stock_of_sku_of(uow, row.batch_id, BatchInfoCache()), note, topics)
    writes = Writes()
    add_movements(writes, uow, plan.movements)
    await writes.execute(uow.conn)
    await uow.conn.execute(_MARK_INSPECTED.on(uow), {"s": plan.status, "n": note, "i": quarantine_id})
    await uow.publish(plan.messages)
    return lot
