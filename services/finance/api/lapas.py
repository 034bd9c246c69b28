"""``/api/v1/lapas``: the lapas in the viewer's scope with their province and own time zone (``finance.lapas``), so
a client shows a lapas' times as its pages do (kerobokan in Bali: WITA)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from services.finance.api.params import text_query
from services.finance.queries.lapas import visible_lapas
from services.finance.scope import Reads
from services.presentation.zones import zone_label

router = APIRouter(prefix="/api/v1/lapas", tags=["lapas"])


class LapasZone(BaseModel):
    """One lapas of the catalogue: its province and the zone its times are shown in (None: not configured)."""

    lapas_id: str = Field(examples=["kerobokan"])
    name: str
    province: str = Field(examples=["Bali"])
    zone: str | None = Field(description="IANA time zone", examples=["Asia/Makassar"])
    zone_label: str | None = Field(examples=["WITA"])


class LapasList(BaseModel):
    """The lapas the viewer may see (one for an auditor or treasurer of a lapas), by id."""

    lapas: list[LapasZone]


@router.get("", response_model=LapasList)
async def lapas_list(
    reads: Reads, province: Annotated[str | None, text_query("Only the lapas of this province (any case).")] = None
) -> dict[str, Any]:
    """Every lapas in the viewer's scope with its province and time zone."""
    found = [
        x for x in await visible_lapas(reads) if province is None or x.province.lower() == province.strip().lower()
    ]
    return {
        "lapas": [
            {
                "lapas_id": x.lapas_id,
                "name": x.name,
                "province": x.province,
                "zone": None if x.zone is None else x.zone.key,
                "zone_label": None if x.zone is None else zone_label(x.zone),
            }
            for x in found
        ]
    }
