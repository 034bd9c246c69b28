"""The moments a workspace query may name: every zone-aware datetime Python can build is either accepted (and
then PostgreSQL can hold it in UTC, and its day's end can be computed) or refused with the one message."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from services.finance.time_range import FIRST, LAST, OUTSIDE, accepted_day, accepted_moment

zones = st.builds(
    timezone, st.timedeltas(min_value=timedelta(hours=-23, minutes=-59), max_value=timedelta(hours=23, minutes=59))
)


@given(st.datetimes(timezones=zones))
def test_a_moment_is_accepted_exactly_when_its_utc_time_is_in_range(value: datetime) -> None:
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        utc = None
    inside = utc is not None and FIRST <= utc < LAST
    if inside:
        assert accepted_moment(value) is value
    else:
        with pytest.raises(ValueError, match="outside the years"):
            accepted_moment(value)


@given(st.dates(), zones)
@example(date(9998, 12, 30), timezone(timedelta(hours=-23, minutes=-59)))
@example(date(1900, 1, 2), timezone(timedelta(hours=23, minutes=59)))
def test_an_accepted_day_starts_and_ends_inside_the_range_in_every_zone(day: date, zone: timezone) -> None:
    try:
        accepted_day(day)
    except ValueError as exc:
        assert str(exc) == OUTSIDE
        return
    start = datetime.combine(day, datetime.min.time(), tzinfo=zone)
    end = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=zone)
    assert accepted_moment(start) is start and accepted_moment(end - timedelta(microseconds=1))


def test_the_edges() -> None:
    assert accepted_moment(FIRST) is FIRST
    with pytest.raises(ValueError):
        accepted_moment(LAST)
    with pytest.raises(ValueError):
        accepted_moment(datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1))))
    with pytest.raises(ValueError):
        accepted_day(date(9999, 12, 31))
    with pytest.raises(ValueError):
        accepted_day(date(9998, 12, 31))
