"""``/api/v1/withholding``: the PPh 22 withholding slips of the viewer's lapas (one per settlement that withheld,
flagged when the amount is off 0.5% of the price excluding PPN by more than the lapas' tolerance), filtered by lapas,
flag and settlement time, newest first (cursor pagination); ``/api/v1/tax-settings``: the tax setting versions they
were checked under, with the one in force now (:mod:`services.finance.queries.withholding`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from services.finance.api.models import Rupiah
from services.finance.api.params import Cursor, End, Limit, Start, invalid, period, text_query
from services.finance.queries import withholding
from services.finance.scope import Reads
from services.ledger.domain.tax import TaxSetting, select_tax_setting
from services.ledger.domain.tax_file import tax_setting_body

router = APIRouter(prefix="/api/v1", tags=["tax"])


class WithholdingSlip(BaseModel):
    """One settlement's PPh 22 as the ledger recorded it when it posted the settlement."""

    posting_key: str = Field(description="The settlement entry's posting key.")
    order_key: str
    lapas_id: str
    settled_at: datetime
    withheld: Rupiah = Field(description="PPh 22 the marketplace withheld.")
    expected: Rupiah = Field(description="The setting's rate (0.5%) of the settlement's price excluding PPN.")
    difference: Rupiah = Field(description="withheld − expected.")
    tolerance: Rupiah = Field(description="How far the withholding may be off before a person reviews it.")
    flagged: bool = Field(description="Off by more than the tolerance: a person checks the marketplace's invoice.")
    slip_ref: str = Field(description="The marketplace's invoice number, else its settlement id.")
    tax_ref: str = Field(description="The lapas' tax setting the settlement was posted under.", examples=["tax:x@v1"])
    recorded_at: datetime


class WithholdingPage(BaseModel):
    """A page of slips, newest settlement first; pass ``next_cursor`` as ``cursor`` for the next one (null:
    last)."""

    slips: list[WithholdingSlip]
    next_cursor: str | None


class TaxSettingVersion(BaseModel):
    """One version of a lapas' tax treatment (docs/accounting.md, Tax treatment). Rates are exact fractions."""

    lapas_id: str
    version: int
    ref: str = Field(examples=["tax:cipinang@v1"])
    effective_from: datetime
    in_force: bool = Field(description="The version in force now.")
    pkp: bool = Field(description="Whether the lapas' sales carry PPN.")
    ppn_rate: str = Field(examples=["3/25"])
    ppn_base: str = Field(examples=["11/12"])
    pph22: str = Field(description="creditable, expense or exempt.")
    pph22_rate: str = Field(examples=["1/200"])
    pph22_tolerance: Rupiah
    description: str


class TaxSettings(BaseModel):
    """The tax setting versions of the lapas in the viewer's scope, by lapas and version."""

    settings: list[TaxSettingVersion]


@router.get("/withholding", response_model=WithholdingPage)
async def list_withholding(
    reads: Reads,
    lapas: Annotated[str | None, text_query("Slips of this lapas.", max_length=100)] = None,
    flagged: Annotated[bool | None, Query(description="true: only those to review; false: only the others.")] = None,
    start: Start = None,
    end: End = None,
    cursor: Cursor = None,
    limit: Limit = 100,
) -> dict[str, Any]:
    """PPh 22 withheld per settlement with its slip reference and review flag, newest settlement first
    (``from``/``to``: the settlement time)."""
    start, end = period(start, end)
    try:
        after = withholding.parse_cursor(cursor)
    except withholding.BadCursor:
        invalid("cursor", "not a cursor this API gave")
    where = withholding.SlipFilter(lapas, flagged, start, end)
    slips, next_cursor = await withholding.slips_page(reads, where, after, limit)
    return {"slips": slips, "next_cursor": next_cursor}


def _version(setting: TaxSetting, in_force: bool) -> dict[str, Any]:
    """A setting as the ledger stores it (rates as ``numerator/denominator``), with its ref and whether it is in
    force."""
    return tax_setting_body(setting) | {
        "ref": setting.ref,
        "effective_from": setting.effective_from,
        "in_force": in_force,
    }


@router.get("/tax-settings", response_model=TaxSettings)
async def list_tax_settings(
    reads: Reads, lapas: Annotated[str | None, text_query("Settings of this lapas.", max_length=100)] = None
) -> dict[str, Any]:
    """Every tax setting version of the viewer's lapas (``lapas``: of one), each marked whether it is the one in
    force now."""
    stored = [s for s in await withholding.stored_settings(reads) if lapas is None or s.lapas_id == lapas]
    now = datetime.now(UTC)
    return {"settings": [_version(s, select_tax_setting(stored, s.lapas_id, now) == s) for s in stored]}
