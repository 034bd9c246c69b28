"""Canonical JSON: the one byte serialisation behind every hash of the ledger.

Rules (stable across Python versions, so a hash computed today verifies in ten years):

* objects: keys sorted, no whitespace (``separators=(",", ":")``), ASCII only (``\\uXXXX`` escapes);
* ``int`` stays an integer; ``bool`` is ``true``/``false``; ``None`` is ``null``;
* ``float`` is refused: money and shares are never floats;
* ``Fraction`` becomes the string ``"numerator/denominator"`` in lowest terms (``"7/20"``, ``"1/1"``);
* aware ``datetime`` becomes a UTC ISO string with microseconds (``2026-01-02T03:04:05.000000+00:00``);
  naive datetimes are refused;
* enums become their value; dataclass instances become objects of their fields; tuples become lists;
* mapping keys must be strings.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from enum import Enum
from fractions import Fraction
from typing import Any

import orjson

__all__ = ["canonical_json", "dump_canonical", "sha256_hex", "to_canonical", "utc_iso"]


def utc_iso(moment: datetime) -> str:
    """``moment`` in UTC as ISO 8601 with microseconds; refuses naive datetimes.

    Remembered per datetime object (immutable; held, so its id is not reused): a batch's recording time and
    a request's time are serialised once for every entry and hash that carries them.
    """
    hit = _ISO.get(id(moment))
    if hit is not None and hit[0] is moment:
        return hit[1]
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"datetime {moment.isoformat()} has no time zone")
    text = moment.astimezone(UTC).isoformat(timespec="microseconds")
    if len(_ISO) >= 16384:
        _ISO.clear()
    _ISO[id(moment)] = (moment, text)
    return text


_ISO: dict[int, tuple[datetime, str]] = {}


_FIELDS: dict[type, tuple[str, ...]] = {}


def _field_names(cls: type) -> tuple[str, ...]:
    names = _FIELDS.get(cls)
    if names is None:
        names = _FIELDS[cls] = tuple(f.name for f in dataclasses.fields(cls))
    return names


def _same(value: object) -> object:
    return value


def _items(value: Iterable[object]) -> object:
    out: list[object] = []
    for item in value:
        cls = type(item)
        if cls is str or cls is int or item is None:
            out.append(item)
        else:
            out.append((_CONVERT.get(cls) or _rule(item))(item))
    return out


def _fraction(value: Fraction) -> object:
    return f"{value.numerator}/{value.denominator}"


def _enum(value: Enum) -> object:
    return to_canonical(value.value)


def _int(value: int) -> object:
    return int(value)


def _mapping(value: Mapping[object, object]) -> object:
    out: dict[str, object] = {}
    for key, item in value.items():
        if not isinstance(key, str):
            raise TypeError(f"mapping key {key!r} is not a string")
        cls = type(item)
        if cls is str or cls is int or item is None:
            out[key] = item
        else:
            out[key] = (_CONVERT.get(cls) or _rule(item))(item)
    return out


def _dataclass(names: tuple[str, ...]) -> Callable[[Any], object]:
    def convert(value: object) -> object:
        out: dict[str, object] = {}
        for name in names:
            item = getattr(value, name)
            cls = type(item)
            if cls is str or cls is int or item is None:
                out[name] = item
            else:
                out[name] = (_CONVERT.get(cls) or _rule(item))(item)
        return out

    return convert


#: The conversion of every type met so far. Which rule applies depends on the type alone, so the first value of
#: a type finds it (:func:`_rule`, the rules in the order of the module docstring) and later values look it up.
_CONVERT: dict[type, Callable[[Any], object]] = {
    str: _same,
    int: _same,
    bool: _same,
    type(None): _same,
    list: _items,
    tuple: _items,
    dict: _mapping,
    datetime: utc_iso,
    Fraction: _fraction,
}


def _rule(value: object) -> Callable[[Any], object]:
    """The conversion of ``type(value)``, remembered for the type; raises ``TypeError`` for what is refused."""
    cls = type(value)
    rule: Callable[[Any], object]
    if cls is str or value is None or cls is bool or cls is int:
        rule = _same
    elif isinstance(value, Enum):
        rule = _enum
    elif isinstance(value, int):
        rule = _int
    elif cls in _FIELDS or (dataclasses.is_dataclass(value) and not isinstance(value, type)):
        rule = _dataclass(_field_names(cls))
    elif isinstance(value, list | tuple):
        rule = _items
    elif isinstance(value, datetime):
        rule = utc_iso
    elif isinstance(value, Fraction):
        rule = _fraction
    elif isinstance(value, float):
        raise TypeError(f"float {value!r} is not allowed in canonical data (use int rupiah or Fraction)")
    elif isinstance(value, Mapping):
        rule = _mapping
    else:
        raise TypeError(f"{type(value).__name__} is not allowed in canonical data")
    _CONVERT[cls] = rule
    return rule


def to_canonical(value: object) -> object:
    """Convert ``value`` to plain JSON data following the module rules (raises ``TypeError``).

    It runs for every field of every hashed request, so each type's rule is looked up in one dict.
    """
    rule = _CONVERT.get(type(value))
    if rule is None:
        rule = _rule(value)
    return rule(value)


def canonical_json(value: object) -> bytes:
    """The canonical JSON bytes of ``value`` (see the module docstring)."""
    return dump_canonical(to_canonical(value))


def dump_canonical(plain: object) -> bytes:
    """The canonical JSON bytes of data already converted by :func:`to_canonical`.

    orjson (sorted keys, compact) produces exactly these bytes whenever the text is ASCII; anything else takes
    the reference path, ``json.dumps`` with ``ensure_ascii``.
    """
    fast = orjson.dumps(plain, option=orjson.OPT_SORT_KEYS)
    if fast.isascii() and b"\x7f" not in fast:  # json escapes DEL, orjson does not
        return fast
    text = json.dumps(plain, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return text.encode("ascii")


def sha256_hex(data: bytes) -> str:
    """Lower-case hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()
