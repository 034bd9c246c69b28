"""A posting reads only the journal rows of its own entries: every plan PostgreSQL runs for it — its statement and
the journal's triggers inside it (``auto_explain`` of nested statements, sent to this session) — reaches
``journal_entries`` and ``journal_lines`` only through an index condition, never by scanning the whole journal, whose
cost would grow with every entry ever posted (``ledger_0004`` fixed that once for the checks; ``ledger_0014``'s
balance trigger did it again until ``ledger_0016``)."""

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


JOURNAL = {"journal_entries", "journal_lines"}
SCANS = {"Seq Scan", "Index Scan", "Index Only Scan", "Bitmap Index Scan", "Tid Scan", "Tid Range Scan"}


async def test_a_posting_reaches_the_journal_only_through_an_index_condition(admin_db_url: str) -> None:
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
    texts = [p["Query Text"] for p in plans]
    for needle in ("INSERT INTO ledger.account_balances", "FROM new_lines", "FROM new_entries"):
        assert any(needle in t for t in texts), (needle, [t[:80] for t in texts])  # the triggers' plans are here
    reads = [(p["Query Text"], n) for p in plans for n in _nodes(p["Plan"]) if n.get("Node Type") in SCANS]
    journal_reads = [(q, n) for q, n in reads if n.get("Relation Name") in JOURNAL or _journal_index(n)]
    assert any("account_balances" in q for q, _ in journal_reads), "the balance trigger finds segments in the journal"
    for query, node in journal_reads:
        assert node["Node Type"] != "Seq Scan" and node.get("Index Cond"), (query[:120], node)


def _journal_index(node: dict[str, Any]) -> bool:
    return str(node.get("Index Name", "")).startswith(("journal_entries", "journal_lines"))
