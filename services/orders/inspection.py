"""Inspection of returned units in quarantine: restock them (sellable again) or write them off."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from services.orders.adapters.locks import lock_batches, lock_quarantine_row
from services.orders.adapters.stock_repo import Movement, record_movements, stock_by_workshop
from services.orders.domain.stock import MovementKind
from services.orders.outbound import OrdersTopics, Outbound


class Verdict(StrEnum):
    """What inspection decided about a quarantined lot."""

    RESTOCK = "restock"
    WRITE_OFF = "write-off"


_OUTCOME = {
    Verdict.RESTOCK: (MovementKind.RESTOCK, "restocked"),
    Verdict.WRITE_OFF: (MovementKind.WRITE_OFF, "written_off"),
}


@dataclass(frozen=True, slots=True)
class Inspected:
    """One quarantine row after inspection."""

    quarantine_id: int
    order_key: str
    batch_id: str
    quantity: int
    verdict: Verdict


async def inspect_quarantine(
    conn: AsyncConnection, quarantine_id: int, verdict: Verdict, note: str = "", topics: OrdersTopics | None = None
) -> Inspected | None:
    """Restock or write off one quarantine row awaiting inspection, inside the caller's transaction.

    Records the movement (the counters follow) and, on restock, the new available-to-sell of the SKU in the
    outbox (``topics``, default the base names). Returns ``None`` if the row does not exist or was already inspected.
    """
    row = await lock_quarantine_row(conn, quarantine_id)
    if row is None or row.status != "awaiting_inspection":
        return None
    kind, status = _OUTCOME[verdict]
    await lock_batches(conn, [row.batch_id])
    reason = f"inspection: {note or verdict.value}"
    await record_movements(conn, [Movement(row.batch_id, kind, row.quantity, reason, row.order_key)])
    await conn.execute(
        text("UPDATE orders.quarantine SET status = :s, inspected_at = now(), note = :n WHERE id = :i"),
        {"s": status, "n": note, "i": quarantine_id},
    )
    if verdict is Verdict.RESTOCK:
        sku = (
            await conn.execute(text("SELECT sku FROM orders.batch_stock WHERE batch_id = :b"), {"b": row.batch_id})
        ).scalar_one()
        out = Outbound(topics or OrdersTopics())
        workshops = [(r["workshop_id"], r["available"]) for r in await stock_by_workshop(conn, sku)]
        out.availability({sku: workshops})
        await out.flush(conn)
    return Inspected(quarantine_id, row.order_key, row.batch_id, row.quantity, verdict)
