"""Money, quantities and timestamps as the marketplaces send them, checked into exact integers.

Rupiah are whole numbers. Marketplaces send them as JSON integers, as JSON floats (``150000.0``) or as decimal
strings (TikTok Shop: ``"150000"``, ``"150000.00"``, fees as ``"-1500"``). All are accepted when the value is
integral; ``150000.5`` or ``"150000.50"`` is not a rupiah amount and raises :class:`NonIntegralAmount`.

Every message names the field and the problem, never the value: a refused delivery's reason is stored with its
dead letter and sent in the DLQ header (see :func:`infra.errors.error_text`), where no input value belongs.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import ClassVar

from services.gateway.clients.base import NonIntegralAmount

__all__ = ["NonIntegralAmount", "NonIntegralField", "to_quantity", "to_rupiah", "unix_time"]


class NonIntegralField(NonIntegralAmount):
    """A webhook amount with a fractional part; the message names the field only."""

    loggable_message: ClassVar[bool] = True  # a field path only (see infra.errors)


def _integral(value: object, field: str) -> int:
    if isinstance(value, bool):
        raise ValueError(f"{field}: expected a number, got a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{field}: expected a finite number")
        if not value.is_integer():
            raise NonIntegralField(f"{field}: not a whole number")
        return int(value)
    if isinstance(value, str):
        try:
            exact = Decimal(value.strip())
        except InvalidOperation:
            raise ValueError(f"{field}: expected a decimal number") from None
        if not exact.is_finite():
            raise ValueError(f"{field}: expected a finite number")
        if exact != exact.to_integral_value():
            raise NonIntegralField(f"{field}: not a whole number")
        return int(exact)
    raise ValueError(f"{field}: expected a number, got {type(value).__name__}")


def to_rupiah(value: object, field: str, *, allow_negative: bool = False) -> int:
    """An amount as whole rupiah.

    Raises:
        NonIntegralAmount: the amount has a fractional part (e.g. ``150000.5``).
        ValueError: not a number, or negative when ``allow_negative`` is false.
    """
    amount = _integral(value, field)
    if amount < 0 and not allow_negative:
        raise ValueError(f"{field}: negative amount")
    return amount


def to_quantity(value: object, field: str) -> int:
    """A positive whole quantity (``2`` or ``2.0``)."""
    try:
        quantity = _integral(value, field)
    except NonIntegralAmount:
        raise ValueError(f"{field}: not a whole quantity") from None
    if quantity <= 0:
        raise ValueError(f"{field}: quantity must be positive")
    return quantity


def unix_time(value: object, field: str) -> datetime:
    """A unix timestamp in seconds (integer, integral float or digit string) as an aware UTC datetime."""
    try:
        seconds = _integral(value, field)
    except NonIntegralAmount:
        raise ValueError(f"{field}: not whole seconds") from None
    if not 0 < seconds < 32_503_680_000:  # year 3000: milliseconds sent by mistake are caught here
        raise ValueError(f"{field}: not a unix time in seconds")
    return datetime.fromtimestamp(seconds, UTC)
