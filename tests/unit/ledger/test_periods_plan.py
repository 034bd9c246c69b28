"""Accounting periods, pure: a month's bounds in a lapas' zone, the rules of a close, and where a late item posts.

Properties (Hypothesis): a month of any zone starts at local midnight of the 1st and ends where the next begins; the
effective time chosen for an item is never inside a closed period, never before its natural time, the natural time
itself when that is open, and otherwise the start of the first open period after it (every instant in between is
closed). The posting plan moves a late settlement's entries and names the period they belong to, hashes unchanged.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.contracts.zones import PROVINCE_ZONES, WIB, WITA, lapas_zone
from services.ledger.domain.journal import EntryKind
from services.ledger.domain.periods import (
    ClosedPeriod,
    Period,
    PeriodRefused,
    open_effective_at,
    place_entries,
    plan_close,
)
from services.ledger.posting_plan import PostingInputs, batch_lapas, plan_postings
from services.ledger.requests import RecentCompletions
from tests.integration.ledger_support import Batch, completed, settled
from tests.unit.ledger.ledger_support import DEMO_POLICIES

ZONES = sorted({ZoneInfo(z) for z in PROVINCE_ZONES.values()}, key=lambda z: z.key)
OFFSETS = {"Asia/Jakarta": 7, "Asia/Makassar": 8, "Asia/Jayapura": 9}
periods = st.builds(Period, st.integers(1900, 9997), st.integers(1, 12))
zones = st.sampled_from(ZONES)


def _closed(lapas: str, period: Period, zone: ZoneInfo) -> ClosedPeriod:
    starts_at, ends_at = period.bounds(zone)
    return ClosedPeriod(lapas, period, zone.key, starts_at, ends_at, "ani", ends_at + timedelta(days=1))


def _months(first: Period, count: int) -> list[Period]:
    months = [first]
    for _ in range(count - 1):
        months.append(months[-1].next())
    return months


def test_a_period_is_a_month_written_yyyy_mm() -> None:
    assert Period.parse("2026-11") == Period(2026, 11) and str(Period(2026, 1)) == "2026-01"
    assert Period(2026, 12).next() == Period(2027, 1)
    for bad in ("2026-13", "2026-1", "26-11", "2026/11", "November", "", "2026-00", "0001-01"):
        with pytest.raises(PeriodRefused, match=r"\(period_format\)"):
            Period.parse(bad)


@given(periods, zones)
def test_a_month_runs_from_local_midnight_of_the_first_to_that_of_the_next(period: Period, zone: ZoneInfo) -> None:
    starts_at, ends_at = period.bounds(zone)
    assert (starts_at.year, starts_at.month, starts_at.day, starts_at.hour, starts_at.minute) == (
        period.year,
        period.month,
        1,
        0,
        0,
    )
    if period.year >= 1990:  # the zones' offsets moved until the 1960s–80s (tzdata keeps the history)
        assert starts_at.utcoffset() == timedelta(hours=OFFSETS[zone.key])  # and there is no summer time
    assert ends_at == period.next().bounds(zone)[0]
    assert timedelta(days=28) <= ends_at - starts_at <= timedelta(days=31)


def test_kerobokan_counts_november_in_wita() -> None:
    starts_at, ends_at = Period(2026, 11).bounds(lapas_zone("kerobokan", "Bali"))
    assert starts_at == datetime(2026, 10, 31, 16, tzinfo=UTC) and ends_at == datetime(2026, 11, 30, 16, tzinfo=UTC)


@given(
    first=periods.filter(lambda p: p.year < 9990),
    closed_flags=st.lists(st.booleans(), min_size=1, max_size=14),
    zone=zones,
    offset=st.integers(min_value=-40 * 86_400, max_value=15 * 31 * 86_400),
)
def test_the_chosen_effective_time_is_never_closed_nor_before_the_natural_one(
    first: Period, closed_flags: list[bool], zone: ZoneInfo, offset: int
) -> None:
    months = _months(first, len(closed_flags))
    closed = [_closed("x", m, zone) for m, flag in zip(months, closed_flags, strict=True) if flag]
    natural = first.bounds(zone)[0] + timedelta(seconds=offset, microseconds=offset % 999_983)
    chosen, belongs = open_effective_at(natural, closed)
    assert chosen >= natural
    assert not any(p.contains(chosen) for p in closed)
    if not any(p.contains(natural) for p in closed):
        assert (chosen, belongs) == (natural, None)
    else:
        assert belongs is not None and belongs.contains(natural)
        # the start of the first open period: a month start in the zone, and nothing open in between
        local = chosen.astimezone(zone)
        assert (local.day, local.hour, local.minute, local.second, local.microsecond) == (1, 0, 0, 0, 0)
        assert any(p.ends_at == chosen for p in closed)
        between = [p for p in closed if natural < p.ends_at <= chosen]
        assert sum((p.ends_at - max(p.starts_at, natural) for p in between), timedelta()) == chosen - natural


NOW = datetime(2026, 12, 3, 2, tzinfo=UTC)


def test_a_close_needs_a_person_a_month_that_has_ended_and_happens_once() -> None:
    wita, wib = ZoneInfo(WITA), ZoneInfo(WIB)
    closed = plan_close("kerobokan", "2026-11", wita, [], " ani ", NOW)
    assert (closed.closed_by, closed.zone, closed.closed_at) == ("ani", WITA, NOW)
    assert closed.starts_at == datetime(2026, 11, 1, tzinfo=wita) and closed.ends_at == datetime(
        2026, 12, 1, tzinfo=wita
    )
    with pytest.raises(PeriodRefused, match=r"\(acting_user_required\)"):
        plan_close("kerobokan", "2026-11", wita, [], "  ", NOW)
    with pytest.raises(PeriodRefused, match=r"\(period_format\)"):
        plan_close("kerobokan", "2026-11-30", wita, [], "ani", NOW)
    with pytest.raises(PeriodRefused, match=r"\(month_ended\): 2026-12 of kerobokan has not ended in Asia/Makassar"):
        plan_close("kerobokan", "2026-12", wita, [], "ani", NOW)
    # December 2026 ends at 2027-01-01 00:00 local: a minute before in WIB it has not, a minute after it has
    end = datetime(2027, 1, 1, tzinfo=wib)
    with pytest.raises(PeriodRefused, match=r"\(month_ended\)"):
        plan_close("cipinang", "2026-12", wib, [], "ani", end - timedelta(minutes=1))
    assert plan_close("cipinang", "2026-12", wib, [], "ani", end).period == Period(2026, 12)
    with pytest.raises(PeriodRefused, match=r"\(close_once\): 2026-11 of kerobokan was closed by ani"):
        plan_close("kerobokan", "2026-11", wita, [closed], "budi", NOW)
    assert plan_close("cipinang", "2026-11", wib, [closed], "budi", NOW).lapas_id == "cipinang"


KEY = "shopee:shop-krb:77"
WBP = "WBP-KRB001"
ORDER = [Batch("B-KRB-77", "KRB-CCN-001", "kerobokan", 2, 50_000, 10_000, "sup-kelapa", ((WBP, 1),))]


def test_a_late_settlement_posts_at_the_start_of_the_first_open_period_naming_the_one_it_belongs_to() -> None:
    wita = ZoneInfo(WITA)
    completion = completed(KEY, ORDER, datetime(2026, 11, 20, 10, tzinfo=wita))
    natural = datetime(2026, 11, 30, 23, 30, tzinfo=wita)
    settlement = settled(KEY, 100_000, natural)
    november, december = _closed("kerobokan", Period(2026, 11), wita), _closed("kerobokan", Period(2026, 12), wita)
    work = [completion, settlement]
    assert batch_lapas(work, {}) == {"kerobokan"}
    open_plan = plan_postings(PostingInputs(work, {}, DEMO_POLICIES), RecentCompletions())
    late_plan = plan_postings(
        PostingInputs(work, {}, DEMO_POLICIES, closed={"kerobokan": [november, december]}), RecentCompletions()
    )
    kinds = {e.kind for e, _ in late_plan.entries}
    assert kinds == {EntryKind.SALE_COMPLETED, EntryKind.SETTLEMENT, EntryKind.DISTRIBUTION}
    assert [e.posting_key for e, _ in late_plan.entries] == [e.posting_key for e, _ in open_plan.entries]
    for (late, _), (entry, _) in zip(late_plan.entries, open_plan.entries, strict=True):
        assert late.request_hash == entry.request_hash and late.lines == entry.lines  # same request, same money
        assert late.effective_at == datetime(2027, 1, 1, tzinfo=wita)  # November and December are closed
        assert late.memo == entry.memo + (
            "; late: belongs to closed period 2026-11 of kerobokan "
            f"(natural effective {entry.effective_at.astimezone(wita).isoformat()}), posted in 2027-01"
        )
    # another lapas' closed period changes nothing
    other = plan_postings(PostingInputs(work, {}, DEMO_POLICIES, closed={"cipinang": [november]}), RecentCompletions())
    assert [e for e, _ in other.entries] == [e for e, _ in open_plan.entries]


def test_entries_of_no_order_or_of_an_open_lapas_are_left_as_they_are() -> None:
    wita = ZoneInfo(WITA)
    plan = plan_postings(
        PostingInputs([completed(KEY, ORDER, datetime(2026, 11, 20, tzinfo=wita))], {}, DEMO_POLICIES),
        RecentCompletions(),
    )
    entry, source = plan.entries[0]
    november = _closed("kerobokan", Period(2026, 11), wita)
    assert place_entries([(entry, source)], {}, {"kerobokan": [november]}) == [(entry, source)]
    assert place_entries([(entry, source)], {KEY: "kerobokan"}, {}) == [(entry, source)]
    moved = place_entries([(entry, source)], {KEY: "kerobokan"}, {"kerobokan": [november]})
    assert moved[0][0].effective_at == november.ends_at and moved[0][1] == source
