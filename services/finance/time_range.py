"""The moments a query of the workspace may name: from :data:`FIRST` to before :data:`LAST` (UTC).

A moment outside them answers 422 naming the field. Without this bound a zone-shifted ``0001-01-01T00:00+01:00``
reached PostgreSQL as a date before year 1 (a database error, a 500) and the end of ``9999-12-31`` overflowed
Python's dates. No ledger entry is that old or that far ahead, so the bound changes no answer."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

FIRST = datetime(1900, 1, 1, tzinfo=UTC)
LAST = datetime(9999, 1, 1, tzinfo=UTC)
OUTSIDE = f"outside the years the ledger can hold ({FIRST.year}-{LAST.year - 1})"


def accepted_moment(value: datetime) -> datetime:
    """``value`` (a zone-aware time) when it lies within the range; ``ValueError(OUTSIDE)`` otherwise."""
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        raise ValueError(OUTSIDE) from None
    if not FIRST <= utc < LAST:
        raise ValueError(OUTSIDE)
    return value


def accepted_day(value: date) -> date:
    """``value`` when the whole day, in any zone, lies within the range; ``ValueError(OUTSIDE)`` otherwise."""
    if not FIRST.date() < value < LAST.date() - timedelta(days=1):
        raise ValueError(OUTSIDE)
    return value
