"""Loading a validated catalogue into the database, idempotently.

Reference data (lapas, workshops, suppliers, products, listings) is upserted. Production batches are history:
a new batch is inserted with its work group and becomes a RECEIPT movement of its produced quantity; a batch
already present is left alone if identical and reported as a conflict if the file now says something else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text

from infra.db.unit_of_work import UnitOfWork
from services.orders.adapters.sql import Sql
from services.orders.adapters.stock_repo import record_movements
from services.orders.catalogue import Catalogue, CatalogueError, ProductionBatch
from services.orders.domain.records import Movement
from services.orders.domain.stock import MovementKind

_EXISTING_BATCHES = Sql(
    "SELECT batch_id, workshop_id, sku, produced_qty, production_date, unit_material_cost_idr, "
    "supplier_id FROM {schema}.production_batches WHERE batch_id = ANY(:ids)"
)
_INSERT_BATCHES = Sql(
    "INSERT INTO {schema}.production_batches (batch_id, workshop_id, sku, produced_qty, production_date, "
    "unit_material_cost_idr, supplier_id) VALUES (:batch_id, :workshop_id, :sku, :produced_qty, "
    ":production_date, :unit_material_cost_idr, :supplier_id)"
)
_INSERT_WORK_GROUPS = Sql(
    "INSERT INTO {schema}.batch_work_group (batch_id, inmate_id, work_share) "
    "VALUES (:batch_id, :inmate_id, :work_share)"
)
_INSERT_STOCK_ROWS = Sql(
    "INSERT INTO {schema}.batch_stock (batch_id, sku, workshop_id, lapas_id, production_date) "
    "SELECT b.batch_id, b.sku, b.workshop_id, w.lapas_id, b.production_date "
    "FROM {schema}.production_batches b JOIN {schema}.workshops w USING (workshop_id) WHERE b.batch_id = ANY(:ids)"
)


@dataclass
class LoadReport:
    """What a catalogue load changed."""

    lapas: int = 0
    workshops: int = 0
    suppliers: int = 0
    products: int = 0
    listings: int = 0
    new_batches: list[str] = field(default_factory=list)
    units_received: int = 0


async def _upsert(uow: UnitOfWork, table: str, key: list[str], rows: list[dict[str, Any]]) -> int:
    if not rows:
        return 0
    cols = list(rows[0])
    updates = [c for c in cols if c not in key]
    set_clause = ", ".join(f"{c} = EXCLUDED.{c}" for c in updates)
    changed = " OR ".join(f"t.{c} IS DISTINCT FROM EXCLUDED.{c}" for c in updates)
    sql = (
        f"INSERT INTO {uow.table(table)} AS t ({', '.join(cols)}) VALUES ({', '.join(':' + c for c in cols)}) "
        f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {set_clause} WHERE {changed}"
    )
    await uow.conn.execute(text(sql), rows)
    return len(rows)


async def load_catalogue(uow: UnitOfWork, catalogue: Catalogue, source: str) -> LoadReport:
    """Upsert reference data, insert new batches as stock receipts; raises CatalogueError on batch conflicts."""
    report = LoadReport()
    report.lapas = await _upsert(
        uow,
        "lapas",
        ["lapas_id"],
        [{"lapas_id": r.lapas_id, "name": r.name, "city": r.city, "province": r.province} for r in catalogue.lapas],
    )
    report.workshops = await _upsert(
        uow,
        "workshops",
        ["workshop_id"],
        [
            {"workshop_id": r.workshop_id, "lapas_id": r.lapas_id, "name": r.name, "kind": r.kind}
            for r in catalogue.workshops
        ],
    )
    report.suppliers = await _upsert(
        uow,
        "suppliers",
        ["supplier_id"],
        [{"supplier_id": r.supplier_id, "name": r.name} for r in catalogue.suppliers],
    )
    report.products = await _upsert(
        uow,
        "products",
        ["sku"],
        [
            {
                "sku": r.sku,
                "name": r.name,
                "kind": r.kind.value,
                "list_price_idr": r.list_price_idr,
                "default_workshop_id": r.default_workshop_id,
            }
            for r in catalogue.products
        ],
    )
    report.listings = await _upsert(
        uow,
        "listings",
        ["channel", "shop_id", "channel_product_id", "channel_sku_id"],
        [
            {
                "channel": r.channel.value,
                "shop_id": r.shop_id,
                "channel_product_id": r.channel_product_id,
                "channel_sku_id": r.channel_sku_id or "",
                "sku": r.sku,
                "workshop_id": r.workshop_id,
            }
            for r in catalogue.listings
        ],
    )
    await _insert_batches(uow, catalogue, source, report)
    return report


async def _insert_batches(uow: UnitOfWork, catalogue: Catalogue, source: str, report: LoadReport) -> None:
    if not catalogue.batches:
        return
    existing = {
        r.batch_id: r
        for r in await uow.conn.execute(
            _EXISTING_BATCHES.on(uow),
            {"ids": [b.batch_id for b in catalogue.batches]},
        )
    }
    conflicts = [
        f"{source}: batch {b.batch_id}: already recorded with different "
        f"{', '.join(_differences(b, existing[b.batch_id]))}; batches are history and cannot change"
        for b in catalogue.batches
        if b.batch_id in existing and _differences(b, existing[b.batch_id])
    ]
    if conflicts:
        raise CatalogueError(conflicts)
    new = [b for b in catalogue.batches if b.batch_id not in existing]
    if not new:
        return
    await uow.conn.execute(
        _INSERT_BATCHES.on(uow),
        [
            {
                "batch_id": b.batch_id,
                "workshop_id": b.workshop_id,
                "sku": b.sku,
                "produced_qty": b.produced_qty,
                "production_date": b.production_date,
                "unit_material_cost_idr": b.unit_material_cost_idr,
                "supplier_id": b.supplier_id,
            }
            for b in new
        ],
    )
    await uow.conn.execute(
        _INSERT_WORK_GROUPS.on(uow),
        [
            {"batch_id": b.batch_id, "inmate_id": w.inmate_id, "work_share": w.work_share}
            for b in new
            for w in b.work_group
        ],
    )
    await uow.conn.execute(
        _INSERT_STOCK_ROWS.on(uow),
        {"ids": [b.batch_id for b in new]},
    )
    await record_movements(
        uow,
        [
            Movement(b.batch_id, MovementKind.RECEIPT, b.produced_qty, reason=f"production batch from {source}")
            for b in new
        ],
    )
    report.new_batches = [b.batch_id for b in new]
    report.units_received = sum(b.produced_qty for b in new)


def _differences(batch: ProductionBatch, row: Any) -> list[str]:
    fields = ["workshop_id", "sku", "produced_qty", "production_date", "unit_material_cost_idr", "supplier_id"]
    return [f for f in fields if getattr(batch, f) != getattr(row, f)]
