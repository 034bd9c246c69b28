"""A posting reads only the journal rows of its own entries: every plan PostgreSQL runs for it — its statement and
the journal's triggers inside it (``auto_explain`` of nested statements, sent to this session) — reaches
``journal_entries`` and ``journal_lines`` only through an index condition, never by scanning the whole journal, whose
cost would grow with every entry ever posted (``ledger_0004`` fixed that once for the checks; ``ledger_0014``'s
balance trigger did it again until ``ledger_0016``)."""

from __future__ import annotations

from typing import Any

import pytest

from infra.db.engine import make_engine
from services.ledger.adapters.journal_repo import post_entries
from tests.integration.ledger.test_chain_segments_db import sale
from tests.integration.ledger_support import ledger_uow, uid
from tests.integration.plan_support import explained, plans, reads_by_index_condition, scans

pytestmark = pytest.mark.integration

JOURNAL = {"journal_entries", "journal_lines"}


async def test_a_posting_reaches_the_journal_only_through_an_index_condition(admin_db_url: str) -> None:
    engine = make_engine(admin_db_url, pool_size=1)
    try:
        async with engine.begin() as conn:  # a journal that is not tiny: a whole-table hash would be tempting
            await post_entries(ledger_uow(conn), [sale(f"shopee:shop-plan:{uid()}") for _ in range(300)])
        async with engine.connect() as conn, explained(conn) as messages:
            for _ in range(7):  # past PL/pgSQL's first custom plans, into the plan it keeps
                messages.clear()
                await post_entries(ledger_uow(conn), [sale(f"shopee:shop-plan:{uid()}") for _ in range(40)])
                await conn.commit()
    finally:
        await engine.dispose()
    ran = plans(messages)
    texts = [p["Query Text"] for p in ran]
    for needle in ("INSERT INTO ledger.account_balances", "FROM new_lines", "FROM new_entries"):
        assert any(needle in t for t in texts), (needle, [t[:80] for t in texts])  # the triggers' plans are here
    journal_reads = [
        (p["Query Text"], n)
        for p in ran
        for n in scans(p["Plan"])
        if n.get("Relation Name") in JOURNAL or _journal_index(n)
    ]
    assert any("account_balances" in q for q, _ in journal_reads), "the balance trigger finds segments in the journal"
    for query, node in journal_reads:
        assert reads_by_index_condition(node), (query[:120], node)


def _journal_index(node: dict[str, Any]) -> bool:
    return str(node.get("Index Name", "")).startswith(("journal_entries", "journal_lines"))
