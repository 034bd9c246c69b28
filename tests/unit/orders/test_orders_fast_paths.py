"""The orders handler's per-event fast paths agree with the reference code they stand in for."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from infra.db.rowsets import json_rows, json_texts
from services.orders.domain.channels import STATUS_TABLES, Channel, StatusMapper, UnmappableStatus
from services.orders.domain.lifecycle import (
    OrderState,
    fold,
)
from services.orders.domain.records import Held
from services.orders.domain.stock import MovementKind, StockCounters, StockInvariantViolation, apply_movement
from services.orders.stock_plan import StockInputs, StockPlan

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
EARLIEST, LATEST = datetime(1, 1, 2, tzinfo=UTC), datetime(9999, 12, 30, tzinfo=UTC)


def test_fold_rejects_naive_times() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        fold(None, OrderState.SHIPPED, datetime(2026, 3, 1, 8, 0))


raw_statuses = st.one_of(
    st.sampled_from([raw for table in STATUS_TABLES.values() for raw in table]),
    st.sampled_from(["220", " 220 ", "unpaid", "Shipped ", "x", "", "٢٢٠", "7oo"]),
    st.integers(-1, 800),
    st.booleans(),
    st.none(),
    st.floats(allow_nan=False, allow_infinity=False),
)
channels = st.one_of(st.sampled_from(Channel), st.sampled_from(["shopee", " Tokopedia", "BLIBLI", "lazada", ""]))


@settings(max_examples=600)
@given(st.lists(st.tuples(channels, raw_statuses), min_size=1, max_size=30))
def test_cached_mapping_is_the_table_lookup(calls: list[tuple[Channel | str, object]]) -> None:
    cached, reference = StatusMapper(), StatusMapper()
    for channel, raw in calls * 2:  # twice: the second round is served from the cache
        try:
            expected: OrderState | str = reference._lookup(channel, raw)
        except UnmappableStatus as exc:
            expected = str(exc)
        try:
            got: OrderState | str = cached.map(channel, raw)
        except UnmappableStatus as exc:
            got = str(exc)
        assert got == expected and type(got) is type(expected)


MOVES = [k for k in MovementKind if k is not MovementKind.RECEIPT]


@settings(max_examples=400)
@given(
    st.tuples(*(st.integers(-1, 6) for _ in range(4))),
    st.lists(st.tuples(st.sampled_from(MOVES), st.one_of(st.integers(-1, 4), st.just(True))), max_size=8),
)
def test_planned_movements_follow_apply_movement(
    start: tuple[int, int, int, int], moves: list[tuple[MovementKind, int]]
) -> None:
    try:
        reference = StockCounters(*start)
    except StockInvariantViolation:
        return
    work = StockPlan(StockInputs(rows=[("B1", "SKU", "W1", "L1", date(2026, 3, 1), *start)]))
    recorded: list[tuple[MovementKind, int]] = []
    for kind, quantity in moves:
        try:
            reference = apply_movement(reference, kind, quantity).counters
            expected: object = None
            recorded.append((kind, quantity))
        except (ValueError, StockInvariantViolation) as exc:
            expected = (type(exc), str(exc))
        try:
            work.record([Held("B1", "SKU", "W1", quantity)], kind, "k", "why")
            got: object = None
        except (ValueError, StockInvariantViolation) as exc:
            got = (type(exc), str(exc))
        assert got == expected
        c = work._counters["B1"]
        assert StockCounters(*c) == reference
    assert [(m.kind, m.quantity) for m in work.movements] == recorded


@given(
    st.lists(
        st.tuples(
            st.text(),
            st.one_of(st.none(), st.integers(-(2**60), 2**60)),
            st.one_of(
                st.none(),
                st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30))])),
                st.sampled_from([datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC)]),
            ),
        ),
        max_size=5,
    )
)
def test_json_rows_carry_values_exactly_or_decline(rows: list[tuple[str, int | None, datetime | None]]) -> None:
    columns: list[list[Any]] = [list(c) for c in zip(*rows, strict=True)] or [[], [], []]
    doc = json_rows(columns, times=(2,))
    if doc is None:
        assert (
            any("\x00" in s or any(0xD800 <= ord(ch) <= 0xDFFF for ch in s) for s in columns[0])
            or any(v is not None and abs(v) >= 2**53 for v in columns[1])
            or any(t is not None and not EARLIEST <= t <= LATEST for t in columns[2])
        )
        return
    back = orjson.loads(doc)
    assert [r[0] for r in back] == columns[0]
    assert [r[1] for r in back] == columns[1]
    assert [None if r[2] is None else datetime.fromisoformat(r[2]) for r in back] == columns[2]


def test_json_rows_decline_what_the_array_form_must_decide() -> None:
    ok: list[list[Any]] = [["a"], [1], [T0]]
    assert json_rows(ok, times=(2,)) is not None
    assert json_rows([["a\x00"], [1], [T0]], times=(2,)) is None
    assert json_rows([["\ud800"], [1], [T0]], times=(2,)) is None
    assert json_rows([["a"], [2**53], [T0]], times=(2,)) is None
    assert json_rows([["a"], [2**31]], ranges=[(1, -(2**31), 2**31 - 1)]) is None
    assert json_rows([["a"], [1], [datetime(2026, 1, 1)]], times=(2,)) is None  # naive
    odd = datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=5, minutes=30, seconds=15)))
    doc = json_rows([["a"], [1], [odd]], times=(2,))
    assert doc is not None and datetime.fromisoformat(orjson.loads(doc)[0][2]) == odd
    assert json_texts(["a", "b"]) == '["a","b"]'
    assert json_texts(["a\x00"]) is None
