"""``/api/v1/batches/{batch_id}``: a production batch of the viewer's lapas (``finance.batches``), its work group
by pseudonymous inmate id with the premi it earned each, and the journal entries that name it (cursor
pagination) — the batch step of the savings drill-down."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field

from services.finance.api.models import Rupiah
from services.finance.api.params import NO_NUL, NOT_FOUND, Cursor, Limit, not_found, sequence_cursor
from services.finance.queries import batches
from services.finance.scope import Reads

router = APIRouter(prefix="/api/v1/batches", tags=["batches"])


class WorkGroupMember(BaseModel):
    """An inmate who worked on the batch: the pseudonymous id only, never who they are."""

    inmate_id: str = Field(examples=["WBP-000123"])
    work_share: int = Field(description="The member's share of the batch's premi, as a weight.")
    premi: Rupiah = Field(description="Premi the viewer's entries naming this batch credited to the member, net.")


class BatchEntry(BaseModel):
    """A journal entry naming the batch (a distribution, a refund's reversal...); ``amount``: its debits."""

    sequence: int
    posting_key: str
    kind: str
    effective_at: datetime
    order_key: str | None
    policy_ref: str | None
    amount: Rupiah


class Batch(BaseModel):
    """A production batch of the catalogue with its workshop and lapas, its work group and a page of its entries;
    pass ``next_cursor`` as ``cursor`` for the next page of entries (null: last)."""

    batch_id: str = Field(examples=["B-CPN-WDW-1"])
    workshop_id: str
    workshop_name: str
    lapas_id: str
    sku: str
    product_name: str
    produced_qty: int
    production_date: date
    unit_material_cost_idr: Rupiah
    supplier_id: str
    work_group: list[WorkGroupMember]
    entries: list[BatchEntry]
    next_cursor: str | None


@router.get("/{batch_id}", response_model=Batch, responses=NOT_FOUND)
async def get_batch(
    reads: Reads,
    batch_id: Annotated[str, Path(max_length=200, pattern=NO_NUL, description="Production batch id.")],
    cursor: Cursor = None,
    limit: Limit = 100,
) -> dict[str, Any]:
    """One production batch of the viewer's lapas, its work group and the entries that name it."""
    found = await batches.batch_detail(reads, batch_id, sequence_cursor(cursor), limit)
    if found is None:
        not_found("batch")
    after = found["next_cursor"]
    return {**found, "next_cursor": None if after is None else str(after)}
