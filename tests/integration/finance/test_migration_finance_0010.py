"""finance_0010 down to finance_0009 and up again, on a database of the test's own: a verification run broken by an
anchor alone (recorded by the workspace's own :class:`ChainJobs` after an anchor was altered behind the ledger's
back, as in test_chain_jobs) has no broken entry, which the earlier shape cannot hold. The downgrade keeps it broken
(first broken link 0, no entry's sequence; the problem naming the anchor), leaves an intact run intact and the
results immutable; upgrading again keeps both as they were and records anchor problems in their columns again."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from alembic import command
from sqlalchemy import text

from infra.db.engine import make_engine
from infra.db.migrate import alembic_config, upgrade_to_head_async
from infra.db.unit_of_work import Database
from services.finance.jobs import ChainJobs
from services.finance.scope import StaticViewer
from services.ledger.chain_anchor import take_anchor
from tests.conftest import Services
from tests.integration import ledger_support as ledger

pytestmark = pytest.mark.integration

AUDITOR = StaticViewer("auditor-1", "auditor_pusat", None)
RESULTS = "SELECT run_id, first_broken, problem FROM finance.verification_results ORDER BY run_id"


@pytest.fixture
async def own(services: Services) -> AsyncIterator[ledger.LedgerDatabase]:
    """A database of the test's own (it is migrated down and its anchors broken)."""
    async with ledger.fresh_database(services.admin_url) as db:
        yield db


async def _run(db: ledger.LedgerDatabase, start: bool = True) -> dict[int, dict[str, Any]]:
    """The workspace's history of runs by id (the finance role), after one more run if ``start``."""
    engine = make_engine(db.urls.finance, pool_size=2)
    try:
        jobs = ChainJobs(Database(engine, "finance"), "ledger")
        if start:
            await jobs.start(AUDITOR)
            await jobs.wait()
        return {r["id"]: r for r in await jobs.history()}
    finally:
        await engine.dispose()


async def _rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    engine = make_engine(url, pool_size=1)
    try:
        async with engine.connect() as conn:
            return [tuple(r) for r in await conn.execute(text(sql))]
    finally:
        await engine.dispose()


async def test_a_run_broken_by_an_anchor_alone_survives_the_downgrade_and_the_upgrade_again(
    own: ledger.LedgerDatabase,
) -> None:
    engine = make_engine(own.urls.service, pool_size=1)
    try:
        for _ in range(2):
            async with engine.begin() as conn:
                assert await take_anchor(ledger.ledger_uow(conn), "manual", datetime.now(UTC)) is not None
    finally:
        await engine.dispose()
    [intact] = (await _run(own)).values()
    assert (intact["state"], intact["first_broken"], intact["anchors"]) == ("ok", None, 2)
    await ledger.as_superuser(own.admin_url, "UPDATE ledger.chain_anchors SET reason = 'interval' WHERE anchor_no = 2")
    broken = max((await _run(own)).items())[1]
    assert (broken["state"], broken["first_broken"], broken["first_broken_anchor"]) == ("broken", None, 2)
    problem = broken["problem"]
    assert problem.startswith("anchor 2 does not match its hash")

    config = alembic_config(own.urls.migrator)
    await asyncio.to_thread(command.downgrade, config, "finance_0009")
    assert await _rows(own.urls.auditor, RESULTS) == [(intact["id"], None, None), (broken["id"], 0, problem)]
    columns = "SELECT column_name FROM information_schema.columns WHERE table_name = 'verification_results'"
    assert "first_broken_anchor" not in {c for (c,) in await _rows(own.urls.auditor, columns)}
    with pytest.raises(Exception, match="append-only"):  # the trigger is on again, even for the table's owner
        await _rows(own.urls.migrator, "UPDATE finance.verification_results SET problem = NULL RETURNING run_id")

    await upgrade_to_head_async(own.urls.migrator)
    assert await _rows(own.urls.auditor, RESULTS) == [(intact["id"], None, None), (broken["id"], 0, problem)]
    kept = (await _run(own, start=False))[broken["id"]]
    assert (kept["state"], kept["first_broken"], kept["first_broken_anchor"], kept["anchors"]) == (
        "broken",
        0,
        None,
        None,
    )
    again = max((await _run(own)).items())[1]
    assert again["id"] > broken["id"]
    assert (again["state"], again["first_broken"], again["first_broken_anchor"]) == ("broken", None, 2)
