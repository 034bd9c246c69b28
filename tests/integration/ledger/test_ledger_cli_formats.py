"""`karya ledger` reports as a finance user meets them (issue 16): ``--format table|json|csv``, whole account codes
(``asset:bank:cipinang:main`` is no emoji, nothing cut at 80 columns when stdout is not a terminal), amounts
right-aligned as ``Rp 1.234.567`` with Dr/Cr, times with their zone, a usage error for a bad ``--as-of``, and
``entries --order KEY`` listing an order's journal entries — each checked against the journal on a real database."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import text
from typer.testing import CliRunner, Result

from infra.db.engine import make_engine
from infra.db.roles import RoleUrls
from services.ledger.cli import ledger_app
from tests.integration.ledger_support import (
    Batch,
    completed,
    ledger_cli_root,
    new_inmate,
    new_order_key,
    new_processor,
    post,
)
from tests.integration.ledger_support import settled as settled_event

pytestmark = pytest.mark.integration


async def _cli(urls: RoleUrls, *args: str) -> Result:
    result = await asyncio.to_thread(CliRunner().invoke, ledger_app, list(args), obj=ledger_cli_root(urls))
    return result


async def _ok(urls: RoleUrls, *args: str) -> str:
    result = await _cli(urls, *args)
    assert result.exit_code == 0, result.output
    return result.stdout


def _right_aligned(table: str, column: int) -> bool:
    """Every body cell of ``column`` (0-based, between the box's ``│``) ends at the same place."""
    cells = [line.split("│")[column + 1] for line in table.splitlines() if line.count("│") > column + 1]
    body = [c for c in cells[1:] if c.strip()]  # the first is the header
    return len(body) > 1 and len({len(c.rstrip()) for c in body}) == 1 and all(c.endswith(" ") for c in body)


async def test_an_orders_entries_and_the_trial_balance_in_every_format(ledger_db: RoleUrls) -> None:
    key, inmate = new_order_key(), new_inmate()
    batch = Batch("B-CPN-GLV-F16", "CPN-GLV-001", "cipinang", 3, 1_250_000, 90_000, "sup-benang", ((inmate, 1),))
    engine = make_engine(ledger_db.service, pool_size=1)
    try:
        processor = new_processor()
        at = datetime(2026, 3, 2, 17, 30, tzinfo=UTC)
        assert await post(engine, processor, [completed(key, [batch], at), settled_event(key, batch.value, at)]) == []
        async with engine.connect() as conn:
            stored = (
                await conn.execute(
                    text(
                        "SELECT e.sequence, l.account, l.side, l.amount FROM ledger.journal_entries e "
                        "JOIN ledger.journal_lines l USING (sequence) WHERE e.order_key = :k ORDER BY 1, l.line_no"
                    ),
                    {"k": key},
                )
            ).all()
    finally:
        await engine.dispose()
    assert stored

    # --- entries --order: JSON holds every line of every entry, as the journal does
    entries: list[dict[str, Any]] = json.loads(await _ok(ledger_db, "entries", "--order", key, "--format", "json"))
    as_listed = [
        (e["sequence"], line["account"], "D" if line["debit"] else "C", line["debit"] or line["credit"])
        for e in entries
        for line in e["lines"]
    ]
    assert as_listed == [(r.sequence, r.account, r.side, r.amount) for r in stored]
    assert all(sum(x["debit"] for x in e["lines"]) == sum(x["credit"] for x in e["lines"]) for e in entries)

    # --- CSV: integer rupiah, times with the chosen zone's offset
    rows = list(
        csv.DictReader(io.StringIO(await _ok(ledger_db, "entries", "--order", key, "--format", "csv", "--tz", "WITA")))
    )
    assert len(rows) == len(stored)
    assert sum(int(r["Debit"] or 0) for r in rows) == sum(int(r["Credit"] or 0) for r in rows) > 0
    assert all(r["effective (WITA)"].endswith("+08:00") for r in rows)

    # --- table: whole codes (no emoji, no ellipsis), Rp amounts right-aligned, the zone named
    table = await _ok(ledger_db, "entries", "--order", key)
    assert "asset:bank:cipinang:main" in table and "🏦" not in table and "…" not in table
    assert key in table and "2026-03-03 00:30:00 WIB" in table
    assert "Rp 3.750.000" in table  # the gross of 3 x 1.250.000
    assert _right_aligned(table, 5) and _right_aligned(table, 6)
    assert f"{len(entries)} entries" in table
    nothing = await _ok(ledger_db, "entries", "--order", "shopee:0:NO-SUCH-ORDER")
    assert "no journal entries for order shopee:0:NO-SUCH-ORDER" in nothing

    # --- trial balance: CSV and table agree with --json
    by_json = json.loads(await _ok(ledger_db, "trial-balance", "--json"))
    by_csv = list(csv.DictReader(io.StringIO(await _ok(ledger_db, "trial-balance", "--format", "csv"))))
    assert [(r["Account"], int(r["Debit"]), int(r["Credit"]), int(r["Balance"])) for r in by_csv] == [
        (a["account"], a["debit"], a["credit"], a["balance"]) for a in by_json["accounts"]
    ]
    tb = await _ok(ledger_db, "trial-balance")
    assert "asset:bank:cipinang:main" in tb and "🏦" not in tb and "…" not in tb
    assert max(len(line) for line in tb.splitlines()) > 80  # as wide as its content, not the 80 columns of old
    for account in by_json["accounts"]:
        assert account["account"] in tb  # every code whole, however long
    assert _right_aligned(tb, 2) and _right_aligned(tb, 3)
    bank = next(line for line in tb.splitlines() if "asset:bank:cipinang:main" in line)
    assert bank.rstrip().rstrip("│").rstrip().endswith(" Dr")

    # --- statement and inmate reports print CSV too
    statement_rows = list(
        csv.DictReader(io.StringIO(await _ok(ledger_db, "statement", "asset:bank:cipinang:main", "--format", "csv")))
    )
    assert int(statement_rows[-1]["Balance"]) == next(
        a["balance"] for a in by_json["accounts"] if a["account"] == "asset:bank:cipinang:main"
    )
    premi = list(csv.DictReader(io.StringIO(await _ok(ledger_db, "inmate", inmate, "--format", "csv"))))
    assert [r["Order"] for r in premi] == [key] and int(premi[0]["Amount"]) > 0


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["trial-balance", "--as-of", "yesterday"], "--as-of: 'yesterday' is not an ISO 8601 date or time"),
        (["statement", "asset:bank:cipinang:main", "--from", "2026-13-01"], "--from: '2026-13-01' is not an ISO 8601"),
        (["inmate", "WBP-AAAAAA", "--tz", "Mars/Olympus"], "unknown time zone 'Mars/Olympus'"),
        (["trial-balance", "--format", "xml"], "'xml' is not one of"),
    ],
)
async def test_bad_options_are_usage_errors_not_tracebacks(ledger_db: RoleUrls, args: list[str], needle: str) -> None:
    result = await _cli(ledger_db, *args)
    assert result.exit_code == 2
    assert needle in " ".join(result.output.replace("│", " ").split())
    assert "Traceback" not in result.output
