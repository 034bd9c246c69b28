"""Accounting periods: a lapas' month, closing it, and where a late item posts. Pure: no database, no clock.

A period is a calendar month of one lapas, counted in the lapas' own zone (:mod:`services.contracts.zones`):
``2026-11`` of a lapas in Bali runs from 1 November 00:00 WITA to 1 December 00:00 WITA, an instant range
``[starts_at, ends_at)``. Closing it (:func:`plan_close`) locks it: nothing posts with an effective time inside.
A **late item** — a settlement, refund or correction whose natural effective time falls in a closed period of its
lapas — posts at the start of the first open period after it (:func:`open_effective_at`:
``max(natural, start of the first open period)``), and its memo names the period it belongs to
(:func:`place_entries`, :data:`LATE_NOTE`). So a report of the closed period as of its end never changes again.

Reopening a period is not supported: a closed period stays closed (its row is append-only).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TypeVar
from zoneinfo import ZoneInfo

from services.ledger.domain.errors import LedgerDomainError
from services.ledger.domain.journal import JournalEntry

__all__ = [
    "LATE_NOTE",
    "ClosedPeriod",
    "Period",
    "PeriodRefused",
    "open_effective_at",
    "place_entries",
    "plan_close",
]

_PERIOD = re.compile(r"(\d{4})-(0[1-9]|1[0-2])")
LATE_NOTE = "; late: belongs to closed period {period} of {lapas} (natural effective {natural}), posted in {open}"
"""What a late entry's memo gets: the period it belongs to and its natural effective time (in the lapas' zone)."""
S = TypeVar("S")


class PeriodRefused(LedgerDomainError):
    """A close that breaks a rule; ``rule`` names it (``period_format``, ``acting_user_required``, ``month_ended``,
    ``close_once``)."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(f"close refused ({rule}): {message}")
        self.rule = rule


@dataclass(frozen=True, order=True, slots=True)
class Period:
    """A calendar month, ``YYYY-MM``."""

    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> Period:
        """``2026-11`` as a period; :class:`PeriodRefused` (``period_format``) for anything else."""
        match = _PERIOD.fullmatch(text.strip())
        if match is None or not 1900 <= int(match.group(1)) <= 9998:
            raise PeriodRefused("period_format", f"a period is a month written YYYY-MM, e.g. 2026-11; got {text!r}")
        return cls(int(match.group(1)), int(match.group(2)))

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    def next(self) -> Period:
        """The month after this one."""
        return Period(self.year + 1, 1) if self.month == 12 else Period(self.year, self.month + 1)

    def bounds(self, zone: ZoneInfo) -> tuple[datetime, datetime]:
        """``[starts_at, ends_at)``: local midnight of the 1st of this month and of the next, in ``zone``."""
        after = self.next()
        return datetime(self.year, self.month, 1, tzinfo=zone), datetime(after.year, after.month, 1, tzinfo=zone)


@dataclass(frozen=True, slots=True)
class ClosedPeriod:
    """A closed month of one lapas: its bounds in the zone it was counted in, who closed it and when."""

    lapas_id: str
    period: Period
    zone: str
    starts_at: datetime
    ends_at: datetime
    closed_by: str
    closed_at: datetime | None = None

    def contains(self, moment: datetime) -> bool:
        """Whether ``moment`` is inside the period (``starts_at <= moment < ends_at``)."""
        return self.starts_at <= moment < self.ends_at


def plan_close(
    lapas_id: str,
    period_text: str,
    zone: ZoneInfo,
    closed: Sequence[ClosedPeriod],
    acting: str | None,
    now: datetime,
) -> ClosedPeriod:
    """The period to close: ``period_text`` of ``lapas_id`` counted in ``zone``, closed by ``acting`` at ``now``.

    Refused (:class:`PeriodRefused`) without an acting user, for a malformed period, for a month that has not ended
    in the lapas' zone at ``now``, and for a period ``closed`` (the lapas' closed periods) already holds."""
    if not (acting or "").strip():
        raise PeriodRefused("acting_user_required", "say who closes the period (--as USER or KARYA_USER)")
    period = Period.parse(period_text)
    starts_at, ends_at = period.bounds(zone)
    if now < ends_at:
        raise PeriodRefused(
            "month_ended",
            f"{period} of {lapas_id} has not ended in {zone.key}: it ends {ends_at.isoformat()}",
        )
    for done in closed:
        if done.lapas_id == lapas_id and done.period == period:
            when = "" if done.closed_at is None else f" at {done.closed_at.isoformat()}"
            raise PeriodRefused("close_once", f"{period} of {lapas_id} was closed by {done.closed_by}{when}")
    return ClosedPeriod(lapas_id, period, zone.key, starts_at, ends_at, str(acting).strip(), now)


def open_effective_at(natural: datetime, closed: Sequence[ClosedPeriod]) -> tuple[datetime, ClosedPeriod | None]:
    """Where an item whose natural effective time is ``natural`` posts among ``closed`` (one lapas' periods): at
    ``natural`` when no closed period contains it, else at the end of the run of closed periods from there (the
    start of the first open period) — with the closed period ``natural`` belongs to."""
    moment, belongs = natural, None
    while True:
        holding = next((p for p in closed if p.contains(moment)), None)
        if holding is None:
            return moment, belongs
        belongs = belongs or holding
        moment = holding.ends_at  # strictly later: each period is passed at most once


def place_entries(
    entries: Sequence[tuple[JournalEntry, S]],
    lapas_of: Mapping[str, str],
    closed: Mapping[str, Sequence[ClosedPeriod]],
) -> list[tuple[JournalEntry, S]]:
    """``entries`` (with their sources) moved out of closed periods: an entry of an order (``lapas_of``: order key
    → lapas) whose effective time falls in a closed period of its lapas gets the start of the first open period as
    its effective time and the :data:`LATE_NOTE` in its memo; every other entry is returned as it is."""
    if not closed:
        return list(entries)
    placed = []
    for entry, source in entries:
        periods = closed.get(lapas_of.get(entry.order_key or "", ""), ())
        moment, belongs = open_effective_at(entry.effective_at, periods) if periods else (entry.effective_at, None)
        if belongs is not None:
            zone = ZoneInfo(belongs.zone)
            note = LATE_NOTE.format(
                period=belongs.period,
                lapas=belongs.lapas_id,
                natural=entry.effective_at.astimezone(zone).isoformat(),
                open=moment.astimezone(zone).strftime("%Y-%m"),
            )
            entry = replace(entry, effective_at=moment, memo=entry.memo + note)
        placed.append((entry, source))
    return placed
