"""The lapas the viewer may name, with their province and time zone (``finance.lapas``, migration ``finance_0004``).

The catalogue's province is read through the workspace's own scoped view (``karya_finance`` cannot read the orders
schema); the zone comes from the province by :func:`services.presentation.zones.lapas_zone` with the
deployment's overrides. A lapas outside the viewer's scope is simply absent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import text

from services.finance.scope import ReadModel
from services.presentation.zones import WIB, UnknownZone, lapas_zone


@dataclass(frozen=True, slots=True)
class Lapas:
    """One lapas as the workspace shows it: id, name, province and its own zone (None: not configured)."""

    lapas_id: str
    name: str
    province: str
    zone: ZoneInfo | None


def _zone(lapas_id: str, province: str, overrides: Mapping[str, str] | None) -> ZoneInfo | None:
    try:
        return lapas_zone(lapas_id, province, overrides)
    except UnknownZone:
        return None


async def visible_lapas(reads: ReadModel, overrides: Mapping[str, str] | None = None) -> list[Lapas]:
    """Every lapas in the viewer's scope, by id, with its zone."""
    rows = await reads.conn.execute(
        text(f"SELECT lapas_id, name, province FROM {reads.finance('lapas')} ORDER BY lapas_id")
    )
    return [Lapas(r.lapas_id, r.name, r.province, _zone(r.lapas_id, r.province, overrides)) for r in rows]


async def zone_of_lapas(reads: ReadModel, lapas_id: str, overrides: Mapping[str, str] | None = None) -> ZoneInfo:
    """``lapas_id``'s own zone; WIB when the lapas is not visible or its zone is not configured (the country's
    reference zone, named on every page next to the times)."""
    row = (
        await reads.conn.execute(
            text(f"SELECT province FROM {reads.finance('lapas')} WHERE lapas_id = :l"), {"l": lapas_id}
        )
    ).one_or_none()
    zone = None if row is None else _zone(lapas_id, row.province, overrides)
    return zone or ZoneInfo(WIB)


async def viewer_zone(reads: ReadModel, overrides: Mapping[str, str] | None = None) -> ZoneInfo:
    """The zone times are shown in for the viewer: their lapas' own; WIB for a viewer of every lapas."""
    lapas = reads.viewer.lapas_scope
    return ZoneInfo(WIB) if lapas is None else await zone_of_lapas(reads, lapas, overrides)
