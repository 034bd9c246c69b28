"""Set-based statements fed with one JSON array of rows instead of one array parameter per column.

asyncpg encodes an array parameter element by element, with two ``isinstance`` checks against
``collections.abc`` classes per element (Python-level calls): about a microsecond per value, the largest cost of the
orders and ledger writes. The same rows as one JSON text (serialised by orjson in C) and unpacked by
``jsonb_array_elements`` cost a small fraction of that on both sides of the connection (jsonb, not json: the
server parses each row once instead of once per ``->>``; 7,900 journal lines took 33 ms with jsonb, 49 ms with
json and 33 ms + 32 ms of client encoding as arrays).

Each :class:`RowSet` keeps both forms of its statement. The JSON form is used only when the rows carry exactly the
values the array form would store: text without NUL or lone surrogates, integers within the column type's range,
timezone-aware datetimes away from the two instants asyncpg turns into ±infinity, UUIDs, booleans and NULLs.
Anything else is written with the array form, so such rows succeed or fail exactly as before.

:class:`Writes` sends several such statements as one (each a data-modifying ``WITH`` part): every statement costs
a few hundred microseconds of client CPU on its own, whatever its size. :class:`KeyedQuery` does for a
``= ANY(keys)`` filter what :class:`RowSet` does for rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, ClassVar, Final

import orjson
from pydantic_core import TzInfo
from sqlalchemy import CursorResult, TextClause, text
from sqlalchemy.ext.asyncio import AsyncConnection

__all__ = ["KeyedQuery", "RowSet", "Writes", "json_rows", "json_texts"]

_RANGES: Final = {"smallint": (-(2**15), 2**15 - 1), "int": (-(2**31), 2**31 - 1)}
# orjson's strict integers stop at 2**53 - 1, inside bigint; larger values take the array form.
_NATIVE: Final = orjson.OPT_STRICT_INTEGER
_VIA_UTC: Final = orjson.OPT_STRICT_INTEGER | orjson.OPT_PASSTHROUGH_DATETIME
# Fixed-offset time zones: orjson writes their offset as ±HH:MM, exact when the offset is whole minutes.
_FIXED: Final = (timezone, TzInfo)
_MINUTE: Final = timedelta(minutes=1)
# asyncpg writes datetime.min and datetime.max (as UTC) as -infinity and infinity; keep a day's margin from both.
_EARLIEST: Final = datetime(1, 1, 2, tzinfo=UTC)
_LATEST: Final = datetime(9999, 12, 30, tzinfo=UTC)
_FLAG_TYPES: Final = frozenset({bool, type(None)})


def _instant(obj: object) -> str:
    if isinstance(obj, datetime) and obj.utcoffset() is not None:
        return obj.astimezone(UTC).isoformat()
    raise TypeError(f"not a timezone-aware datetime: {type(obj).__name__}")


def _plain_times(column: Sequence[Any]) -> bool | None:
    """How a timestamptz column can travel as JSON.

    ``True``: every zone is a fixed whole-minute offset, which orjson writes exactly by itself; ``False``: some are
    not, so the values are sent as their UTC instant; ``None``: a value is one asyncpg writes as ±infinity (the
    first and last instant Python knows) or might overflow near them, so only the array form says what happens.
    """
    values = [d for d in column if d is not None]
    if not values:
        return True
    if min(values) < _EARLIEST or max(values) > _LATEST:
        return None
    for tz in {d.tzinfo for d in values}:
        if type(tz) not in _FIXED:
            return False
        offset = tz.utcoffset(None)
        if offset is None or offset % _MINUTE:
            return False
    return True


def json_rows(
    columns: Sequence[Sequence[Any]],
    ranges: Sequence[tuple[int, int, int]] = (),
    times: Sequence[int] = (),
    flags: Sequence[int] = (),
) -> str | None:
    """The rows (column ``i`` is ``columns[i]``) as JSON text, or ``None`` when JSON would not carry them exactly.

    ``ranges`` are (column index, lowest, highest) for integer columns narrower than bigint; ``times`` the indexes
    of timestamptz columns, ``flags`` those of boolean columns (asyncpg takes only ``bool`` there). Text columns
    must hold ``str`` and integer columns ``int``, as the array form requires.
    """
    try:
        for i, low, high in ranges:
            col = columns[i]
            if col and (min(col) < low or max(col) > high):
                return None
        for i in flags:
            if not {type(v) for v in columns[i]} <= _FLAG_TYPES:
                return None
        option = _NATIVE
        for i in times:
            plain = _plain_times(columns[i])
            if plain is None:
                return None
            if not plain:
                option = _VIA_UTC
        doc = orjson.dumps(list(zip(*columns, strict=True)), default=_instant, option=option)
    except (AttributeError, TypeError, ValueError, OverflowError):  # orjson.JSONEncodeError is a TypeError
        return None
    if b"\\u0000" in doc:  # PostgreSQL text cannot hold NUL: let the array form fail as it always did
        return None
    return doc.decode()


class RowSet:
    """One set-based statement over rows of ``columns``, in its JSON form and its array form.

    ``template`` contains ``{rows}`` where the row source goes; the source is aliased ``u`` with the column names
    (``INSERT ... SELECT * FROM {rows}``, ``UPDATE t SET ... FROM {rows} WHERE t.k = u.k``).
    """

    def __init__(self, template: str, columns: Sequence[tuple[str, str]]) -> None:
        self.template = template
        self.columns = tuple(columns)
        self.names = tuple(n for n, _ in columns)
        self.array_form = text(self.sql(json=False))
        self.json_form = text(self.sql(json=True))
        self._ranges = tuple((i, *_RANGES[t]) for i, (_, t) in enumerate(columns) if t in _RANGES)
        self._times = tuple(i for i, (_, t) in enumerate(columns) if t == "timestamptz")
        self._flags = tuple(i for i, (_, t) in enumerate(columns) if t == "boolean")

    def sql(self, *, json: bool, prefix: str = "") -> str:
        """The statement's text in one form, its parameters named with ``prefix``."""
        alias = f"AS u({', '.join(self.names)})"
        if json:
            fields = ", ".join(f"CAST(e->>{i} AS {t})" for i, (_, t) in enumerate(self.columns))
            source = f"jsonb_array_elements(CAST(CAST(:{prefix}rows AS text) AS jsonb))"
            return self.template.format(rows=f"(SELECT {fields} FROM {source} AS e) {alias}")
        arrays = ", ".join(f"CAST(:{prefix}{n} AS {t}[])" for n, t in self.columns)
        return self.template.format(rows=f"unnest({arrays}) {alias}")

    def encode(self, columns: Sequence[list[Any]]) -> str | None:
        """The rows as JSON text for the JSON form, or ``None`` when they need the array form."""
        return json_rows(columns, self._ranges, self._times, self._flags)

    async def execute(self, conn: AsyncConnection, columns: Sequence[list[Any]]) -> None:
        """Run the statement over the rows whose column ``i`` is ``columns[i]`` (all of the same length)."""
        doc = self.encode(columns)
        if doc is None:
            await conn.execute(self.array_form, dict(zip(self.names, columns, strict=True)))
        else:
            await conn.execute(self.json_form, {"rows": doc})


class Writes:
    """Set-based writes of one transaction, sent together as one statement (one data-modifying WITH per part).

    The parts must touch different rows: they run on one snapshot and cannot see each other's rows, but foreign
    keys between them hold, and the tables' statement triggers see every part's rows (both run at the end of the
    statement, as for separate statements).
    """

    _statements: ClassVar[dict[tuple[tuple[object, bool], ...], TextClause]] = {}

    def __init__(self) -> None:
        self._parts: list[_Part] = []

    def add(self, rowset: RowSet, columns: Sequence[list[Any]]) -> None:
        """Write the rows whose column ``i`` is ``columns[i]`` with ``rowset`` (nothing when there are none)."""
        if columns and columns[0]:
            self._parts.append((rowset, rowset.encode(columns), columns))

    def add_statement(self, template: str, params: Mapping[str, Any]) -> None:
        """Add one data-modifying statement that is not over rows of columns (say, with a ``bytea`` of packed
        payloads): ``template`` names its parameters ``:{p}name`` and ``params`` gives them by ``name``."""
        self._parts.append((template, None, params))

    async def execute(self, conn: AsyncConnection) -> None:
        """Send every part added so far."""
        parts, self._parts = self._parts, []
        if not parts:
            return
        key = tuple((what, doc is None) for what, doc, _ in parts)
        statement = self._statements.get(key)
        if statement is None:
            statement = _statement(parts)
            if len(self._statements) < 512:
                self._statements[key] = statement
        params: dict[str, Any] = {}
        for i, part in enumerate(parts):
            params.update(_params(part, _prefix(i, len(parts))))
        await conn.execute(statement, params)


_Part = tuple[RowSet | str, str | None, Sequence[list[Any]] | Mapping[str, Any]]


def _prefix(i: int, parts: int) -> str:
    return "" if parts == 1 else f"w{i}_"


def _statement(parts: Sequence[_Part]) -> TextClause:
    """The one statement of ``parts``: a lone row part as its RowSet built it, else one WITH part each."""
    if len(parts) == 1:
        what, doc, _ = parts[0]
        if isinstance(what, RowSet):
            return what.json_form if doc is not None else what.array_form
        return text(_sql(parts[0], ""))
    ctes = ", ".join(f"w{i} AS ({_sql(part, _prefix(i, len(parts)))})" for i, part in enumerate(parts))
    return text(f"WITH {ctes} SELECT 1")


def _sql(part: _Part, prefix: str) -> str:
    """One part's SQL text, its parameters named with ``prefix``."""
    what, doc, _ = part
    if isinstance(what, str):
        return what.replace("{p}", prefix)
    return what.sql(json=doc is not None, prefix=prefix)


def _params(part: _Part, prefix: str) -> dict[str, Any]:
    """One part's parameters, named with ``prefix``."""
    what, doc, values = part
    if isinstance(values, Mapping):
        return {f"{prefix}{n}": v for n, v in values.items()}
    if doc is not None:
        return {f"{prefix}rows": doc}
    assert isinstance(what, RowSet)
    return {f"{prefix}{n}": c for n, c in zip(what.names, values, strict=True)}


def json_texts(values: Sequence[str]) -> str | None:
    """Strings as one JSON array, or ``None`` when JSON would not carry them exactly (NUL, lone surrogates)."""
    try:
        doc = orjson.dumps(values)
    except TypeError:
        return None
    return None if b"\\u0000" in doc else doc.decode()


class KeyedQuery:
    """A statement over ``column = ANY({keys})`` for a list of strings, with the keys as JSON text or as an array."""

    def __init__(self, template: str) -> None:
        self.array_form = text(template.format(keys=":keys"))
        self.json_form = text(
            template.format(keys="ARRAY(SELECT jsonb_array_elements_text(CAST(CAST(:keys AS text) AS jsonb)))")
        )

    async def execute(
        self, conn: AsyncConnection, keys: list[str], params: Mapping[str, Any] | None = None
    ) -> CursorResult[*tuple[Any, ...]]:
        """Run the statement for ``keys`` (and its other ``params``) and return its result."""
        doc = json_texts(keys)
        if doc is None:
            return await conn.execute(self.array_form, {**(params or {}), "keys": keys})
        return await conn.execute(self.json_form, {**(params or {}), "keys": doc})
