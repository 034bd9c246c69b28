"""Lifecycle closure on the real broker and database: the ledger's ``order_settled`` moves a completed order to
``settled`` (once, whatever is redelivered; the ledger's ``entry_posted`` take no inbox row), and ``karya orders
show`` says why an order got no stock and lists an order's ledger entries."""

from __future__ import annotations

import asyncio
import hashlib
import json
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from typer.testing import CliRunner

from infra.db.engine import make_engine
from infra.db.roles import RoleUrls
from infra.messaging.envelope import Envelope, make_envelope
from services.contracts.ledger import ENTRY_POSTED, ORDER_SETTLED
from services.ledger.adapters.journal_repo import post_entries
from services.ledger.domain import accounts
from services.ledger.domain.accounts import Side
from services.ledger.domain.journal import EntryKind, JournalEntry, Line
from services.orders.cli import orders_app
from services.orders.outbound import OrdersTopics
from tests.integration.cli_support import cli_root
from tests.integration.ledger_support import ledger_uow
from tests.integration.orders_support import (
    load,
    orders_by_key,
    orders_consumer,
    publish,
    recent,
    small_catalogue,
    status_event,
    uid,
    wait_applied,
)
from tests.naming import topic_prefix

pytestmark = pytest.mark.integration


def entry_posted(order_key: str, sequence: int, kind: str) -> Envelope:
    """The ledger's ``entry_posted`` for one entry of ``order_key``."""
    data = {
        "sequence": sequence,
        "posting_key": f"{kind}:{order_key}",
        "kind": kind,
        "order_key": order_key,
        "amount": 100_000,
        "effective_at": recent().isoformat(),
        "chain_hash": f"{sequence:064x}",
    }
    return make_envelope(type=ENTRY_POSTED, source="karya/ledger", subject=order_key, data=data)


def order_settled(order_key: str, sequence: int) -> Envelope:
    """The ledger's ``order_settled`` for the settlement entry ``sequence`` of ``order_key``."""
    data = {
        "order_key": order_key,
        "posting_key": f"settlement:{order_key}",
        "sequence": sequence,
        "amount": 100_000,
        "effective_at": recent().isoformat(),
    }
    return make_envelope(type=ORDER_SETTLED, source="karya/ledger", subject=order_key, data=data)


async def post_journal_entry(engine: AsyncEngine, u: str, order_key: str) -> None:
    """One balanced settlement entry of ``order_key``, posted through the ledger's own journal adapter (so the
    chain head moves with it: a row written behind its back broke the chain for every later test on the session
    database)."""
    entry = JournalEntry(
        posting_key=f"{order_key}:settlement:T-{u}",
        request_hash=hashlib.sha256(u.encode()).hexdigest(),
        kind=EntryKind.SETTLEMENT,
        memo="payout",
        effective_at=datetime.now(UTC),
        lines=(
            Line(accounts.bank("cipinang"), Side.DEBIT, 90_000),
            Line(accounts.marketplace_receivable("cipinang", "tokopedia"), Side.CREDIT, 90_000),
        ),
        order_key=order_key,
    )
    async with engine.begin() as conn:
        await post_entries(ledger_uow(conn), [(entry, None)])


async def test_the_ledgers_settlement_settles_the_order_and_orders_show_explains_it(
    kafka_bootstrap: str, database: RoleUrls
) -> None:
    u, prefix = uid(), topic_prefix()
    engine = make_engine(database.service)
    await load(engine, small_catalogue(u, [("w1", 3, date(2026, 3, 1))]))
    base = recent()
    done = [
        status_event(u, "done", raw, n, "tokopedia", qty=2, base=base) for n, raw in enumerate(["220", "500", "700"])
    ]
    starved = status_event(u, "starved", "220", 0, "tokopedia", qty=5, base=base)
    key = done[0].subject
    settlement = order_settled(key, 41)
    try:
        async with orders_consumer(database, kafka_bootstrap, prefix) as consumer:
            ledger_topic = OrdersTopics.with_prefix(prefix).ledger_order_events
            await publish(kafka_bootstrap, consumer.topic, [*done, starved])
            await wait_applied(engine, consumer, 4)
            # The ledger's entry_posted (of the completion and of the settlement) are skipped by their type header
            # and take no inbox row; order_settled is applied once, its redelivery is a duplicate.
            posted = [entry_posted(key, 40, "sale_completed"), entry_posted(key, 41, "settlement")]
            await publish(kafka_bootstrap, ledger_topic, [*posted, settlement])
            await publish(kafka_bootstrap, ledger_topic, [settlement])
            await wait_applied(engine, consumer, 5, duplicates=1)

        orders = await orders_by_key(engine, [key, starved.subject])
        assert (orders[key]["state"], orders[key]["reservations"]) == ("settled", ["consumed"])
        assert orders[starved.subject]["reservations"] == []
        async with engine.connect() as conn:
            history = (
                await conn.execute(
                    text(
                        "SELECT to_state, raw_status, decision FROM orders.order_history WHERE order_key = :k "
                        "AND requested_state = 'settled'"
                    ),
                    {"k": key},
                )
            ).all()
        assert [tuple(h) for h in history] == [("settled", "ledger#41", "forward")]

        await post_journal_entry(engine, u, key)
        root = cli_root(database)
        runner = CliRunner()
        shown = await asyncio.to_thread(runner.invoke, orders_app, ["show", key], obj=root)  # the CLI runs its own loop
        assert shown.exit_code == 0, shown.output
        detail = json.loads(shown.output)
        assert detail["state"] == "settled" and detail["reservation_failed_reason"] is None
        assert [(e["kind"], e["amount"]) for e in detail["ledger_entries"]] == [("settlement", 90_000)]
        starved_shown = await asyncio.to_thread(runner.invoke, orders_app, ["show", starved.subject], obj=root)
        assert starved_shown.exit_code == 0, starved_shown.output
        reason = json.loads(starved_shown.output)["reservation_failed_reason"]
        assert reason is not None and f"SKU-{u}" in reason
    finally:
        await engine.dispose()
