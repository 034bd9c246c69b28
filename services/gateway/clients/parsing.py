"""Exact parsing of marketplace API values: whole-rupiah amounts, unix times, required fields.

Marketplaces send money as JSON integers, as JSON floats (``150000.0``) or as decimal strings (TikTok Shop's
``"25000"``). Each is accepted only when it denotes a whole number of rupiah; anything else (``150000.5``,
``"25000.50"``, ``"abc"``, ``true``, ``null``) raises :class:`NonIntegralAmount` naming the field, so the
normaliser dead-letters the event instead of rounding money. Shape problems (a missing field, an object
where a list belongs) raise :class:`MarketplaceApiError`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal

from services.gateway.clients.base import MarketplaceApiError, NonIntegralAmount

__all__ = [
    "ceil_unix",
    "ceil_unix_ms",
    "get_list",
    "get_mapping",
    "get_str",
    "objects",
    "parse_amount",
    "parse_fee",
    "parse_non_negative",
    "parse_quantity",
    "parse_unix",
    "parse_unix_ms",
]

# Plain decimal notation only: no exponents, no thousands separators, no surrounding whitespace.
_DECIMAL_TEXT = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?")


def _not_whole(field: str, value: object, unit: str = "rupiah") -> NonIntegralAmount:
    return NonIntegralAmount(f"{field}: {value!r} is not a whole number of {unit}")


def parse_amount(value: object, field: str) -> int:
    """A whole number of rupiah from an int, an integral float/Decimal or a decimal string (sign kept).

    Raises:
        NonIntegralAmount: the value is not exactly a whole number (the message names ``field``).
    """
    if isinstance(value, bool):
        raise _not_whole(field, value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer():
            return int(value)
        raise _not_whole(field, value)
    if isinstance(value, Decimal):
        if value.is_finite() and value == value.to_integral_value():
            return int(value)
        raise _not_whole(field, value)
    if isinstance(value, str) and _DECIMAL_TEXT.fullmatch(value):
        number = Decimal(value)
        if number == number.to_integral_value():
            return int(number)
    raise _not_whole(field, value)


def parse_fee(value: object, field: str) -> int:
    """A fee amount as a non-negative whole number (TikTok Shop gives deductions as negative strings)."""
    return abs(parse_amount(value, field))


def parse_non_negative(value: object, field: str) -> int:
    """A whole-rupiah amount that must not be negative (gross, net payout, tax withheld)."""
    amount = parse_amount(value, field)
    if amount < 0:
        raise MarketplaceApiError(f"{field}: expected a non-negative amount, got {value!r}")
    return amount


def parse_quantity(value: object, field: str) -> int:
    """A positive whole quantity (``2``, ``2.0`` or ``"2"``); fractions raise :class:`NonIntegralAmount`."""
    try:
        quantity = parse_amount(value, field)
    except NonIntegralAmount:
        raise _not_whole(field, value, "units") from None
    if quantity <= 0:
        raise MarketplaceApiError(f"{field}: expected a positive quantity, got {value!r}")
    return quantity


def parse_unix(value: object, field: str) -> datetime:
    """A timezone-aware UTC datetime from unix seconds (int, integral float or digit string)."""
    seconds = _whole_number(value, field)
    return datetime.fromtimestamp(seconds, tz=UTC)


def parse_unix_ms(value: object, field: str) -> datetime:
    """A timezone-aware UTC datetime from unix milliseconds (Blibli)."""
    millis = _whole_number(value, field)
    return datetime.fromtimestamp(millis / 1000, tz=UTC)


def _whole_number(value: object, field: str) -> int:
    try:
        number = parse_amount(value, field)
    except NonIntegralAmount:
        raise MarketplaceApiError(f"{field}: expected a unix timestamp, got {value!r}") from None
    if number < 0:
        raise MarketplaceApiError(f"{field}: expected a unix timestamp, got {value!r}")
    return number


def ceil_unix(moment: datetime) -> int:
    """Smallest whole unix second not before ``moment`` (turns [start, end) into integer bounds)."""
    return math.ceil(_aware(moment).timestamp())


def ceil_unix_ms(moment: datetime) -> int:
    """Smallest whole unix millisecond not before ``moment``."""
    aware = _aware(moment)
    delta = aware - datetime(1970, 1, 1, tzinfo=UTC)
    micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    return -(-micros // 1000)


def _aware(moment: datetime) -> datetime:
    if moment.utcoffset() is None:
        raise ValueError(f"datetime must be timezone-aware, got {moment!r}")
    return moment


def get_mapping(container: Mapping[str, object], key: str, where: str) -> Mapping[str, object]:
    """``container[key]`` as a JSON object, else :class:`MarketplaceApiError`."""
    value = container.get(key)
    if not isinstance(value, Mapping):
        raise MarketplaceApiError(f"{where}: expected an object at {key!r}, got {_kind(value)}")
    return value


def get_list(container: Mapping[str, object], key: str, where: str) -> Sequence[object]:
    """``container[key]`` as a JSON array, else :class:`MarketplaceApiError`."""
    value = container.get(key)
    if not isinstance(value, list):
        raise MarketplaceApiError(f"{where}: expected a list at {key!r}, got {_kind(value)}")
    return value


def get_str(container: Mapping[str, object], key: str, where: str) -> str:
    """``container[key]`` as a non-empty id string; JSON integers are accepted and written in decimal."""
    value = container.get(key)
    if isinstance(value, str) and value:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise MarketplaceApiError(f"{where}: expected an id at {key!r}, got {_kind(value)}")


def objects(items: Sequence[object], where: str) -> list[Mapping[str, object]]:
    """Every element of a JSON array as an object, else :class:`MarketplaceApiError`."""
    result: list[Mapping[str, object]] = []
    for index, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise MarketplaceApiError(f"{where}[{index}]: expected an object, got {_kind(item)}")
        result.append(item)
    return result


def _kind(value: object) -> str:
    if value is None:
        return "nothing"
    return f"{type(value).__name__} {value!r}"[:80]
