"""The tax accounts in the reports per lapas, and ``--known-at``, on the real database (docs/accounting.md, "Tax
reports").

A lapas of its own in Bali (WITA, +08:00) on the session database, two balanced entries posted through the journal
repository's write path: on 10 November a PKP sale of 300,000 settled (output PPN 29,730 in the price, so revenue
270,270; fees 15,000 of which input PPN 1,486; PPh 22 1,500 creditable, with the income tax it prepays), then on 20
November a second sale of 100,000 (output PPN 9,910; PPh 22 500 borne as a cost and 400 to claim back). Known at the
first entry's recorded time, the reports show only the first; without ``--known-at`` both. A close of the month after
that instant is not in the report known then."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from infra.db.engine import make_engine
from infra.db.roles import RoleUrls
from services.ledger.adapters.journal_repo import post_entries
from services.ledger.domain.accounts import Side
from services.ledger.domain.journal import EntryKind, JournalEntry, Line
from tests.integration.ledger.test_corrections import karya
from tests.integration.ledger_support import as_superuser, ledger_uow, uid

pytestmark = pytest.mark.integration

WITA = ZoneInfo("Asia/Makassar")
D, C = Side.DEBIT, Side.CREDIT


@pytest.fixture
async def engine(ledger_db: RoleUrls) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(ledger_db.service, pool_size=1)
    yield engine
    await engine.dispose()


async def _post(engine: AsyncEngine, lapas: str, name: str, day: int, lines: list[tuple[str, Side, int]]) -> datetime:
    """One settlement entry of ``lapas`` (``{}`` in an account) effective on ``day`` November at noon WITA; its
    recorded time."""
    entry = JournalEntry(
        f"tax-report:{lapas}:{name}",
        "d" * 64,
        EntryKind.SETTLEMENT,
        f"tax report test {name}",
        datetime(2026, 11, day, 12, tzinfo=WITA),
        tuple(Line(account.format(lapas), side, amount) for account, side, amount in lines),
    )
    async with engine.begin() as conn:
        [committed] = (await post_entries(ledger_uow(conn), [(entry, "test")])).posted
        sql = "SELECT recorded_at FROM ledger.journal_entries WHERE sequence = :s"
        recorded: datetime = (await conn.execute(text(sql), {"s": committed.sequence})).scalar_one()
    return recorded


async def _report(db: RoleUrls, name: str, lapas: str, *more: str) -> Any:
    result = await karya(db, None, "report", name, "--lapas", lapas, "--period", "2026-11", "--format", "json", *more)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def _lines(data: dict[str, Any], section: str | None = None) -> dict[str, int]:
    return {(r["account"] or r["line"]): r["amount"] for r in data["rows"] if section in (None, r["section"])}


async def test_tax_accounts_in_the_reports_and_what_was_known_when(
    engine: AsyncEngine, ledger_db: RoleUrls, admin_db_url: str
) -> None:
    lapas = f"pajak-{uid()}"
    await as_superuser(admin_db_url, f"INSERT INTO orders.lapas VALUES ('{lapas}', '{lapas}', 'Denpasar', 'Bali')")
    first = await _post(
        engine,
        lapas,
        "first",
        10,
        [
            ("asset:bank:{}:main", D, 283_500),
            ("expense:marketplace_fee:{}:commission_fee", D, 13_514),
            ("asset:ppn_input:{}", D, 1_486),
            ("asset:pph22_prepaid:{}", D, 1_500),
            ("expense:income_tax:{}", D, 1_500),
            ("revenue:sales:{}", C, 270_270),
            ("liability:ppn_output:{}", C, 29_730),
            ("liability:income_tax_payable:{}", C, 1_500),
        ],
    )
    second = await _post(
        engine,
        lapas,
        "second",
        20,
        [
            ("asset:bank:{}:main", D, 99_100),
            ("expense:pph22_withheld:{}", D, 500),
            ("asset:pph22_reclaimable:{}", D, 400),
            ("revenue:sales:{}", C, 90_090),
            ("liability:ppn_output:{}", C, 9_910),
        ],
    )
    assert second > first
    wall_clock = first.astimezone(WITA).replace(tzinfo=None).isoformat()  # no offset: the lapas' zone

    known = await _report(ledger_db, "tax", lapas, "--known-at", wall_clock)
    assert known["known_at"] == first.astimezone(WITA).isoformat() and known["zone"] == "Asia/Makassar"
    tax = known["data"]
    assert (tax["ppn_output"], tax["ppn_input"], tax["ppn_net_payable"]) == (29_730, 1_486, 28_244)
    assert tax["pph22"] == {"creditable": 1_500, "expense": 0, "exempt": 0} and tax["income_tax"] == 1_500
    everything = (await _report(ledger_db, "tax", lapas))["data"]
    assert (everything["ppn_output"], everything["ppn_net_payable"]) == (39_640, 38_154)
    assert everything["pph22"] == {"creditable": 1_500, "expense": 500, "exempt": 400}
    assert everything["pph22_withheld"] == 2_400
    before = await _report(ledger_db, "tax", lapas, "--known-at", (first - timedelta(microseconds=1)).isoformat())
    assert before["data"]["ppn_output"] == 0 and before["data"]["pph22_withheld"] == 0
    as_of = await _report(ledger_db, "tax", lapas, "--as-of", "2026-11-15")  # midnight WITA: the first only
    assert as_of["as_of"] == "2026-11-15T00:00:00+08:00" and as_of["data"]["ppn_output"] == 29_730

    sheet = (await _report(ledger_db, "balance-sheet", lapas, "--known-at", wall_clock))["data"]
    assert _lines(sheet, "liabilities") == {
        f"liability:ppn_output:{lapas}": 29_730,
        f"liability:income_tax_payable:{lapas}": 1_500,
    }
    assert _lines(sheet, "assets") == {
        f"asset:bank:{lapas}:main": 283_500,
        f"asset:ppn_input:{lapas}": 1_486,
        f"asset:pph22_prepaid:{lapas}": 1_500,
    }
    assert sheet["balanced"] and sheet["period_result"] == 270_270 - 13_514 - 1_500
    assert f"asset:pph22_reclaimable:{lapas}" in _lines((await _report(ledger_db, "balance-sheet", lapas))["data"])

    income = (await _report(ledger_db, "income", lapas))["data"]
    assert income["revenue"] == 270_270 + 90_090
    assert _lines(income, "expenses") == {
        f"expense:marketplace_fee:{lapas}:commission_fee": 13_514,
        f"expense:income_tax:{lapas}": 1_500,
        f"expense:pph22_withheld:{lapas}": 500,
    }
    dist = (await _report(ledger_db, "distribution", lapas))["data"]
    assert [(r["line"], r["amount"]) for r in dist["rows"]] == [
        ("sales", 360_360),
        ("output PPN in the price", 39_640),
        ("output PPN", 39_640),
        ("marketplace fees", 13_514),
        ("PPh 22 withheld", 1_500),
        ("PPh 22 withheld, borne as a cost", 500),
        ("held or awaiting reconciliation", 400_000 - 39_640 - 13_514 - 2_000),
    ]

    table = await karya(ledger_db, None, "report", "tax", "--lapas", lapas, "--period", "2026-11")
    assert table.exit_code == 0 and "net PPN payable" in table.output and "Rp 38.154" in table.output, table.output
    assert f"tax of {lapas}, 2026-11 (Asia/Makassar, open), as of 2026-11-30T23:59:59.999999+08:00" in table.output
    # closed after the known-at instant: the month shows as open then, closed by ani now
    closing = await karya(ledger_db, None, "close", "--lapas", lapas, "--period", "2026-11", "--as", "ani")
    assert closing.exit_code == 0, closing.output
    assert (await _report(ledger_db, "tax", lapas, "--known-at", wall_clock))["closed_by"] is None
    assert (await _report(ledger_db, "tax", lapas))["closed_by"] == "ani"
    for option in ("--known-at", "--as-of"):
        bad = await karya(ledger_db, None, "report", "tax", "--lapas", lapas, "--period", "2026-11", option, "kemarin")
        assert bad.exit_code == 2 and "'kemarin' is not an ISO 8601 date or time" in bad.output, bad.output
        assert option in bad.output
