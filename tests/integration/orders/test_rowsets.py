"""Set-based statements fed as JSON rows store exactly what the one-array-per-column form stores."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from infra.db.rowsets import KeyedQuery, RowSet, Writes, json_rows

pytestmark = pytest.mark.integration

COLUMNS = (
    ("s", "text"),
    ("i", "int"),
    ("b", "bigint"),
    ("sm", "smallint"),
    ("t", "timestamptz"),
    ("u", "uuid"),
    ("f", "boolean"),
)
TABLE = "(n serial, s text, i int, b bigint, sm smallint, t timestamptz, u uuid, f boolean)"
STRINGS = ["", "plain", "ä漢字🙂", 'quote " back \\ slash', "new\nline\ttab\r", "\u2028\u2029", "x" * 5000, "'; --"]
ZONES = [
    UTC,
    timezone(timedelta(hours=7)),
    timezone(timedelta(hours=-3, minutes=-30)),
    timezone(timedelta(hours=5, minutes=30, seconds=15)),
]


@contextmanager
def recorded(conn: AsyncConnection) -> Iterator[list[str]]:
    """The text of every statement ``conn`` sends inside the block, in order."""
    statements: list[str] = []

    def record(*args: Any) -> None:
        statements.append(str(args[2]))

    sync = conn.sync_connection
    assert sync is not None
    event.listen(sync, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(sync, "before_cursor_execute", record)


def tricky_rows() -> list[tuple[Any, ...]]:
    rng = random.Random(6)
    rows: list[tuple[Any, ...]] = [
        (None, None, None, None, None, None, None),
        ("edge", -(2**31), -(2**53 - 1), -(2**15), datetime(1, 1, 2, tzinfo=UTC), uuid.UUID(int=0), False),
        ("edge", 2**31 - 1, 2**53 - 1, 2**15 - 1, datetime(9999, 12, 30, tzinfo=UTC), None, True),
        ("zone", 0, 0, 0, datetime(2026, 1, 1, 12, tzinfo=timezone(timedelta(hours=-9, minutes=-30))), None, None),
    ]
    for n in range(300):
        rows.append(
            (
                rng.choice(STRINGS) + str(n),
                rng.randint(-1000, 1000),
                rng.randint(-(10**15), 10**15),
                rng.randint(0, 5),
                datetime(2026, 11, 27, tzinfo=UTC).astimezone(rng.choice(ZONES))
                + timedelta(microseconds=rng.randint(0, 10**12)),
                uuid.UUID(int=rng.getrandbits(128)),
                rng.random() < 0.5,
            )
        )
    return rows


async def _table(conn: AsyncConnection, name: str) -> list[Any]:
    return list((await conn.execute(text(f"SELECT * FROM pg_temp.{name} ORDER BY n"))).all())


def _columns(rows: list[tuple[Any, ...]]) -> list[list[Any]]:
    return [list(c) for c in zip(*rows, strict=True)]


async def test_json_and_array_forms_store_the_same_rows(service_engine: AsyncEngine) -> None:
    rows = tricky_rows()
    columns = _columns(rows)
    assert json_rows(columns, times=(4,)) is not None  # the JSON form is what gets exercised here
    async with service_engine.begin() as conn:
        stored = {}
        for form in ("json_form", "array_form"):
            await conn.execute(text(f"CREATE TEMP TABLE {form} {TABLE} ON COMMIT DROP"))
            rs = RowSet(f"INSERT INTO pg_temp.{form} (s, i, b, sm, t, u, f) SELECT * FROM {{rows}}", COLUMNS)
            if form == "json_form":
                await rs.execute(conn, columns)
            else:
                await conn.execute(rs.array_form, dict(zip(rs.names, columns, strict=True)))
            stored[form] = await _table(conn, form)
        assert stored["json_form"] == stored["array_form"]
        assert [r[1:] for r in stored["json_form"]] == rows

        # An UPDATE ... FROM {rows} joins the same way in both forms.
        changes = [(f"{r[0]}", n * 7) for n, r in enumerate(rows) if r[0] is not None]
        cols = (("s", "text"), ("i", "int"))
        for form in ("json_form", "array_form"):
            rs = RowSet(f"UPDATE pg_temp.{form} AS x SET i = u.i FROM {{rows}} WHERE x.s = u.s", cols)
            if form == "json_form":
                await rs.execute(conn, _columns(changes))
            else:
                await conn.execute(rs.array_form, dict(zip(rs.names, _columns(changes), strict=True)))
        assert await _table(conn, "json_form") == await _table(conn, "array_form")


async def test_values_json_cannot_carry_fail_exactly_as_before(service_engine: AsyncEngine) -> None:
    bad = [("nul \x00 inside", 1, 1, 1, datetime(2026, 1, 1, tzinfo=UTC), None, True)]
    async with service_engine.begin() as conn:
        await conn.execute(text(f"CREATE TEMP TABLE t {TABLE} ON COMMIT DROP"))
        rs = RowSet("INSERT INTO pg_temp.t (s, i, b, sm, t, u, f) SELECT * FROM {rows}", COLUMNS)
        errors = []
        for run in (
            lambda: rs.execute(conn, _columns(bad)),
            lambda: conn.execute(rs.array_form, dict(zip(rs.names, _columns(bad), strict=True))),
        ):
            with pytest.raises(DBAPIError) as caught:
                async with conn.begin_nested():
                    await run()
            errors.append(str(caught.value))
        assert errors[0] == errors[1]
        # Out of the column type's range: the array form's client-side error, not a server-side one.
        big = [("x", 2**31, 1, 1, datetime(2026, 1, 1, tzinfo=UTC), None, True)]
        assert json_rows(_columns(big), ranges=[(1, -(2**31), 2**31 - 1)]) is None


@pytest.mark.parametrize(
    "when",
    [
        datetime(1, 1, 1, tzinfo=UTC),  # asyncpg: -infinity
        datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),  # asyncpg: infinity
        datetime(1, 1, 1, 5, tzinfo=timezone(timedelta(hours=7))),  # asyncpg: overflow converting to UTC
    ],
)
async def test_the_array_form_decides_at_the_ends_of_time(service_engine: AsyncEngine, when: datetime) -> None:
    row = [("end", 1, 1, 1, when, None, True)]
    assert json_rows(_columns(row), times=(4,)) is None
    async with service_engine.begin() as conn:
        await conn.execute(text(f"CREATE TEMP TABLE t {TABLE} ON COMMIT DROP"))
        rs = RowSet("INSERT INTO pg_temp.t (s, i, b, sm, t, u, f) SELECT * FROM {rows}", COLUMNS)
        outcome: list[object] = []
        for run in (
            lambda: rs.execute(conn, _columns(row)),
            lambda: conn.execute(rs.array_form, dict(zip(rs.names, _columns(row), strict=True))),
        ):
            try:
                async with conn.begin_nested():
                    await run()
                    outcome.append((await conn.execute(text("SELECT t::text FROM pg_temp.t"))).scalars().all())
                    await conn.execute(text("DELETE FROM pg_temp.t"))
            except Exception as exc:
                outcome.append(type(exc).__name__)
        assert outcome[0] == outcome[1]


async def test_keyed_query_forms_select_the_same_rows(service_engine: AsyncEngine) -> None:
    keys = [s + str(n) for n, s in enumerate(STRINGS)] + ["absent", "shopee:shop-1:b0000001"]
    async with service_engine.begin() as conn:
        await conn.execute(text("CREATE TEMP TABLE k (n serial, k text) ON COMMIT DROP"))
        await conn.execute(text("INSERT INTO pg_temp.k (k) SELECT unnest(CAST(:k AS text[]))"), {"k": keys[:-2]})
        q = KeyedQuery("SELECT n, k FROM pg_temp.k WHERE k = ANY({keys}) ORDER BY n")
        via_json = list(await q.execute(conn, keys))
        via_array = list(await conn.execute(q.array_form, {"keys": keys}))
        assert via_json == via_array
        assert [r[1] for r in via_json] == keys[:-2]
        # NUL is served by the array form, which fails as it always did.
        with pytest.raises(DBAPIError, match="0x00"):
            async with conn.begin_nested():
                await q.execute(conn, ["nul\x00"])
        with pytest.raises(DBAPIError, match="0x00"):
            async with conn.begin_nested():
                await conn.execute(q.array_form, {"keys": ["nul\x00"]})


async def test_writes_send_every_part_in_one_statement(service_engine: AsyncEngine) -> None:
    """Parts in mixed forms, a child row whose parent is inserted by another part, an update of existing rows."""
    parent = RowSet("INSERT INTO pg_temp.parent (k, big) SELECT * FROM {rows}", (("k", "text"), ("big", "bigint")))
    child = RowSet("INSERT INTO pg_temp.child (k, n) SELECT * FROM {rows}", (("k", "text"), ("n", "int")))
    bump = RowSet(
        "UPDATE pg_temp.parent p SET big = p.big + u.d FROM {rows} WHERE p.k = u.k", (("k", "text"), ("d", "int"))
    )
    async with service_engine.begin() as conn:
        await conn.execute(text("CREATE TEMP TABLE parent (k text PRIMARY KEY, big bigint) ON COMMIT DROP"))
        await conn.execute(
            text("CREATE TEMP TABLE child (id serial, k text REFERENCES pg_temp.parent, n int) ON COMMIT DROP")
        )
        await conn.execute(text("INSERT INTO pg_temp.parent VALUES ('old', 1)"))
        writes = Writes()
        writes.add(parent, [["a", "b"], [2**60, 5]])  # beyond 2**53: this part takes the array form
        writes.add(child, [["a", "b", "a", "old"], [1, 2, 3, 4]])
        writes.add(bump, [["old"], [10]])
        writes.add(child, [[], []])  # nothing to write: no part
        with recorded(conn) as statements:
            await writes.execute(conn)
        assert len(statements) == 1 and statements[0].startswith("WITH w0 AS (INSERT INTO pg_temp.parent")
        rows = (await conn.execute(text("SELECT k, big FROM pg_temp.parent ORDER BY k"))).all()
        assert [tuple(r) for r in rows] == [("a", 2**60), ("b", 5), ("old", 11)]
        rows = (await conn.execute(text("SELECT k, n FROM pg_temp.child ORDER BY id"))).all()
        assert [tuple(r) for r in rows] == [("a", 1), ("b", 2), ("a", 3), ("old", 4)]
        with pytest.raises(DBAPIError, match="foreign key"):
            async with conn.begin_nested():
                writes.add(child, [["missing"], [1]])
                writes.add(bump, [["old"], [1]])
                await writes.execute(conn)


async def test_statement_parts_join_row_parts_with_their_own_parameters(service_engine: AsyncEngine) -> None:
    """A part that is a statement of its own (``add_statement``) travels in the same one statement as row parts;
    two parts whose parameters have the same name keep their own values; a lone statement part runs as it is."""
    rows = RowSet("INSERT INTO pg_temp.log (what, n) SELECT * FROM {rows}", (("what", "text"), ("n", "int")))
    packed = "INSERT INTO pg_temp.log (what, n) SELECT convert_from(CAST(:{p}b AS bytea), 'UTF8'), CAST(:{p}n AS int)"
    async with service_engine.begin() as conn:
        await conn.execute(text("CREATE TEMP TABLE log (id serial, what text, n int) ON COMMIT DROP"))
        writes = Writes()
        writes.add(rows, [["row"], [1]])
        writes.add_statement(packed, {"b": b"bytes one", "n": 2})
        writes.add_statement(packed, {"b": b"bytes two", "n": 3})
        with recorded(conn) as statements:
            await writes.execute(conn)
            writes.add_statement(packed, {"b": b"alone", "n": 4})
            await writes.execute(conn)
        assert len(statements) == 2 and statements[0].startswith("WITH w0 AS (INSERT INTO pg_temp.log")
        assert not statements[1].startswith("WITH")
        got = (await conn.execute(text("SELECT what, n FROM pg_temp.log ORDER BY n"))).all()
        assert [tuple(r) for r in got] == [("row", 1), ("bytes one", 2), ("bytes two", 3), ("alone", 4)]


async def test_statement_triggers_see_every_part(service_engine: AsyncEngine) -> None:
    """An AFTER STATEMENT trigger of one part's table sees the rows another part wrote (the ledger's closed-period
    check finds a new order's lapas in facts written beside its entry), and refuses the whole statement."""
    facts = RowSet("INSERT INTO pg_temp.facts (k, lapas) SELECT * FROM {rows}", (("k", "text"), ("lapas", "text")))
    entries = RowSet("INSERT INTO pg_temp.entries (k) SELECT * FROM {rows}", (("k", "text"),))
    async with service_engine.begin() as conn:
        await conn.execute(text("CREATE TEMP TABLE facts (k text PRIMARY KEY, lapas text) ON COMMIT DROP"))
        await conn.execute(text("CREATE TEMP TABLE entries (k text) ON COMMIT DROP"))
        await conn.execute(
            text(
                "CREATE FUNCTION pg_temp.closed() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                "IF EXISTS (SELECT 1 FROM new_entries e LEFT JOIN pg_temp.facts f USING (k) "
                "WHERE f.lapas IS NULL OR f.lapas = 'closed') THEN RAISE EXCEPTION 'closed or unknown lapas'; END IF; "
                "RETURN NULL; END $$"
            )
        )
        await conn.execute(
            text(
                "CREATE TRIGGER closed AFTER INSERT ON pg_temp.entries REFERENCING NEW TABLE AS new_entries "
                "FOR EACH STATEMENT EXECUTE FUNCTION pg_temp.closed()"
            )
        )
        writes = Writes()
        writes.add(facts, [["o1"], ["open"]])
        writes.add(entries, [["o1"]])
        await writes.execute(conn)
        assert (await conn.execute(text("SELECT count(*) FROM pg_temp.entries"))).scalar_one() == 1
        with pytest.raises(DBAPIError, match="closed or unknown lapas"):
            async with conn.begin_nested():
                writes.add(facts, [["o2"], ["closed"]])
                writes.add(entries, [["o2"]])
                await writes.execute(conn)
        assert (await conn.execute(text("SELECT count(*) FROM pg_temp.facts"))).scalar_one() == 1
