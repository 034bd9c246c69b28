"""The gateway's one parser of marketplace money, quantities and timestamps, and its one rejection error.

Webhook bodies (:mod:`services.gateway.normalise`) and API answers (:mod:`services.gateway.clients`) go
through these functions, so a value means the same whichever path brought it.

**Money** (:func:`parse_rupiah`): whole rupiah (IDR has no minor unit in practice) given as

- a JSON integer (``150000``);
- a JSON float or decimal that is integral (``150000.0``; API answers are decoded with ``Decimal`` so that
  ``25000.00000000000001`` stays non-integral);
- a decimal text in plain notation: optional sign, digits, optional fraction (TikTok Shop: ``"150000"``,
  ``"150000.00"``, fees as ``"-1500"``).

A fractional amount (``150000.5``, ``"150000.50"``) raises :class:`NonIntegralAmount`: money is never rounded.
Anything else raises :class:`BadValue`: ``true``, ``null``, NaN or infinity, ``"abc"``, ``""``, exponents
(``"1e5"``), thousands separators, and **surrounding whitespace** (``" 150000"``): no channel's published
format pads its numbers, so padding means something other than the channel wrote the value, and a refused
delivery is visible in the dead letters and replayable after a fix, where a silently accepted one is not.
Negative amounts are refused unless the caller allows them (fees and refunds arrive signed; see
:func:`parse_fee`).

**Quantities** (:func:`parse_quantity`): the same spellings, a positive whole number of units.

**Timestamps** (:func:`parse_time`): an aware UTC datetime from

- a unix time as a non-negative whole number in the money spellings above (no sign, no fraction), read as
  **seconds below 10^11 and milliseconds from 10^11 up to 10^14**. 10^11 seconds is the year 5138 and
  10^11 milliseconds is March 1973, so no plausible order time is ambiguous: Tokopedia, TikTok Shop and Shopee
  send seconds, blibli.com milliseconds. ``0`` and anything from 10^14 on are refused;
- an ISO 8601 text with a zone (``2026-11-01T08:00:00Z``, ``…+07:00``); a text without a zone is refused
  (which zone would be a guess).

**Errors.** Every refusal is a :class:`BadValue` (:class:`NonIntegralAmount` is one), whose message names the
field and the problem, never the value: it is stored with the dead letter and sent in the DLQ header
(:func:`infra.errors.error_text`). :func:`rejection_context` is the one mapping from an error to the outcome:
bad content is *rejected* (dead-lettered at once with a value-free reason); anything else is *transient* and
propagates, so the consumer retries it with backoff.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import ClassVar, Final

from pydantic import ValidationError

__all__ = [
    "MAX_UNIX_MS",
    "UNIX_MS_FROM",
    "BadValue",
    "NonIntegralAmount",
    "parse_count",
    "parse_fee",
    "parse_quantity",
    "parse_rupiah",
    "parse_time",
    "rejection_context",
]

#: From this magnitude on a unix time is read as milliseconds (below it: seconds).
UNIX_MS_FROM: Final = 10**11
#: Unix times from this magnitude on are refused (10^14 ms is the year 5138).
MAX_UNIX_MS: Final = 10**14

# Larger numbers are no amount, count or time (and would cost memory to turn into an int).
_MAX_DIGITS: Final = 40
# Plain decimal notation only: no exponents, no thousands separators, no surrounding whitespace.
_DECIMAL_TEXT: Final = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?")


class BadValue(ValueError):
    """A marketplace value the gateway refuses (bad content: the delivery is rejected, not retried).

    The message names the field and the problem, never the value.
    """

    loggable_message: ClassVar[bool] = True  # field paths and expectations only (see infra.errors)


class NonIntegralAmount(BadValue):
    """An amount that is not a whole number of rupiah (e.g. ``150000.5``): the event goes to the DLQ."""


def _exact(value: object, field: str) -> Decimal | int:
    """The exact number ``value`` denotes, or :class:`BadValue`."""
    if isinstance(value, bool):
        raise BadValue(f"{field}: expected a number, got a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise BadValue(f"{field}: expected a finite number")
        return Decimal(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise BadValue(f"{field}: expected a finite number")
        return value
    if isinstance(value, str):
        if not _DECIMAL_TEXT.fullmatch(value):
            raise BadValue(f"{field}: expected a number in plain decimal notation")
        return Decimal(value)
    raise BadValue(f"{field}: expected a number, got {'null' if value is None else type(value).__name__}")


def _whole(value: object, field: str, what: str) -> int:
    number = _exact(value, field)
    if isinstance(number, int):
        return number
    if number.adjusted() > _MAX_DIGITS:
        raise BadValue(f"{field}: number too large")
    if number != number.to_integral_value():
        raise NonIntegralAmount(f"{field}: not a whole number of {what}")
    return int(number)


def parse_rupiah(value: object, field: str, *, allow_negative: bool = False) -> int:
    """``value`` as whole rupiah (see the module docstring for the accepted spellings).

    Raises:
        NonIntegralAmount: a fractional amount.
        BadValue: not a number, or negative while ``allow_negative`` is false.
    """
    amount = _whole(value, field, "rupiah")
    if amount < 0 and not allow_negative:
        raise BadValue(f"{field}: negative amount")
    return amount


def parse_fee(value: object, field: str) -> int:
    """A fee or withheld amount as a non-negative whole number: the sign is dropped (TikTok Shop and blibli.com
    give deductions as negative numbers, others as positive)."""
    return abs(parse_rupiah(value, field, allow_negative=True))


def parse_quantity(value: object, field: str) -> int:
    """A positive whole number of units (``2``, ``2.0`` or ``"2"``).

    Raises:
        BadValue: not a positive whole number.
    """
    try:
        quantity = _whole(value, field, "units")
    except NonIntegralAmount:
        raise BadValue(f"{field}: not a whole quantity") from None
    if quantity <= 0:
        raise BadValue(f"{field}: quantity must be positive")
    return quantity


def parse_count(value: object, field: str) -> int:
    """A non-negative whole number that is not money (a record count, a unix time before it is read).

    Raises:
        BadValue: not a non-negative whole number.
    """
    try:
        count = _whole(value, field, "units")
    except NonIntegralAmount:
        raise BadValue(f"{field}: not a whole number") from None
    if count < 0:
        raise BadValue(f"{field}: negative number")
    return count


def parse_time(value: object, field: str) -> datetime:
    """An aware UTC datetime from unix seconds or milliseconds, or ISO 8601 text with a zone (module docstring).

    Raises:
        BadValue: anything else, including fractional unix times, 0 and times from 10^14 on.
    """
    if isinstance(value, str) and not _DECIMAL_TEXT.fullmatch(value):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise BadValue(f"{field}: expected a unix time or an ISO 8601 time") from None
        if moment.utcoffset() is None:
            raise BadValue(f"{field}: ISO 8601 time without a zone")
        try:
            return moment.astimezone(UTC)
        except OverflowError:
            raise BadValue(f"{field}: time out of range") from None
    try:
        number = _whole(value, field, "seconds")
    except NonIntegralAmount:
        raise BadValue(f"{field}: not a whole unix time") from None
    if not 0 < number < MAX_UNIX_MS:
        raise BadValue(f"{field}: not a unix time in seconds or milliseconds")
    if number < UNIX_MS_FROM:
        return datetime.fromtimestamp(number, UTC)
    seconds, millis = divmod(number, 1000)
    return datetime.fromtimestamp(seconds, UTC).replace(microsecond=millis * 1000)


def rejection_context(exc: BaseException) -> str | None:
    """What is wrong with the content that raised ``exc`` (a value-free phrase for the rejection reason), or
    ``None`` when ``exc`` is not about the content: then it is transient and is retried."""
    if isinstance(exc, NonIntegralAmount):
        return "non-integral amount"
    if isinstance(exc, BadValue):
        return "unparseable"
    if isinstance(exc, ValidationError):
        return "invalid"
    return None
