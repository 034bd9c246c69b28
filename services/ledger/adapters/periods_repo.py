"""Closed periods (``ledger.closed_periods``, migration ``ledger_0010``) and the catalogue's province of a lapas."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Row

from infra.db.unit_of_work import UnitOfWork
from services.ledger.domain.periods import ClosedPeriod, Period

_COLUMNS = "lapas_id, period, zone, starts_at, ends_at, closed_by, closed_at"


def _period(r: Row[tuple[object, ...]]) -> ClosedPeriod:
    return ClosedPeriod(
        str(r.lapas_id), Period.parse(str(r.period)), str(r.zone), r.starts_at, r.ends_at, str(r.closed_by), r.closed_at
    )


CLOSED_AS_JSON = (
    "SELECT coalesce(json_agg(json_build_array(lapas_id, period, zone, starts_at, ends_at, closed_by, closed_at) "
    "ORDER BY lapas_id, starts_at), '[]') FROM {schema}.closed_periods WHERE {where}"
)
"""The closed periods a condition ``{where}`` selects, as one JSON array, for a caller that reads them with its other
reads in one statement (:func:`closed_from_json` turns it back)."""


def closed_from_json(rows: Iterable[Sequence[Any]]) -> dict[str, list[ClosedPeriod]]:
    """The periods of :data:`CLOSED_AS_JSON`, per lapas, oldest first (instants in UTC, as the driver gives them)."""
    closed: dict[str, list[ClosedPeriod]] = {}
    for lapas_id, period, zone, starts_at, ends_at, closed_by, closed_at in rows:
        closed.setdefault(lapas_id, []).append(
            ClosedPeriod(
                str(lapas_id),
                Period.parse(str(period)),
                str(zone),
                _instant(starts_at),
                _instant(ends_at),
                str(closed_by),
                _instant(closed_at),
            )
        )
    return closed


def _instant(value: str) -> datetime:
    return datetime.fromisoformat(value).astimezone(UTC)


async def closed_periods(uow: UnitOfWork, lapas: Iterable[str]) -> dict[str, list[ClosedPeriod]]:
    """The closed periods of ``lapas``, per lapas, oldest first; one small query (empty when none is closed)."""
    ids = sorted(set(lapas))
    if not ids:
        return {}
    rows = await uow.conn.execute(
        text(
            f"SELECT {_COLUMNS} FROM {uow.table('closed_periods')} WHERE lapas_id = ANY(:l) "
            "ORDER BY lapas_id, starts_at"
        ),
        {"l": ids},
    )
    closed: dict[str, list[ClosedPeriod]] = {}
    for r in rows:
        closed.setdefault(r.lapas_id, []).append(_period(r))
    return closed


async def all_closed_periods(uow: UnitOfWork, lapas_id: str | None = None) -> list[ClosedPeriod]:
    """Every closed period (of ``lapas_id`` if given), by lapas and month."""
    rows = await uow.conn.execute(
        text(
            f"SELECT {_COLUMNS} FROM {uow.table('closed_periods')} "
            "WHERE CAST(:l AS text) IS NULL OR lapas_id = :l ORDER BY lapas_id, starts_at"
        ),
        {"l": lapas_id},
    )
    return [_period(r) for r in rows]


async def insert_closed_period(uow: UnitOfWork, period: ClosedPeriod) -> None:
    """Record ``period`` as closed (the caller holds the chain head, so no posting is under way meanwhile; the
    database stamps ``closed_at`` and refuses a second close and a month that has not ended)."""
    await uow.conn.execute(
        text(
            f"INSERT INTO {uow.table('closed_periods')} (lapas_id, period, zone, starts_at, ends_at, closed_by) "
            "VALUES (:l, :p, :z, :s, :e, :b)"
        ),
        {
            "l": period.lapas_id,
            "p": str(period.period),
            "z": period.zone,
            "s": period.starts_at,
            "e": period.ends_at,
            "b": period.closed_by,
        },
    )


async def lapas_province(uow: UnitOfWork, lapas_id: str, catalogue_schema: str) -> tuple[bool, str | None]:
    """Whether the catalogue (the orders service's ``catalogue_schema``) knows ``lapas_id``, and its province."""
    catalogue = UnitOfWork(uow.conn, catalogue_schema)
    row = (
        await uow.conn.execute(
            text(f"SELECT province FROM {catalogue.table('lapas')} WHERE lapas_id = :l"), {"l": lapas_id}
        )
    ).one_or_none()
    return (False, None) if row is None else (True, row.province)
