"""Closed periods on the real database and broker (issue 17, item 5; docs/accounting.md "Periods").

A late settlement after a period close goes through the ledger's consumer on Kafka and posts, to the rupiah, in the
first open period with the period it belongs to in its memo, and the closed month's trial balance as of its end is
the same before and after. The database refuses any entry of a lapas effective inside its closed period, whoever
inserts it, and ``karya ledger close|periods`` answer bad input by its rule with their exit codes.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine
from typer.testing import CliRunner, Result

from infra.db.engine import make_engine
from infra.db.roles import RoleUrls
from services.ledger.adapters.journal_repo import post_entries
from services.ledger.cli import ledger_app
from services.ledger.domain.accounts import Side
from services.ledger.domain.journal import EntryKind, JournalEntry, Line
from tests.integration.ledger.scenario_support import journal_of
from tests.integration.ledger.test_ledger_broker import ledger_consumer
from tests.integration.ledger_support import (
    Batch,
    LedgerDatabase,
    assert_journal_sound,
    completed,
    ledger_cli_root,
    ledger_uow,
    new_inmate,
    new_order_key,
    new_processor,
    post,
    publish,
    settled,
    uid,
)
from tests.integration.messaging_support import wait_for

pytestmark = pytest.mark.integration

WITA, WIT = ZoneInfo("Asia/Makassar"), ZoneInfo("Asia/Jayapura")


async def _cli(urls: RoleUrls, *argv: str, env: dict[str, str | None] | None = None) -> Result:
    """``karya ledger ARGV`` in this process (off the event loop), reading as the auditor, writing as the service."""
    return await asyncio.to_thread(CliRunner().invoke, ledger_app, list(argv), obj=ledger_cli_root(urls), env=env)


async def _add_lapas(engine: AsyncEngine, lapas: str, province: str) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            text("INSERT INTO orders.lapas VALUES (:l, :l, 'Kota', :p) ON CONFLICT DO NOTHING"),
            {"l": lapas, "p": province},
        )


async def _entries(engine: AsyncEngine, key: str) -> dict[str, tuple[datetime, str]]:
    """Effective time and memo of each entry of order ``key``, by posting key without the order key."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT posting_key, effective_at, memo FROM ledger.journal_entries WHERE order_key = :k"), {"k": key}
        )
        return {r.posting_key.removeprefix(f"{key}:"): (r.effective_at, r.memo) for r in rows}


async def test_a_late_settlement_after_a_period_close_posts_in_the_first_open_period(
    own_database: LedgerDatabase, kafka_bootstrap: str
) -> None:
    """The worked example of docs/accounting.md "Periods", through the consumer on Kafka."""
    urls = own_database.urls
    engine = make_engine(urls.service, pool_size=2)
    key, inmate = new_order_key(), new_inmate()
    batch = Batch(f"B-KRB-{uid()}", "KRB-CCN-001", "kerobokan", 2, 50_000, 10_000, "sup-kelapa", ((inmate, 1),))
    sold, natural = datetime(2026, 11, 20, 10, tzinfo=WITA), datetime(2026, 11, 30, 21, tzinfo=WITA)
    try:
        await _add_lapas(engine, "kerobokan", "Bali")
        async with ledger_consumer(own_database, kafka_bootstrap) as ledger:
            await publish(kafka_bootstrap, ledger.orders_topic, [completed(key, [batch], sold)])
            await wait_for(lambda: _has(engine, key, "completed"), what="the completion")
            closing = await _cli(urls, "close", "--lapas", "kerobokan", "--period", "2026-11", "--as", "ani")
            assert closing.exit_code == 0, closing.output
            assert (
                "closed 2026-11 of kerobokan (Asia/Makassar: 2026-11-01 00:00:00 WITA to 2026-12-01 00:00:00 WITA)"
                in (closing.output)
            )
            as_of_end = "2026-11-30T23:59:59.999999+08:00"
            assert f"--as-of {as_of_end}" in closing.output
            before = await _cli(urls, "trial-balance", "--as-of", as_of_end, "--format", "json")
            november = {a["account"]: a["balance"] for a in json.loads(before.output)["accounts"]}
            assert november == {
                "asset:marketplace_receivable:kerobokan:shopee": 100_000,
                "clearing:undistributed_proceeds:kerobokan": 100_000,
            }
            # the marketplace's escrow release of 30 November arrives after the close
            await publish(kafka_bootstrap, ledger.settlements_topic, [settled(key, 100_000, natural)])
            await wait_for(lambda: _has(engine, key, f"distribution:{batch.batch_id}"), what="the late settlement")
        receivable, undistributed = (
            "asset:marketplace_receivable:kerobokan:shopee",
            "clearing:undistributed_proceeds:kerobokan",
        )
        assert await journal_of(engine, key) == {
            "completed": {(receivable, "D", 100_000), (undistributed, "C", 100_000)},
            "settlement:ESC-1": {
                ("asset:bank:kerobokan:main", "D", 91_500),
                ("expense:marketplace_fee:kerobokan:commission_fee", "D", 6_000),
                ("expense:marketplace_fee:kerobokan:service_fee", "D", 2_000),
                ("asset:pph22_prepaid:kerobokan", "D", 500),
                (receivable, "C", 100_000),
                (undistributed, "D", 100_000),
                ("revenue:sales:kerobokan", "C", 100_000),
            },
            # kerobokan-standard@v2 (45/40/15) of B = 91,500 less material 20,000
            f"distribution:{batch.batch_id}": {
                ("expense:material_cost:kerobokan", "D", 20_000),
                ("liability:supplier_payable:kerobokan:sup-kelapa", "C", 20_000),
                ("expense:pnbp_share:kerobokan", "D", 32_175),
                ("liability:pnbp_payable:kerobokan", "C", 32_175),
                ("expense:inmate_premi:kerobokan", "D", 28_600),
                (f"liability:inmate_savings:{inmate}", "C", 28_600),
                ("expense:capital_allocation:kerobokan", "D", 10_725),
                ("equity:production_capital:kerobokan", "C", 10_725),
            },
        }
        entries = await _entries(engine, key)
        assert entries["completed"][0] == sold, "posted before the close: untouched"
        first_open = datetime(2026, 12, 1, tzinfo=WITA)
        note = (
            "; late: belongs to closed period 2026-11 of kerobokan (natural effective 2026-11-30T21:00:00+08:00), "
            "posted in 2026-12"
        )
        for late in ("settlement:ESC-1", f"distribution:{batch.batch_id}"):
            assert entries[late][0] == first_open and entries[late][1].endswith(note), entries[late]
        # the closed month as of its end: the same trial balance as before the late settlement posted
        after = await _cli(urls, "trial-balance", "--as-of", as_of_end, "--format", "json")
        assert before.exit_code == after.exit_code == 0 and json.loads(after.output) == json.loads(before.output)
        december = await _cli(urls, "trial-balance", "--as-of", "2026-12-01T00:00:00+08:00", "--format", "json")
        sales = {a["account"]: a["balance"] for a in json.loads(december.output)["accounts"]}
        assert sales["revenue:sales:kerobokan"] == 100_000, "the late settlement is December's"
        # the inmate's payout back-dated into November is refused by the database (the inmate is kerobokan's)
        payout = JournalEntry(
            f"payout:{inmate}:late",
            "b" * 64,
            EntryKind.PAYOUT,
            "back-dated payout",
            datetime(2026, 11, 30, tzinfo=WITA),
            (
                Line(f"liability:inmate_savings:{inmate}", Side.DEBIT, 1_000),
                Line("asset:bank:kerobokan:main", Side.CREDIT, 1_000),
            ),
        )
        with pytest.raises(DBAPIError, match="closed_period"):
            async with engine.begin() as conn:
                await post_entries(ledger_uow(conn), [(payout, "test")])
        async with engine.connect() as conn:
            await assert_journal_sound(conn)
    finally:
        await engine.dispose()


async def _has(engine: AsyncEngine, key: str, posting_key: str) -> bool:
    return posting_key in await _entries(engine, key)


@pytest.fixture
async def engine(ledger_db: RoleUrls) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(ledger_db.service, pool_size=2)
    yield engine
    await engine.dispose()


def _entry(key: str, lapas: str, at: datetime, name: str) -> JournalEntry:
    """A hand-made entry of order ``key`` (as a direct insert would carry): no plan placed it."""
    return JournalEntry(
        f"{key}:direct:{name}",
        "c" * 64,
        EntryKind.ADJUSTMENT,
        f"direct insert {name}",
        at,
        (
            Line("clearing:suspense:kerobokan", Side.DEBIT, 10),
            Line(f"clearing:undistributed_proceeds:{lapas}", Side.CREDIT, 10),
        ),
        order_key=key,
    )


async def test_the_database_refuses_an_entry_of_a_lapas_effective_in_its_closed_period(
    engine: AsyncEngine, ledger_db: RoleUrls
) -> None:
    lapas = f"lp-{uid()}"
    await _add_lapas(engine, lapas, "Papua")
    key = new_order_key()
    batch = Batch(f"B-{uid()}", "X-001", lapas, 1, 10_000, 1_000, "sup-x", ((new_inmate(), 1),))
    assert await post(engine, new_processor(), [completed(key, [batch], datetime(2026, 10, 15, tzinfo=WIT))]) == []
    closing = await _cli(ledger_db, "close", "--lapas", lapas, "--period", "2026-10", "--as", "ani")
    assert closing.exit_code == 0, closing.output
    end = datetime(2026, 11, 1, tzinfo=WIT)
    for name, at in (("inside", datetime(2026, 10, 20, tzinfo=WIT)), ("last", end - timedelta(microseconds=1))):
        with pytest.raises(DBAPIError, match=f"inside period 2026-10 of lapas {lapas}, which is closed"):
            async with engine.begin() as conn:
                await post_entries(ledger_uow(conn), [(_entry(key, lapas, at, name), "test")])
    async with engine.begin() as conn:  # at the period's end: the first open instant
        result = await post_entries(ledger_uow(conn), [(_entry(key, lapas, end, "open"), "test")])
    assert [c.entry.posting_key for c in result.posted] == [f"{key}:direct:open"]
    # the posting path places a late entry of the same order itself
    late = settled(key, 10_000, datetime(2026, 10, 31, 23, tzinfo=WIT))
    assert await post(engine, new_processor(), [late]) == []
    assert (await _entries(engine, key))["settlement:ESC-1"][0] == end
    # and a new order completed in the closed month (its facts are written before its entries)
    newcomer = new_order_key()
    batch = replace(batch, batch_id=f"B-{uid()}")
    completion = completed(newcomer, [batch], datetime(2026, 10, 30, 12, tzinfo=WIT))
    assert await post(engine, new_processor(), [completion]) == []
    effective, memo = (await _entries(engine, newcomer))["completed"]
    assert effective == end and memo.endswith(
        f"; late: belongs to closed period 2026-10 of {lapas} (natural effective 2026-10-30T12:00:00+09:00), "
        "posted in 2026-11"
    )
    async with engine.connect() as conn:
        await assert_journal_sound(conn)


async def test_closed_periods_are_append_only_once_per_month_and_only_after_it_ended(
    engine: AsyncEngine, ledger_db: RoleUrls
) -> None:
    lapas, zone = f"lp-{uid()}", "Asia/Jayapura"
    insert = (
        "INSERT INTO ledger.closed_periods (lapas_id, period, zone, starts_at, ends_at, closed_by) "
        "VALUES (:l, :p, :z, CAST(CAST(:s AS text) AS timestamptz), CAST(CAST(:e AS text) AS timestamptz), 'ani')"
    )
    good = {"l": lapas, "p": "2026-09", "z": zone, "s": "2026-09-01T00:00+09:00", "e": "2026-10-01T00:00+09:00"}
    async with engine.begin() as conn:
        await conn.execute(text(insert), good)
    now = datetime.now(UTC).astimezone(WIT)
    this_month = {
        **good,
        "p": f"{now:%Y-%m}",
        "s": now.replace(day=1, hour=0, minute=0, second=0, microsecond=0).isoformat(),
        "e": (now.replace(day=1, hour=0, minute=0, second=0, microsecond=0) + timedelta(days=32))
        .replace(day=1)
        .isoformat(),
    }
    for params, constraint in (
        (good, "closed_periods_pkey"),
        ({**good, "p": "2026-08"}, "month_bounds"),  # September's bounds under August's name
        ({**good, "p": "2026-08", "z": "Asia/Jakarta"}, "month_bounds"),
        (this_month, "month_ended"),
    ):
        with pytest.raises(DBAPIError, match=constraint):
            async with engine.begin() as conn:
                await conn.execute(text(insert), params)
    for statement in (
        "UPDATE ledger.closed_periods SET closed_by = 'budi' WHERE lapas_id = :l",
        "DELETE FROM ledger.closed_periods WHERE lapas_id = :l",
    ):
        with pytest.raises(DBAPIError, match=r"permission denied|append-only"):
            async with engine.begin() as conn:
                await conn.execute(text(statement), {"l": lapas})
    auditor = make_engine(ledger_db.auditor, pool_size=1)
    try:
        with pytest.raises(DBAPIError, match="permission denied"):
            async with auditor.begin() as conn:
                await conn.execute(text(insert), {**good, "p": "2026-07"})
        async with auditor.connect() as conn:
            rows = await conn.execute(
                text("SELECT period FROM ledger.closed_periods WHERE lapas_id = :l"), {"l": lapas}
            )
            assert [r.period for r in rows] == ["2026-09"]
    finally:
        await auditor.dispose()


async def test_close_and_periods_from_the_command_line(engine: AsyncEngine, ledger_db: RoleUrls) -> None:
    lapas, nowhere = f"lp-{uid()}", f"lp-{uid()}"
    await _add_lapas(engine, lapas, "Bali")
    await _add_lapas(engine, nowhere, "Atlantis")
    bad = await _cli(ledger_db, "close", "--lapas", lapas, "--period", "2026-11-30", "--as", "ani")
    assert bad.exit_code == 2 and "(period_format)" in bad.output
    unknown = await _cli(ledger_db, "close", "--lapas", f"no-{uid()}", "--period", "2026-10", "--as", "ani")
    assert unknown.exit_code == 1 and "close refused (lapas_exists): the catalogue has no lapas" in unknown.output
    zoneless = await _cli(ledger_db, "close", "--lapas", nowhere, "--period", "2026-10", "--as", "ani")
    assert zoneless.exit_code == 1 and "(lapas_zone): no time zone for lapas" in zoneless.output
    current = f"{datetime.now(UTC).astimezone(WITA):%Y-%m}"
    not_over = await _cli(ledger_db, "close", "--lapas", lapas, "--period", current, "--as", "ani")
    assert not_over.exit_code == 1 and f"(month_ended): {current} of {lapas} has not ended in Asia/Makassar" in (
        not_over.output
    )
    nobody = await _cli(ledger_db, "close", "--lapas", lapas, "--period", "2026-10", env={"KARYA_USER": None})
    assert nobody.exit_code == 1 and "(acting_user_required)" in nobody.output
    anchors = "SELECT count(*) FROM ledger.chain_anchors WHERE reason = 'period_close'"
    async with engine.connect() as conn:
        before = (await conn.execute(text(anchors))).scalar_one()
    closed = await _cli(ledger_db, "close", "--lapas", lapas, "--period", "2026-10", env={"KARYA_USER": "ani"})
    assert closed.exit_code == 0, closed.output
    async with engine.connect() as conn:  # the close pinned every segment's head in an anchor
        assert (await conn.execute(text(anchors))).scalar_one() > before
    again = await _cli(ledger_db, "close", "--lapas", lapas, "--period", "2026-10", "--as", "budi")
    assert again.exit_code == 1 and f"(close_once): 2026-10 of {lapas} was closed by ani at" in again.output
    listed = await _cli(ledger_db, "periods", "--lapas", lapas)
    assert listed.exit_code == 0
    assert f"{lapas}  2026-10  2026-10-01 00:00:00 WITA to 2026-11-01 00:00:00 WITA  closed by ani at" in listed.output
    assert listed.output.rstrip().endswith(f"1 closed for {lapas}")
    as_json: list[dict[str, Any]] = json.loads((await _cli(ledger_db, "periods", "--lapas", lapas, "--json")).output)
    assert [
        (p["period"], p["zone"], p["starts_at"], p["ends_at"], p["report_as_of"], p["closed_by"]) for p in as_json
    ] == [
        (
            "2026-10",
            "Asia/Makassar",
            "2026-10-01T00:00:00+08:00",
            "2026-11-01T00:00:00+08:00",
            "2026-10-31T23:59:59.999999+08:00",
            "ani",
        )
    ]
    everything = json.loads((await _cli(ledger_db, "periods", "--json")).output)
    assert lapas in {p["lapas_id"] for p in everything}
