"""Exact amount parsing of the marketplace API clients: whole rupiah only, never rounded."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.gateway.clients.base import MarketplaceApiError, NonIntegralAmount
from services.gateway.clients.parsing import (
    ceil_unix,
    ceil_unix_ms,
    parse_amount,
    parse_fee,
    parse_non_negative,
    parse_quantity,
    parse_unix,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (150000, 150000),
        (150000.0, 150000),
        ("25000", 25000),
        ("25000.00", 25000),
        ("-2500", -2500),
        (Decimal("25000.0"), 25000),
        (0, 0),
        ("0", 0),
    ],
)
def test_whole_amounts_are_accepted(value: object, expected: int) -> None:
    assert parse_amount(value, "price") == expected
    assert type(parse_amount(value, "price")) is int


@pytest.mark.parametrize(
    "value",
    [
        150000.5,
        "25000.50",
        "25000.5",
        Decimal("25000.00000000000001"),
        float("nan"),
        float("inf"),
        True,
        None,
        "1e5",
        " 25000",
        "25,000",
        "",
        "abc",
        [25000],
    ],
)
def test_anything_else_is_non_integral_and_names_the_field(value: object) -> None:
    with pytest.raises(NonIntegralAmount, match=r"^items\[0\]\.price: "):
        parse_amount(value, "items[0].price")


def test_fees_are_absolute_and_totals_must_not_be_negative() -> None:
    assert parse_fee("-2250", "fee") == 2250
    assert parse_fee(2250.0, "fee") == 2250
    with pytest.raises(MarketplaceApiError, match="gross"):
        parse_non_negative(-1, "gross")


def test_quantities_are_positive_whole_numbers() -> None:
    assert parse_quantity(2.0, "qty") == 2
    with pytest.raises(NonIntegralAmount, match=r"qty.*units"):
        parse_quantity(1.5, "qty")
    with pytest.raises(MarketplaceApiError, match="positive"):
        parse_quantity(0, "qty")


@given(st.integers(min_value=-(10**15), max_value=10**15))
def test_every_integer_round_trips_through_each_encoding(n: int) -> None:
    assert parse_amount(n, "x") == n
    assert parse_amount(str(n), "x") == n
    assert parse_amount(f"{n}.000", "x") == n
    assert parse_amount(Decimal(n), "x") == n


@given(st.integers(min_value=-(10**12), max_value=10**12), st.integers(min_value=1, max_value=99))
def test_every_fraction_is_rejected(n: int, cents: int) -> None:
    with pytest.raises(NonIntegralAmount):
        parse_amount(f"{n}.{cents:02d}", "x")


def test_unix_times() -> None:
    assert parse_unix(1761984000, "t") == datetime(2025, 11, 1, 8, 0, tzinfo=UTC)
    assert ceil_unix(datetime(2025, 11, 1, 8, 0, 0, 1, tzinfo=UTC)) == 1761984001
    assert ceil_unix_ms(datetime(2025, 11, 1, 8, 0, 0, 1, tzinfo=UTC)) == 1761984000001
    with pytest.raises(MarketplaceApiError):
        parse_unix("yesterday", "t")
