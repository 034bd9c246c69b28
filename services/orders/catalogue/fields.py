"""Field parsers for catalogue records: each turns one raw value into a typed value or raises FieldError.

``text`` is true when the value is a CSV cell (always a string); YAML values arrive typed. Money and
quantities must be integers in both formats: a float such as ``150000.0`` is rejected, not rounded.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from datetime import date, datetime
from enum import StrEnum

from services.orders.catalogue.model import INMATE_ID_PATTERN, WorkShare

__all__ = [
    "FieldError",
    "Parser",
    "channel_id",
    "code",
    "enum_of",
    "integer",
    "iso_date",
    "slug",
    "text_value",
    "work_group",
]

_SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_CODE = re.compile(r"[A-Z0-9]+(?:-[A-Z0-9]+)*")
_CHANNEL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]*")
_INT_TEXT = re.compile(r"[+-]?[0-9]+")
_DATE_TEXT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_MAX_ID = 64
_MAX_TEXT = 200
# Unicode categories not allowed in names: control, surrogate, line and paragraph separators.
_BAD_TEXT_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})


class FieldError(Exception):
    """A field value is invalid; ``problems`` are (field path, message) pairs."""

    def __init__(self, problems: list[tuple[str | None, str]]) -> None:
        super().__init__(problems)
        self.problems = problems


def _fail(message: str) -> FieldError:
    return FieldError([(None, message)])


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _type_name(value: object) -> str:
    return {
        bool: "boolean",
        int: "integer",
        float: "number",
        str: "string",
        list: "list",
        dict: "mapping",
    }.get(type(value), type(value).__name__)


Parser = Callable[[object, bool], object]


def _string(value: object, what: str) -> str:
    if isinstance(value, str):
        return value
    hint = " (quote numeric ids in YAML)" if isinstance(value, int | float) and what == "id" else ""
    raise _fail(f"must be a string{hint}, got {_type_name(value)} {_show(value)}")


def _pattern(regex: re.Pattern[str], example: str, what: str = "id") -> Parser:
    def parse(value: object, text: bool) -> object:
        s = _string(value, what)
        if len(s) > _MAX_ID or not regex.fullmatch(s):
            raise _fail(f"must look like {example!r} (at most {_MAX_ID} characters), got {_show(s)}")
        return s

    return parse


# Ids: lapas, workshop and supplier ids are lower-case slugs; SKUs and batch ids upper-case codes; channel
# ids are whatever the marketplace issues (digits, or Blibli's "LPC-60021-00001"), always as strings.
slug = _pattern(_SLUG, "cipinang-bengkel-kayu")
code = _pattern(_CODE, "CPN-GLV-001")
channel_id = _pattern(_CHANNEL_ID, "1729384756102938475")


def text_value(value: object, text: bool) -> object:
    """A human-readable name: non-empty, one line, no surrounding whitespace."""
    s = _string(value, "text")
    if not s:
        raise _fail("must not be empty")
    if s != s.strip():
        raise _fail(f"must not start or end with whitespace, got {_show(s)}")
    if len(s) > _MAX_TEXT:
        raise _fail(f"must be at most {_MAX_TEXT} characters, got {len(s)}")
    if any(unicodedata.category(c) in _BAD_TEXT_CATEGORIES for c in s):
        raise _fail(f"must not contain control characters or line breaks, got {_show(s)}")
    return s


def enum_of(kind: type[StrEnum]) -> Parser:
    """A parser accepting exactly the values of ``kind``."""
    allowed = ", ".join(m.value for m in kind)

    def parse(value: object, text: bool) -> object:
        s = _string(value, "text")
        try:
            return kind(s)
        except ValueError:
            raise _fail(f"must be one of {allowed}; got {_show(s)}") from None

    return parse


def integer(minimum: int, unit: str) -> Parser:
    """A parser for whole numbers ≥ ``minimum``; floats (even ``150000.0``) and booleans are rejected."""

    def parse(value: object, text: bool) -> object:
        number: int
        if text and isinstance(value, str):
            if not _INT_TEXT.fullmatch(value):
                raise _fail(f"must be a whole number of {unit} written with digits only, got {_show(value)}")
            number = int(value)
        elif isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif isinstance(value, float):
            raise _fail(f"must be a whole number of {unit} written as an integer, got {_show(value)}")
        else:
            raise _fail(f"must be an integer, got {_type_name(value)} {_show(value)}")
        if number < minimum:
            bound = "positive" if minimum == 1 else f"at least {minimum}"
            raise _fail(f"must be {bound}, got {number}")
        return number

    return parse


def iso_date(value: object, text: bool) -> object:
    """A calendar date (YAML date, or ``YYYY-MM-DD`` text); timestamps are rejected."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and _DATE_TEXT.fullmatch(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise _fail(f"is not a real calendar date: {_show(value)}") from None
    raise _fail(f"must be a date written YYYY-MM-DD, got {_type_name(value)} {_show(value)}")


_inmate_id = _pattern(INMATE_ID_PATTERN, "WBP-7F3K2Q")
_share = integer(1, "work units")


def work_group(value: object, text: bool) -> object:
    """Inmates and work shares: YAML list of {inmate_id, work_share}; CSV ``WBP-AAAAAA:3;WBP-BBBBBB:2``."""
    entries: list[tuple[object, object]] = []
    problems: list[tuple[str | None, str]] = []
    if text and isinstance(value, str):
        for i, part in enumerate(value.split(";"), start=1):
            who, sep, amount = (p.strip() for p in part.partition(":"))
            if not sep:
                problems.append((f"work_group[{i}]", f"must be INMATE_ID:SHARE, got {_show(part)}"))
            entries.append((who, amount) if sep else (None, None))
    elif isinstance(value, list):
        for i, item in enumerate(value, start=1):
            if not isinstance(item, dict):
                problems.append((f"work_group[{i}]", f"must be a mapping, got {_type_name(item)}"))
                entries.append((None, None))
                continue
            problems.extend(
                (f"work_group[{i}].{k}", "unknown field") for k in item if k not in ("inmate_id", "work_share")
            )
            for key in ("inmate_id", "work_share"):
                if item.get(key) is None:
                    problems.append((f"work_group[{i}].{key}", "missing value"))
            entries.append((item.get("inmate_id"), item.get("work_share")))
    else:
        raise _fail(f"must be a list of inmate work shares, got {_type_name(value)} {_show(value)}")
    if not entries:
        raise _fail("must list at least one inmate")
    shares: list[WorkShare] = []
    seen: dict[str, int] = {}
    for i, (raw_inmate, raw_share) in enumerate(entries, start=1):
        if raw_inmate is None or raw_share is None:
            continue  # already reported
        parsed: dict[str, object] = {}
        for key, parse, raw in (("inmate_id", _inmate_id, raw_inmate), ("work_share", _share, raw_share)):
            try:
                parsed[key] = parse(raw, text)
            except FieldError as bad:
                problems.extend((f"work_group[{i}].{key}", msg) for _, msg in bad.problems)
        inmate_id, share = parsed.get("inmate_id"), parsed.get("work_share")
        if isinstance(inmate_id, str):
            if inmate_id in seen:
                problems.append((f"work_group[{i}].inmate_id", f"{inmate_id} already listed at [{seen[inmate_id]}]"))
            seen.setdefault(inmate_id, i)
            if isinstance(share, int):
                shares.append(WorkShare(inmate_id=inmate_id, work_share=share))
    if problems:
        raise FieldError(problems)
    return tuple(shares)
