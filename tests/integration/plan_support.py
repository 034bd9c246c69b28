"""The plans PostgreSQL actually runs, nested statements (triggers, functions) included: ``auto_explain`` on one
superuser session, its messages sent to the client. For tests that pin how a statement reaches a table whose size
grows with the business (the journal, an inbox): by an index condition, never by reading all of it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

SCANS = {"Seq Scan", "Index Scan", "Index Only Scan", "Bitmap Index Scan", "Tid Scan", "Tid Range Scan"}


@asynccontextmanager
async def explained(conn: AsyncConnection, *, analyze: bool = False) -> AsyncIterator[list[str]]:
    """Log the plan of every statement ``conn`` runs (its session must be a superuser's) into the yielded list, as
    ``auto_explain`` writes it (JSON after ``plan:``); clear the list to keep only later statements. With ``analyze``
    the plans carry the rows each node actually returned (see :func:`rows_read`). A statement's plan arrives with
    its end: read the list after the next round trip (a commit or rollback)."""
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
        *(["SET auto_explain.log_analyze = on"] if analyze else []),
    ):
        await conn.execute(text(setting))
    yield messages


def plans(messages: list[str]) -> list[dict[str, Any]]:
    """The plans among ``messages`` (each with its ``Query Text`` and ``Plan``)."""
    return [json.loads(m.split("plan:", 1)[1]) for m in messages if "plan:" in m]


def scans(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every node of ``plan`` that reads a table or an index."""
    if plan.get("Node Type") in SCANS:
        yield plan
    for child in plan.get("Plans", ()):
        yield from scans(child)


def reads_by_index_condition(node: dict[str, Any]) -> bool:
    """True when the scan ``node`` is bounded by an index condition (not a sequential or whole-index scan)."""
    return node["Node Type"] != "Seq Scan" and bool(node.get("Index Cond"))


def rows_read(plan: dict[str, Any], relation: str) -> int:
    """The rows the scans of ``relation`` in ``plan`` (logged with ``analyze``) returned, over all their loops."""
    return sum(n["Actual Rows"] * n["Actual Loops"] for n in scans(plan) if n.get("Relation Name") == relation)
