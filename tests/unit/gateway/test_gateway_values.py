"""The gateway's one parser of money, quantities and timestamps: what it accepts, and that every refusal is a
``BadValue`` (bad content: rejected) whose message names the field and never the value."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from services.gateway.clients.parsing import ceil_unix, ceil_unix_ms
from services.gateway.normalise import ParseError
from services.gateway.values import (
    MAX_UNIX_MS,
    UNIX_MS_FROM,
    BadValue,
    NonIntegralAmount,
    parse_count,
    parse_fee,
    parse_quantity,
    parse_rupiah,
    parse_time,
    rejection_context,
)

FIELD = "amt.ttl_amount"
T = 1761984000
WHEN = datetime(2025, 11, 1, 8, 0, tzinfo=UTC)

anything = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.decimals() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=5,
)


def refused(parse: object, value: object) -> BadValue:
    """The error ``parse(value, FIELD)`` raises: a BadValue naming the field, never quoting the value."""
    assert callable(parse)
    with pytest.raises(BadValue) as info:
        parse(value, FIELD)
    message = str(info.value)
    assert message.startswith(f"{FIELD}: ")
    if isinstance(value, str) and len(value.strip()) > 2:
        assert value.strip() not in message.removeprefix(f"{FIELD}: ")
    return info.value


# --- money -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value", [150000, 150000.0, Decimal("150000.000"), "150000", "150000.00", "+150000", "0150000"]
)
def test_integral_amounts_in_every_published_shape_are_accepted(value: object) -> None:
    amount = parse_rupiah(value, FIELD)
    assert amount == 150000
    assert type(amount) is int


@pytest.mark.parametrize("value", [150000.5, "150000.5", "150000.50", Decimal("25000.00000000000001"), 0.1, "-0.5"])
def test_fractional_amounts_raise_non_integral_amount(value: object) -> None:
    assert isinstance(refused(lambda v, f: parse_rupiah(v, f, allow_negative=True), value), NonIntegralAmount)


@pytest.mark.parametrize(
    "value",
    [
        " 150000",
        "150000 ",
        "\t150000",
        "abc",
        "",
        "1.5E5",
        "150.000,00",
        "150.000,00",
        "Rp150000",
        "NaN",
        "inf",
        "١٥٠",  # non-ASCII digits
        True,
        None,
        float("nan"),
        float("inf"),
        Decimal("NaN"),
        Decimal("Infinity"),
        [150000],
        {"amount": 150000},
    ],
)
def test_anything_else_is_a_bad_value_not_a_non_integral_amount(value: object) -> None:
    assert not isinstance(refused(parse_rupiah, value), NonIntegralAmount)


def test_negative_amounts_need_permission_and_fees_drop_the_sign() -> None:
    assert "negative" in str(refused(parse_rupiah, -1500))
    assert parse_rupiah("-1500.00", FIELD, allow_negative=True) == -1500
    assert parse_fee("-2250", FIELD) == parse_fee(2250.0, FIELD) == 2250


def test_decimal_strings_are_exact_beyond_float_precision() -> None:
    assert parse_rupiah("9007199254740993", FIELD) == 9007199254740993  # 2**53 + 1: a float would lose it
    assert isinstance(refused(parse_rupiah, "9007199254740993.001"), NonIntegralAmount)


@given(st.integers(min_value=-(2**63), max_value=2**63))
def test_whole_amounts_round_trip_in_every_spelling(n: int) -> None:
    spellings: list[object] = [n, str(n), f"{n}.00", Decimal(n), Decimal(f"{n}.000")]
    if abs(n) <= 2**53:
        spellings.append(float(n))
    for value in spellings:
        assert parse_rupiah(value, FIELD, allow_negative=True) == n


@given(st.integers(min_value=-(2**40), max_value=2**40), st.integers(min_value=1, max_value=99))
def test_any_fraction_is_refused_as_non_integral(n: int, cents: int) -> None:
    sign = "-" if n < 0 else ""
    for value in (f"{sign}{abs(n)}.{cents:02d}", Decimal(f"{sign}{abs(n)}.{cents:02d}"), n + cents / 100):
        with pytest.raises(NonIntegralAmount):
            parse_rupiah(value, FIELD, allow_negative=True)


@given(anything)
def test_every_input_gives_an_int_or_a_bad_value_never_another_error(value: object) -> None:
    for parse in (parse_rupiah, parse_fee, parse_quantity, parse_count, parse_time):
        try:
            result = parse(value, FIELD)
        except BadValue as exc:
            assert str(exc).startswith(f"{FIELD}: ")
            assert rejection_context(exc) is not None
        else:
            assert isinstance(result, int | datetime)


@given(st.text())
def test_text_is_accepted_only_in_plain_decimal_notation(text: str) -> None:
    try:
        amount = parse_rupiah(text, FIELD, allow_negative=True)
    except BadValue:
        return
    assert text == text.strip() and text.lstrip("+-").replace(".", "", 1).isdigit() and text.isascii()
    assert Decimal(text) == amount


# --- quantities and counts -------------------------------------------------------------------------------


def test_quantities_are_positive_whole_numbers() -> None:
    assert parse_quantity(2.0, FIELD) == parse_quantity("2", FIELD) == 2
    for bad in (0, -1, 1.5, "1.5", "x", " 2"):
        assert not isinstance(refused(parse_quantity, bad), NonIntegralAmount)
    assert parse_count(0, FIELD) == 0
    refused(parse_count, -1)


# --- timestamps ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [T, float(T), str(T), Decimal(T), T * 1000, str(T * 1000), "2025-11-01T08:00:00Z", "2025-11-01T15:00:00+07:00"],
)
def test_seconds_milliseconds_and_zoned_iso_are_the_same_instant(value: object) -> None:
    moment = parse_time(value, FIELD)
    assert moment == WHEN
    assert moment.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "value",
    [
        0,
        -1,
        "-1",
        MAX_UNIX_MS,
        10**30,
        T + 0.5,
        "1761984000.5",
        " 1761984000",
        "2025-11-01T08:00:00",  # no zone
        "2025-11-01",
        "yesterday",
        "",
        None,
        True,
        float("inf"),
        [T],
    ],
)
def test_other_times_are_bad_values(value: object) -> None:
    refused(parse_time, value)


@given(st.integers(min_value=1, max_value=UNIX_MS_FROM - 1))
def test_unix_seconds_round_trip(seconds: int) -> None:
    moment = parse_time(seconds, FIELD)
    assert moment.timestamp() == seconds
    assert parse_time(str(seconds), FIELD) == moment


@given(st.integers(min_value=UNIX_MS_FROM, max_value=MAX_UNIX_MS - 1))
def test_unix_milliseconds_round_trip(millis: int) -> None:
    moment = parse_time(millis, FIELD)
    assert ceil_unix_ms(moment) == millis
    assert moment == datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=millis)


@given(
    st.datetimes(min_value=datetime(1973, 3, 4), max_value=datetime(5000, 1, 1)),
    st.integers(min_value=-23 * 60 - 59, max_value=23 * 60 + 59),
)
def test_zoned_iso_round_trips_and_every_plausible_moment_reads_back_from_seconds_and_millis(
    naive: datetime, offset_minutes: int
) -> None:
    moment = naive.replace(tzinfo=timezone(timedelta(minutes=offset_minutes)))
    assert parse_time(moment.isoformat(), FIELD) == moment
    whole = moment.replace(microsecond=0)
    assert parse_time(ceil_unix(whole), FIELD) == whole  # seconds: below 10**11
    millis = whole.replace(microsecond=(moment.microsecond // 1000) * 1000)
    assert parse_time(ceil_unix_ms(millis), FIELD) == millis  # milliseconds: from 10**11


def test_window_bounds_round_up() -> None:
    assert ceil_unix(datetime(2025, 11, 1, 8, 0, 0, 1, tzinfo=UTC)) == T + 1
    assert ceil_unix_ms(datetime(2025, 11, 1, 8, 0, 0, 1, tzinfo=UTC)) == T * 1000 + 1


# --- rejected or retried ---------------------------------------------------------------------------------


class _Model(BaseModel):
    n: int


def test_one_mapping_from_errors_to_rejected_or_retried() -> None:
    with pytest.raises(ValidationError) as invalid:
        _Model.model_validate({"n": "x"})
    assert rejection_context(NonIntegralAmount("x: not a whole number of rupiah")) == "non-integral amount"
    assert rejection_context(BadValue("x: negative amount")) == "unparseable"
    assert rejection_context(ParseError("missing field x")) == "unparseable"
    assert rejection_context(invalid.value) == "invalid"
    # Not about the content: transient, retried.
    for transient in (ValueError("year 51000 is out of range"), OSError(), TimeoutError(), RuntimeError()):
        assert rejection_context(transient) is None
