"""PPh 22 withholding slips and the tax settings they were checked under (``ledger.withholding_slips``,
``ledger.tax_settings``, ledger_0013), in the viewer's lapas scope (finance_0009: the database's policies decide
which rows a query sees).

A slip is one settlement that withheld PPh 22: what was withheld, what 0.5% of its price excluding PPN comes to
(``expected``), the tolerance of the lapas' setting and whether it is ``flagged`` (off by more than the tolerance: a
person checks the marketplace's invoice). Slips are listed newest settlement first; the cursor is the last row's
``<settled_at ISO 8601> <posting key>`` (an ISO time holds no space). The setting in force per lapas is chosen by the
ledger's own rule (:func:`services.ledger.domain.tax.select_tax_setting`) from the stored bodies.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text

from services.finance.scope import ReadModel
from services.ledger.domain.tax import UNSET, TaxSetting, select_tax_setting
from services.ledger.domain.tax_file import parse_tax_settings


class BadCursor(ValueError):
    """A cursor this module did not give."""


@dataclass(frozen=True, slots=True)
class SlipFilter:
    """Which slips: of one lapas (None: every lapas in scope), flagged or not (None: both), settled in
    ``[start, end)`` (None: unbounded)."""

    lapas: str | None = None
    flagged: bool | None = None
    start: datetime | None = None
    end: datetime | None = None


_COLUMNS = (
    "posting_key, order_key, lapas_id, settled_at, withheld, expected, withheld - expected AS difference, tolerance, "
    "flagged, slip_ref, tax_ref, recorded_at"
)


def slip_cursor(row: dict[str, Any]) -> str:
    """The cursor after ``row``: ``<settled_at ISO 8601> <posting key>``."""
    return f"{row['settled_at'].isoformat()} {row['posting_key']}"


def _after(cursor: str) -> tuple[datetime, str]:
    """The sort key a cursor names; :class:`BadCursor` for anything :func:`slip_cursor` did not make."""
    moment, _, key = cursor.partition(" ")
    try:
        at = datetime.fromisoformat(moment)
    except ValueError:
        raise BadCursor(cursor) from None
    if at.tzinfo is None or not key:
        raise BadCursor(cursor)
    return at, key


def parse_cursor(cursor: str | None) -> tuple[datetime, str] | None:
    """The sort key after which a page starts (None: the first page); :class:`BadCursor` when malformed."""
    return None if cursor is None else _after(cursor)


async def slips_page(
    reads: ReadModel, where: SlipFilter, after: tuple[datetime, str] | None, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    """A page of slips, newest settlement first (then by posting key, descending), and the cursor of the next page
    (None on the last)."""
    given = {
        "lapas_id = :lapas": where.lapas,
        "flagged = :flagged": where.flagged,
        "settled_at >= :start": where.start,
        "settled_at < :end": where.end,
        "(settled_at, posting_key) < (:after_at, :after_key)": after,
    }
    conditions = " AND ".join(["true", *(sql for sql, value in given.items() if value is not None)])
    params = {
        "lapas": where.lapas,
        "flagged": where.flagged,
        "start": where.start,
        "end": where.end,
        "after_at": None if after is None else after[0],
        "after_key": None if after is None else after[1],
        "n": limit + 1,
    }
    sql = (
        f"SELECT {_COLUMNS} FROM {reads.ledger('withholding_slips')} WHERE {conditions} "
        "ORDER BY settled_at DESC, posting_key DESC LIMIT :n"
    )
    rows = [dict(r._mapping) for r in await reads.conn.execute(text(sql), params)]
    found = rows[:limit]
    return found, (slip_cursor(found[-1]) if len(rows) > limit else None)


async def flagged_count(reads: ReadModel) -> int:
    """How many slips in the viewer's scope are flagged for review."""
    sql = f"SELECT count(*) FROM {reads.ledger('withholding_slips')} WHERE flagged"
    return int(await reads.conn.scalar(text(sql)) or 0)


async def stored_settings(reads: ReadModel) -> list[TaxSetting]:
    """Every tax setting version in the viewer's scope, by lapas and version."""
    sql = f"SELECT body FROM {reads.ledger('tax_settings')} ORDER BY lapas_id, version"
    bodies = (await reads.conn.execute(text(sql))).scalars().all()
    return parse_tax_settings(list(bodies), reads.ledger("tax_settings"))


@dataclass(frozen=True, slots=True)
class InForce:
    """A lapas and the tax setting in force for it (:data:`UNSET` when none is loaded: ``ref`` ``tax:unset``)."""

    lapas_id: str
    setting: TaxSetting

    @property
    def is_set(self) -> bool:
        """Whether a setting is loaded for the lapas (else its sales keep the unset treatment)."""
        return self.setting is not UNSET


def settings_in_force(settings: Iterable[TaxSetting], lapas_ids: Iterable[str], at: datetime) -> list[InForce]:
    """For each lapas of ``lapas_ids`` and each lapas with a setting, the version in force at ``at``, by lapas."""
    loaded = list(settings)
    every = sorted({*lapas_ids, *(s.lapas_id for s in loaded)})
    return [InForce(lapas, select_tax_setting(loaded, lapas, at)) for lapas in every]
