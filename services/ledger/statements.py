"""Reports per lapas and period (``karya ledger report …``): the journal totalled per account, lapas of the entry and
entry kind, before and inside a lapas' month — read-only, one statement — then shaped by the pure
:mod:`services.ledger.domain.statements`.

Which lapas an entry belongs to (until every account carries its lapas, issue 17 item 1): its order's
``order_facts.lapas_id``; for an entry of no order, the lapas its lapas-owned lines name (a PNBP deposit, a use of
production capital), else the one lapas whose orders accrued the inmate's savings or the supplier's payable it moves
(a payout, a supplier payment; a supplier that several lapas owe is attributed to none). The line's lapas is then
:func:`services.ledger.domain.statements.lapas_of_account`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml
from sqlalchemy import text

from infra.db.unit_of_work import UnitOfWork
from services.contracts.zones import UnknownZone, lapas_zone
from services.ledger.adapters.periods_repo import all_closed_periods, lapas_province
from services.ledger.domain import accounts, summaries
from services.ledger.domain import statements as shape
from services.ledger.domain.bas import BasMapping, parse_bas
from services.ledger.domain.errors import LedgerDomainError
from services.ledger.domain.periods import Period

__all__ = [
    "BAS_FILE",
    "REPORTS",
    "LapasReport",
    "ReportRefused",
    "all_lapas_totals",
    "bas_mapping",
    "in_zone",
    "lapas_report",
    "movements",
]

BAS_FILE = Path(__file__).with_name("bas_mapping.yaml")
_LAST_INSTANT = timedelta(microseconds=1)

REPORTS = {
    "balance-sheet": shape.balance_sheet,
    "income": shape.income_statement,
    "distribution": shape.distribution_statement,
    "premi": shape.premi_register,
    "pnbp": shape.pnbp_statement,
    "suppliers": shape.supplier_statements,
    "tax": summaries.tax_statement,
}
"""Report name (as the command takes it) → its pure shaping function."""


@lru_cache(maxsize=4)
def bas_mapping(path: Path = BAS_FILE) -> BasMapping:
    """The BAS mapping file, loaded and validated once per process (:class:`BasMappingError` names the problem)."""
    return parse_bas(yaml.safe_load(path.read_text(encoding="utf-8")), str(path))


_MOVEMENTS = """
WITH homes AS (
  SELECT l.account, min(f.lapas_id) AS lapas
    FROM {lines} l JOIN {entries} e USING (sequence) JOIN {facts} f ON f.order_key = e.order_key
   WHERE split_part(l.account, ':', 1) || ':' || split_part(l.account, ':', 2) = ANY(:homed)
     AND (CAST(:k AS timestamptz) IS NULL OR e.recorded_at <= :k)
   GROUP BY l.account HAVING count(DISTINCT f.lapas_id) = 1),
entry AS (
  SELECT e.sequence, e.kind, e.effective_at < CAST(:s AS timestamptz) AS before,
         coalesce(
           f.lapas_id,
           (SELECT min(nullif(split_part(o.account, ':', 3), '')) FROM {lines} o WHERE o.sequence = e.sequence
               AND split_part(o.account, ':', 1) || ':' || split_part(o.account, ':', 2) = ANY(:owned)),
           (SELECT min(h.lapas) FROM {lines} o JOIN homes h USING (account) WHERE o.sequence = e.sequence)
         ) AS lapas
    FROM {entries} e LEFT JOIN {facts} f ON f.order_key = e.order_key
   WHERE e.effective_at <= :t AND (CAST(:k AS timestamptz) IS NULL OR e.recorded_at <= :k))
SELECT l.account, e.lapas, e.kind, coalesce(e.before, false) AS before,
       coalesce(sum(l.amount) FILTER (WHERE l.side = 'D'), 0)::bigint AS debit,
       coalesce(sum(l.amount) FILTER (WHERE l.side = 'C'), 0)::bigint AS credit
  FROM {lines} l JOIN entry e USING (sequence)
 GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4"""


async def movements(
    uow: UnitOfWork, start: datetime | None, as_of: datetime, known_at: datetime | None = None
) -> list[shape.Movement]:
    """Every account's debit and credit per entry lapas and entry kind, effective before ``start`` (``before``) or
    from it up to and including ``as_of`` (``start`` ``None``: everything up to ``as_of`` is inside); with
    ``known_at``, of the entries recorded at or before it only (``journal_entries.recorded_at``)."""
    homed = sorted(f"{k.type}:{k.name}" for k in accounts.KINDS.values() if k.owner in ("inmate", "supplier", "payee"))
    sql = _MOVEMENTS.format(
        lines=uow.table("journal_lines"), entries=uow.table("journal_entries"), facts=uow.table("order_facts")
    )
    rows = await uow.conn.execute(
        text(sql), {"s": start, "t": as_of, "k": known_at, "owned": shape.lapas_owned_kinds(), "homed": homed}
    )
    return [shape.Movement(r.account, r.lapas, r.kind, bool(r.before), int(r.debit), int(r.credit)) for r in rows]


@dataclass(frozen=True)
class LapasReport:
    """One report of one lapas and month: where it was counted, up to which effective instant (``as_of``) and over
    the entries recorded by when (``known_at``), whether the month was closed by then, its data."""

    lapas_id: str
    period: Period
    zone: ZoneInfo
    starts_at: datetime
    as_of: datetime
    known_at: datetime
    closed_by: str | None
    data: Any

    def header(self) -> dict[str, Any]:
        """The report's identification, as JSON gives it."""
        return {
            "lapas_id": self.lapas_id,
            "period": str(self.period),
            "zone": self.zone.key,
            "starts_at": self.starts_at.astimezone(self.zone).isoformat(),
            "as_of": self.as_of.astimezone(self.zone).isoformat(),
            "known_at": self.known_at.astimezone(self.zone).isoformat(),
            "closed_by": self.closed_by,
        }


class ReportRefused(LedgerDomainError):
    """A report that cannot be made (an unknown lapas, a lapas without a zone, an unknown report)."""


async def lapas_report(
    uow: UnitOfWork,
    report: str,
    lapas_id: str,
    period: Period,
    *,
    catalogue_schema: str,
    as_of: datetime | None = None,
    known_at: datetime | None = None,
    bas: BasMapping | None = None,
) -> LapasReport:
    """``report`` (a key of :data:`REPORTS`) of ``lapas_id`` for ``period``, counted in the lapas' zone, as of the
    period's last instant or ``as_of`` if earlier given (effective time), over the entries recorded up to
    ``known_at`` if given (else every entry recorded so far, the report saying now). A time without an offset is
    the lapas' wall clock."""
    if report not in REPORTS:
        raise ReportRefused(f"unknown report {report!r}: one of {', '.join(REPORTS)}")
    known, province = await lapas_province(uow, lapas_id, catalogue_schema)
    if not known:
        raise ReportRefused(f"the catalogue has no lapas {lapas_id!r}")
    try:
        zone = lapas_zone(lapas_id, province)
    except UnknownZone as exc:
        raise ReportRefused(str(exc)) from exc
    starts_at, ends_at = period.bounds(zone)
    as_of, known_at = in_zone(as_of, zone), in_zone(known_at, zone)
    until = ends_at - _LAST_INSTANT if as_of is None else min(as_of, ends_at - _LAST_INSTANT)
    closed = next(
        (
            p
            for p in await all_closed_periods(uow, lapas_id)
            if p.period == period and (known_at is None or p.closed_at is None or p.closed_at <= known_at)
        ),
        None,
    )
    book = shape.books(await movements(uow, starts_at, until, known_at), lapas_id)
    data = REPORTS[report](book, bas or bas_mapping())
    closed_by = None if closed is None else closed.closed_by
    recorded_by = datetime.now(UTC) if known_at is None else known_at
    return LapasReport(lapas_id, period, zone, starts_at, until, recorded_by, closed_by, data)


def in_zone(moment: datetime | None, zone: ZoneInfo) -> datetime | None:
    """``moment`` as an instant: a time that names no offset is read on ``zone``'s wall clock."""
    return moment if moment is None or moment.tzinfo is not None else moment.replace(tzinfo=zone)


async def all_lapas_totals(
    uow: UnitOfWork, as_of: datetime, bas: BasMapping | None = None
) -> dict[str, dict[str, int]]:
    """Per lapas that has lines: :func:`services.ledger.domain.summaries.lapas_totals` of its whole books up to
    ``as_of`` (every entry counted as inside one period: what `make demo` prints)."""
    moves = await movements(uow, None, as_of)
    mapping = bas or bas_mapping()
    return {lapas: summaries.lapas_totals(shape.books(moves, lapas), mapping) for lapas in shape.attributed(moves)}
