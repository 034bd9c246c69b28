"""The shape of marketplace API answers (objects, lists, ids) and the integer bounds of time-window queries.

Money, quantities and timestamps in an answer are read by :mod:`services.gateway.values`, the gateway's one
parser of them. Shape problems here (a missing field, an object where a list belongs) raise
:class:`MarketplaceApiError`, which the normaliser treats like any API failure: retried.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from services.gateway.clients.base import MarketplaceApiError

__all__ = [
    "ceil_unix",
    "ceil_unix_ms",
    "get_list",
    "get_mapping",
    "get_str",
    "objects",
]


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
