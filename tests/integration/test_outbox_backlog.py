"""The outbox backlog (the relay's ``karya_outbox_backlog`` gauge, the bench's and the demo's drain check) is exact
while small and an upper bound beyond, and reads at most the rows it counts exactly — not every waiting row."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from infra.db.engine import make_engine
from infra.db.roles import RoleUrls
from infra.messaging.outbox import Backlog, OutboundMessage, enqueue, measure_backlog
from tests.integration.messaging_support import create_scratch_schema
from tests.integration.plan_support import explained, plans, rows_read, scans

pytestmark = pytest.mark.integration


@pytest.fixture
async def schema(database: RoleUrls) -> str:
    name = f"backlog_{uuid.uuid4().hex[:10]}"
    await create_scratch_schema(database.migrator, name)
    return name


@pytest.fixture
async def engine(database: RoleUrls) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(database.service, pool_size=1)
    yield engine
    await engine.dispose()


async def _add(conn: AsyncConnection, schema: str, n: int) -> None:
    await enqueue(conn, schema, [OutboundMessage("t.events", f"k{i}".encode(), b"{}") for i in range(n)])


async def _ids(conn: AsyncConnection, schema: str) -> list[int]:
    return list((await conn.execute(text(f"SELECT id FROM {schema}.outbox ORDER BY id"))).scalars())


async def _oldest(conn: AsyncConnection, schema: str) -> datetime:
    oldest = (await conn.execute(text(f"SELECT min(created_at) FROM {schema}.outbox"))).scalar_one()
    assert isinstance(oldest, datetime)
    return oldest


async def test_an_empty_outbox_has_no_backlog(schema: str, engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        assert await measure_backlog(conn, schema) == Backlog(0, None, exact=True)
        assert await measure_backlog(conn, schema, exact_up_to=1) == Backlog(0, None, exact=True)


async def test_a_small_backlog_is_counted_exactly_with_its_oldest_row(schema: str, engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await _add(conn, schema, 25)
    async with engine.begin() as conn:
        await _add(conn, schema, 5)
        ids = await _ids(conn, schema)
        await conn.execute(text(f"DELETE FROM {schema}.outbox WHERE id = ANY(:ids)"), {"ids": ids[:3] + ids[10:14]})
        oldest = await _oldest(conn, schema)
        assert await measure_backlog(conn, schema, exact_up_to=30) == Backlog(23, oldest, exact=True)
        assert await measure_backlog(conn, schema, exact_up_to=24) == Backlog(23, oldest, exact=True)


async def test_a_large_backlog_is_the_span_of_its_ids_an_upper_bound(schema: str, engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await _add(conn, schema, 40)
    async with engine.connect() as conn:  # a rolled-back transaction leaves a gap in the ids
        await _add(conn, schema, 7)
        await conn.rollback()
    async with engine.begin() as conn:
        await _add(conn, schema, 10)
        ids = await _ids(conn, schema)
        assert len(ids) == 50 and ids[-1] - ids[0] + 1 == 57
        oldest = await _oldest(conn, schema)
        assert await measure_backlog(conn, schema, exact_up_to=10) == Backlog(57, oldest, exact=False)
        assert await measure_backlog(conn, schema, exact_up_to=50) == Backlog(57, oldest, exact=False)
        assert await measure_backlog(conn, schema, exact_up_to=51) == Backlog(50, oldest, exact=True)
        # the relay sent the rows before the gap: the span is exact again
        await conn.execute(text(f"DELETE FROM {schema}.outbox WHERE id = ANY(:ids)"), {"ids": ids[:40]})
        oldest = await _oldest(conn, schema)
        assert await measure_backlog(conn, schema, exact_up_to=5) == Backlog(10, oldest, exact=False)


async def test_measuring_reads_no_more_rows_than_it_counts_exactly(
    schema: str, engine: AsyncEngine, admin_db_url: str
) -> None:
    async with engine.begin() as conn:
        await _add(conn, schema, 500)
    admin = make_engine(admin_db_url, pool_size=1)
    try:
        async with admin.connect() as conn, explained(conn, analyze=True) as messages:
            messages.clear()
            backlog = await measure_backlog(conn, schema, exact_up_to=20)
            await conn.rollback()
    finally:
        await admin.dispose()
    [plan] = [p for p in plans(messages) if "outbox" in p["Query Text"]]
    assert backlog.rows == 500 and not backlog.exact
    assert any(node.get("Relation Name") == "outbox" for node in scans(plan["Plan"])), plan
    assert rows_read(plan["Plan"], "outbox") <= 20 + 1, plan
