"""Lifecycle closure on the real broker and database: the ledger's ``order_settled`` moves a completed order to
``settled`` (once, whatever is redelivered; the ledger's ``entry_posted`` take no inbox row), and ``karya orders
show`` says why an order got no stock and lists an order's ledger entries."""

from __future__ import annotations

import asyncio
import json
from datetime import date

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from typer.testing import CliRunner

from infra.db.engine import make_engine
from infra.db.roles import RoleUrls
from infra.messaging.envelope import Envelope, make_envelope
from services.contracts.ledger import ENTRY_POSTED, ORDER_SETTLED
from services.orders.cli import orders_app
from services.orders.outbound import OrdersTopics
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
    """One balanced settlement entry of ``order_key`` in the ledger's journal (what the ledger would have posted)."""
    debit, credit = f"asset:bank:{u}", f"asset:marketplace:{u}"
    async with engine.begin() as conn:
        next_sequence = text("SELECT coalesce(max(sequence), 0) + 1 FROM ledger.journal_entries")
        sequence = int((await conn.execute(next_sequence)).scalar_one())
        await conn.execute(
            text("INSERT INTO ledger.accounts (code, type, normal_side) VALUES (:d, 'asset', 'D'), (:c, 'asset', 'D')"),
            {"d": debit, "c": credit},
        )
        await conn.execute(  # lines and entry in one statement, as the journal requires
            text(
                "WITH lines AS (INSERT INTO ledger.journal_lines (sequence, line_no, account, side, amount) "
                "VALUES (:s, 1, :d, 'D', 90000), (:s, 2, :c, 'C', 90000)) "
                "INSERT INTO ledger.journal_entries (sequence, posting_key, request_hash, kind, memo, effective_at, "
                "recorded_at, order_key, prev_hash, chain_hash) VALUES (:s, :p, 'h', 'settlement', 'payout', now(), "
                "now(), :k, repeat('0', 64), :h)"
            ),
            {
                "s": sequence,
                "d": debit,
                "c": credit,
                "p": f"settlement:{u}",
                "k": order_key,
                "h": f"{u}{sequence:056x}",
            },
        )


async def test_the_ledgers_settlement_settles_the_order_and_orders_show_explains_it(
    kafka_bootstrap: str, database: RoleUrls, monkeypatch: pytest.MonkeyPatch
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
            ledger_topic = OrdersTopics.with_prefix(prefix).ledger_entries
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
        monkeypatch.setenv("DATABASE_URL", database.service)
        runner = CliRunner()
        shown = await asyncio.to_thread(runner.invoke, orders_app, ["show", key])  # the CLI runs its own loop
        assert shown.exit_code == 0, shown.output
        detail = json.loads(shown.output)
        assert detail["state"] == "settled" and detail["reservation_failed_reason"] is None
        assert [(e["kind"], e["amount"]) for e in detail["ledger_entries"]] == [("settlement", 90_000)]
        starved_shown = await asyncio.to_thread(runner.invoke, orders_app, ["show", starved.subject])
        assert starved_shown.exit_code == 0, starved_shown.output
        reason = json.loads(starved_shown.output)["reservation_failed_reason"]
        assert reason is not None and f"SKU-{u}" in reason
    finally:
        await engine.dispose()
