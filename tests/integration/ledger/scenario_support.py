"""Shared pieces of the worked-scenario tests (docs/accounting.md, issue 15): a catalogue batch of the test's
own in the orders schema, and every journal line of one order, by posting key."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from infra.messaging.envelope import Envelope, make_envelope
from services.contracts.orders import ORDER_COMPLETED

T = datetime(2026, 6, 1, 9, tzinfo=UTC)

Lines = set[tuple[str, str, int]]


async def add_batch(
    engine: AsyncEngine,
    batch_id: str,
    lapas: str,
    sku: str,
    *,
    produced: int,
    unit_price: int,
    unit_material_cost: int,
    supplier: str,
    work_group: Sequence[tuple[str, int]],
) -> None:
    """A production batch in the catalogue (with its lapas, workshop, supplier and product if new)."""
    workshop = f"{lapas}-bengkel-{sku.lower()}"
    steps: list[tuple[str, dict[str, Any]]] = [
        (
            "INSERT INTO orders.lapas VALUES (:l, :l, 'Kota', 'Provinsi') ON CONFLICT DO NOTHING",
            {"l": lapas},
        ),
        (
            "INSERT INTO orders.workshops VALUES (:w, :l, :w, 'test') ON CONFLICT DO NOTHING",
            {"w": workshop, "l": lapas},
        ),
        ("INSERT INTO orders.suppliers VALUES (:s, :s) ON CONFLICT DO NOTHING", {"s": supplier}),
        (
            "INSERT INTO orders.products VALUES (:p, :p, 'test', :price, :w) ON CONFLICT DO NOTHING",
            {"p": sku, "price": unit_price, "w": workshop},
        ),
        (
            "INSERT INTO orders.production_batches (batch_id, workshop_id, sku, produced_qty, production_date, "
            "unit_material_cost_idr, supplier_id) VALUES (:b, :w, :p, :q, DATE '2026-05-01', :c, :s)",
            {"b": batch_id, "w": workshop, "p": sku, "q": produced, "c": unit_material_cost, "s": supplier},
        ),
    ]
    async with engine.begin() as conn:
        for statement, params in steps:
            await conn.execute(text(statement), params)
        for inmate, share in work_group:
            await conn.execute(
                text("INSERT INTO orders.batch_work_group VALUES (:b, :i, :s)"),
                {"b": batch_id, "i": inmate, "s": share},
            )


def completed_without_allocation(key: str, lapas: str | None, gross: int, at: datetime = T) -> Envelope:
    """An ``order_completed`` whose reservation failed: no allocations."""
    data: dict[str, Any] = {
        "order_key": key,
        "channel": key.split(":", 1)[0],
        "lapas_id": lapas,
        "raw_status": "COMPLETED",
        "update_time": at.isoformat(),
        "gross_amount": gross,
        "allocations": [],
    }
    return make_envelope(type=ORDER_COMPLETED, source="karya/orders", subject=key, data=data)


async def journal_of(engine: AsyncEngine, key: str) -> dict[str, Lines]:
    """Every line of every entry of order ``key``, by posting key (without the order key prefix)."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT e.posting_key, l.account, l.side, l.amount FROM ledger.journal_entries e "
                "JOIN ledger.journal_lines l USING (sequence) WHERE e.order_key = :k ORDER BY e.sequence, l.line_no"
            ),
            {"k": key},
        )
        journal: dict[str, Lines] = {}
        for r in rows:
            journal.setdefault(r.posting_key.removeprefix(f"{key}:"), set()).add((r.account, r.side, int(r.amount)))
    return journal
