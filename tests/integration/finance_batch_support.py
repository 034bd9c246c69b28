"""The catalogue behind :func:`tests.integration.finance_read_support.two_lapas`'s orders: each order's production
batch (``B-CPN-WDW-1`` in lapas A, ``B-KRB-CCN-1`` in lapas B) with its workshop, product and supplier, and the
order's inmate in its work group — what the batch pages of the savings drill-down show. Rows another test of the
session database already inserted are kept (the work group gains this run's inmate)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text

from infra.db.engine import make_engine
from tests.integration.finance_read_support import LAPAS_A, LAPAS_B, TwoLapas


@dataclass(frozen=True)
class CatalogueBatch:
    """One production batch as the catalogue records it."""

    batch_id: str
    lapas_id: str
    workshop_id: str
    sku: str
    produced_qty: int
    unit_material_cost: int
    supplier_id: str


BATCH_A = CatalogueBatch("B-CPN-WDW-1", LAPAS_A, "cipinang-bengkel-kayu", "CPN-WDW-001", 40, 40_000, "sup-kayu")
BATCH_B = CatalogueBatch("B-KRB-CCN-1", LAPAS_B, "kerobokan-sentra-kerajinan", "KRB-CCN-001", 60, 9_000, "sup-kelapa")
PROVINCES = {LAPAS_A: "DKI Jakarta", LAPAS_B: "Bali"}

_STATEMENTS = (
    "INSERT INTO orders.lapas VALUES (:l, :l, 'Kota', :province) ON CONFLICT DO NOTHING",
    "INSERT INTO orders.workshops VALUES (:w, :l, :w, 'test') ON CONFLICT DO NOTHING",
    "INSERT INTO orders.suppliers VALUES (:s, :s) ON CONFLICT DO NOTHING",
    "INSERT INTO orders.products VALUES (:p, :p, 'test', 100000, :w) ON CONFLICT DO NOTHING",
    "INSERT INTO orders.production_batches (batch_id, workshop_id, sku, produced_qty, production_date, "
    "unit_material_cost_idr, supplier_id) VALUES (:b, :w, :p, :q, DATE '2026-05-01', :c, :s) ON CONFLICT DO NOTHING",
    "INSERT INTO orders.batch_work_group VALUES (:b, :i, 1) ON CONFLICT DO NOTHING",
)


async def catalogue_batches(admin_url: str, posted: TwoLapas) -> tuple[CatalogueBatch, CatalogueBatch]:
    """Put lapas A's and lapas B's batches in the catalogue with ``posted``'s inmate of each lapas in its work
    group; the two batches."""
    engine = make_engine(admin_url, pool_size=1)
    try:
        async with engine.begin() as conn:
            for batch, inmate in ((BATCH_A, posted.inmate_a), (BATCH_B, posted.inmate_b)):
                params = {
                    "l": batch.lapas_id,
                    "province": PROVINCES[batch.lapas_id],
                    "w": batch.workshop_id,
                    "s": batch.supplier_id,
                    "p": batch.sku,
                    "b": batch.batch_id,
                    "q": batch.produced_qty,
                    "c": batch.unit_material_cost,
                    "i": inmate,
                }
                for statement in _STATEMENTS:
                    await conn.execute(text(statement), params)
    finally:
        await engine.dispose()
    return BATCH_A, BATCH_B
