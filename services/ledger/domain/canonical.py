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
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import Enum
from fractions import Fraction

import orjson

__all__ = ["canonical_json", "dump_canonical", "sha256_hex", "to_canonical", "utc_iso"]


def utc_iso(moment: datetime) -> str:
    """``moment`` in UTC as ISO 8601 with microseconds; refuses naive datetimes."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"datetime {moment.isoformat()} has no time zone")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


_FIELDS: dict[type, tuple[str, ...]] = {}


def _field_names(cls: type) -> tuple[str, ...]:
    names = _FIELDS.get(cls)
    if names is None:
        names = _FIELDS[cls] = tuple(f.name for f in dataclasses.fields(cls))
    return names


def to_canonical(value: object) -> object:
    """Convert ``value`` to plain JSON data following the module rules (raises ``TypeError``).

    Checked in order of frequency (it runs for every field of every hashed request and entry).
    """
    cls = type(value)
    if cls is str or value is None or cls is bool:
        return value
    if cls is int:
        return value
    if isinstance(value, Enum):
        return to_canonical(value.value)
    if isinstance(value, int):
        return int(value)
    if cls in _FIELDS or (dataclasses.is_dataclass(value) and not isinstance(value, type)):
        return {name: to_canonical(getattr(value, name)) for name in _field_names(cls)}
    if cls is list or cls is tuple or isinstance(value, list | tuple):
        return [to_canonical(item) for item in value]  # type: ignore[attr-defined]
    if isinstance(value, datetime):
        return utc_iso(value)
    if isinstance(value, Fraction):
        return f"{value.numerator}/{value.denominator}"
    if isinstance(value, float):
        raise TypeError(f"float {value!r} is not allowed in canonical data (use int rupiah or Fraction)")
    if isinstance(value, Mapping):
        out: dict[str, object] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"mapping key {key!r} is not a string")
            out[key] = to_canonical(item)
        return out
    raise TypeError(f"{type(value).__name__} is not allowed in canonical data")


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
