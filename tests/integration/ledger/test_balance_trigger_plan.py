"""The balance trigger reads only the journal entries of its own statement: its plan, as PostgreSQL runs it inside
the trigger (``auto_explain`` of nested statements, sent to this session), reaches ``journal_entries`` only by the
entries' sequence — never a scan of the whole journal, whose cost would grow with every entry ever posted."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import text

from infra.db.engine import make_engine
from services.ledger.adapters.journal_repo import post_entries
from tests.integration.ledger.test_chain_segments_db import sale
from tests.integration.ledger_support import ledger_uow, uid

pytestmark = pytest.mark.integration


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", ()):
        yield from _nodes(child)


async def test_the_balance_trigger_reaches_journal_entries_only_by_their_sequence(admin_db_url: str) -> None:
    engine = make_engine(admin_db_url, pool_size=1)
    try:
        async with engine.begin() as conn:  # a journal that is not tiny: a whole-table hash would be tempting
            await post_entries(ledger_uow(conn), [sale(f"shopee:shop-plan:{uid()}") for _ in range(300)])
        async with engine.connect() as conn:
            raw = (await conn.get_raw_connection()).driver_connection
            assert raw is not None
            messages: list[str] = []
            raw.add_log_listener(lambda _conn, message: messages.append(message.message))
            for setting in (
                "LOAD 'auto_explain'",
                "SET auto_explain.log_min_duration = 0",
                "SET auto_explain.log_nested_statements = on",
                "SET auto_explain.log_format = json",
                "SET client_min_messages = log",
            ):
                await conn.execute(text(setting))
            for _ in range(7):  # past PL/pgSQL's first custom plans, into the plan it keeps
                messages.clear()
                await post_entries(ledger_uow(conn), [sale(f"shopee:shop-plan:{uid()}") for _ in range(40)])
                await conn.commit()
    finally:
        await engine.dispose()
    plans = [json.loads(m.split("plan:", 1)[1]) for m in messages if "plan:" in m]
    folds = [p for p in plans if "INSERT INTO ledger.account_balances" in p["Query Text"]]
    assert len(folds) == 1, [p["Query Text"][:80] for p in plans]
    journal_reads = [n for n in _nodes(folds[0]["Plan"]) if n.get("Relation Name") == "journal_entries"]
    assert journal_reads, "the trigger must find each entry's segment in the journal"
    for node in journal_reads:
        assert "sequence" in node.get("Index Cond", ""), node
