"""The orders waiting for stock are found through their partial index, not by reading every order: the query that
each stock-freeing batch runs must keep implying the index's predicate."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text

from infra.db.engine import make_engine
from infra.db.roles import RoleUrls
from infra.db.unit_of_work import UnitOfWork
from services.orders.adapters.locks import LOCK_WAITING_SQL
from services.orders.adapters.sql import Sql
from services.orders.app import SCHEMA
from services.orders.domain.lifecycle import BACKORDER_STATES

pytestmark = pytest.mark.integration


async def test_the_waiting_orders_query_can_use_the_partial_index_of_failed_reservations(database: RoleUrls) -> None:
    engine = make_engine(database.service, pool_size=1)
    try:
        async with engine.begin() as c:
            # Tiny test tables make a sequential scan cheapest; with it off, the planner shows what it can use.
            await c.execute(text("SET LOCAL enable_seqscan = off"))
            explain = Sql("EXPLAIN (FORMAT JSON) " + LOCK_WAITING_SQL).on(UnitOfWork(c, SCHEMA))
            params = {"skus": ["SKU-1"], "states": sorted(s.value for s in BACKORDER_STATES)}
            plan = (await c.execute(explain, params)).scalar_one()
    finally:
        await engine.dispose()
    assert "orders_waiting_idx" in json.dumps(plan)
