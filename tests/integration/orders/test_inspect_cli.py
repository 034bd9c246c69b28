"""`karya stock inspect` restocks returned units once, through the same function the stateful test drives."""

from __future__ import annotations

import asyncio
from datetime import date

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from infra.db.engine import make_engine
from infra.db.roles import RoleUrls
from infra.messaging.consumer import InboundEvent
from infra.messaging.delivery import Delivery
from services.orders.cli import stock_app
from services.orders.outbound import OrdersTopics
from tests.integration.cli_support import cli_root
from tests.integration.orders_support import (
    RETURNED_STATUS,
    load,
    orders_handler,
    outbox_types,
    recent,
    small_catalogue,
    status_event,
    stock_of,
    uid,
)
from tests.naming import topic_prefix

pytestmark = pytest.mark.integration


async def returned_order(url: str, u: str, topics: OrdersTopics) -> int:
    """Ship 2 units of a paid order, take them back into quarantine; returns the quarantine row id."""
    engine = make_engine(url, pool_size=1)
    try:
        await load(engine, small_catalogue(u, [("w1", 5, date(2026, 3, 1))]))
        processor, base = orders_handler(topics, returns=True), recent()
        for n, raw in enumerate(["220", "500", RETURNED_STATUS]):
            envelope = status_event(u, "back", raw, n, "tokopedia", qty=2, base=base)
            event = InboundEvent(envelope, Delivery("t", 0, n, None, b""))
            async with engine.begin() as conn:
                assert await processor(conn, [event]) == []
        async with engine.connect() as conn:
            sql = text("SELECT id FROM orders.quarantine WHERE order_key = :k")
            return int((await conn.execute(sql, {"k": envelope.subject})).scalar_one())
    finally:
        await engine.dispose()


async def counters(url: str, u: str) -> tuple[dict[str, int], int]:
    """Counters of the SKU and how many availability events it has in the outbox."""
    engine = make_engine(url, pool_size=1)
    try:
        sku = f"SKU-{u}"
        events = (await outbox_types(engine, [sku]))[sku]["stock_availability_changed"]
        return await stock_of(engine, sku), events
    finally:
        await engine.dispose()


def test_stock_inspect_restocks_once(database: RoleUrls) -> None:
    u = uid()
    prefix = topic_prefix()
    root = cli_root(database, prefix)  # the command's root: its events never reach shared topics
    qid = asyncio.run(returned_order(database.service, u, OrdersTopics.with_prefix(prefix)))
    before, events_before = asyncio.run(counters(database.service, u))
    assert before == {"on_hand": 3, "soft_reserved": 0, "allocated": 0, "quarantined": 2, "available": 3}

    runner = CliRunner()
    first = runner.invoke(stock_app, ["inspect", str(qid), "--verdict", "restock", "--note", "seams intact"], obj=root)
    assert first.exit_code == 0, first.output
    assert f"2 unit(s) of batch B-{u}-1: restock" in first.output
    again = runner.invoke(stock_app, ["inspect", str(qid), "--verdict", "write-off"], obj=root)
    assert again.exit_code == 1
    assert "already inspected" in again.output
    assert runner.invoke(stock_app, ["inspect", str(qid), "--verdict", "burn"], obj=root).exit_code == 2

    after, events_after = asyncio.run(counters(database.service, u))
    assert after == {"on_hand": 5, "soft_reserved": 0, "allocated": 0, "quarantined": 0, "available": 5}
    assert events_after == events_before + 1, "channels hear that the restocked units are for sale again"
