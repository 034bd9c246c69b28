"""The journal's defences in the database itself: role privileges, append-only triggers, balance triggers."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from infra.db.engine import make_engine
from infra.db.roles import RoleUrls
from tests.integration.ledger_support import Batch, completed, new_inmate, new_order_key, new_processor, post, settled

pytestmark = pytest.mark.integration

JOURNAL = ("ledger.journal_entries", "ledger.journal_lines")
T = datetime(2026, 5, 4, 9, tzinfo=UTC)


@pytest.fixture
async def posted(ledger_db: RoleUrls) -> AsyncIterator[tuple[AsyncEngine, int]]:
    """The service engine and the sequence of an entry this test posted (a settled two-batch order)."""
    engine = make_engine(ledger_db.service, pool_size=2)
    key = new_order_key()
    batches = [
        Batch(f"B-{key[-8:]}-1", "CPN-WDW-001", "cipinang", 2, 40_000, 10_000, "sup-kayu", ((new_inmate(), 1),)),
        Batch(f"B-{key[-8:]}-2", "CPN-GLV-001", "cipinang", 3, 20_000, 5_000, "sup-benang", ((new_inmate(), 1),)),
    ]
    processor = new_processor()
    assert await post(engine, processor, [completed(key, batches, T)]) == []
    assert await post(engine, processor, [settled(key, 140_000, T)]) == []
    async with engine.connect() as conn:
        seq = (
            await conn.execute(
                text("SELECT sequence FROM ledger.journal_entries WHERE posting_key = :k"),
                {"k": f"{key}:settlement:ESC-1"},
            )
        ).scalar_one()
    try:
        yield engine, int(seq)
    finally:
        await engine.dispose()


async def _refused(engine: AsyncEngine, match: str, *statements: str, **params: object) -> None:
    """Each of ``statements``, in one transaction, must be refused with an error matching ``match``."""
    with pytest.raises(DBAPIError, match=match):
        async with engine.begin() as conn:
            for statement in statements:
                await conn.execute(text(statement), params)


async def _journal_size(engine: AsyncEngine) -> tuple[int, int]:
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT (SELECT count(*) FROM ledger.journal_entries), (SELECT count(*) FROM ledger.journal_lines)"
                )
            )
        ).one()
    return int(row[0]), int(row[1])


async def test_service_role_cannot_update_delete_or_truncate_the_journal(
    posted: tuple[AsyncEngine, int],
) -> None:
    engine, seq = posted
    before = await _journal_size(engine)
    for table in JOURNAL:
        column = "memo = 'edited'" if table.endswith("entries") else "amount = amount + 1"
        await _refused(engine, "permission denied", f"UPDATE {table} SET {column} WHERE sequence = :s", s=seq)
        await _refused(engine, "permission denied", f"DELETE FROM {table} WHERE sequence = :s", s=seq)
        await _refused(engine, "permission denied", f"TRUNCATE {table} CASCADE")
    assert await _journal_size(engine) == before


async def test_even_the_owner_is_stopped_by_the_append_only_triggers(
    ledger_db: RoleUrls, posted: tuple[AsyncEngine, int]
) -> None:
    service, seq = posted
    before = await _journal_size(service)
    owner = make_engine(ledger_db.migrator, pool_size=1)  # owns the tables, so privileges do not stop it
    try:
        for table in JOURNAL:
            column = "memo = 'edited'" if table.endswith("entries") else "amount = amount + 1"
            await _refused(owner, "append-only: UPDATE", f"UPDATE {table} SET {column} WHERE sequence = :s", s=seq)
            await _refused(owner, "append-only: DELETE", f"DELETE FROM {table} WHERE sequence = :s", s=seq)
            await _refused(owner, "append-only: TRUNCATE", f"TRUNCATE {table} CASCADE")
    finally:
        await owner.dispose()
    assert await _journal_size(service) == before


async def test_auditor_cannot_write_any_ledger_table(ledger_db: RoleUrls, posted: tuple[AsyncEngine, int]) -> None:
    auditor = make_engine(ledger_db.auditor, pool_size=1)
    try:
        async with auditor.connect() as conn:
            tables = (
                (
                    await conn.execute(
                        text(
                            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'ledger' "
                            "AND table_type = 'BASE TABLE' ORDER BY 1"
                        )
                    )
                )
                .scalars()
                .all()
            )
            columns: dict[str, str] = dict(
                (
                    await conn.execute(
                        text(
                            "SELECT DISTINCT ON (table_name) table_name, column_name "
                            "FROM information_schema.columns WHERE table_schema = 'ledger' "
                            "ORDER BY table_name, ordinal_position"
                        )
                    )
                ).all()
            )
            # ...but it reads everything (that is its job)
            assert (await conn.execute(text("SELECT count(*) FROM ledger.journal_lines"))).scalar_one() > 0
        assert {
            "journal_entries",
            "journal_lines",
            "account_balances",
            "chain_segments",
            "chain_anchors",
            "accounts",
            "split_policies",
            "order_facts",
            "pending_events",
            "posting_conflicts",
        } <= set(tables)
        for table in tables:
            name, column = f"ledger.{table}", columns[table]
            await _refused(auditor, "permission denied", f"INSERT INTO {name} DEFAULT VALUES")
            await _refused(auditor, "permission denied", f'UPDATE {name} SET "{column}" = "{column}"')
            await _refused(auditor, "permission denied", f"DELETE FROM {name}")
            await _refused(auditor, "permission denied", f"TRUNCATE {name} CASCADE")
    finally:
        await auditor.dispose()


_ENTRY = (
    "INSERT INTO ledger.journal_entries (sequence, posting_key, request_hash, kind, memo, effective_at, "
    "recorded_at, prev_hash, chain_hash, segment) SELECT s, 'forged:' || s, repeat('a', 64), 'settlement', 'forged', "
    "now(), now(), repeat('0', 64), md5(s::text), 's0' FROM (SELECT CAST(:s AS bigint) AS s) AS forged"
)
_ACCOUNTS = (
    "INSERT INTO ledger.accounts (code, type, normal_side) VALUES ('asset:bank:main', 'asset', 'D'), "
    "('clearing:suspense', 'clearing', 'D') ON CONFLICT DO NOTHING"
)
_SUSPENSE = "clearing:suspense"


def _lines(*lines: tuple[int, str, int, str]) -> str:
    """An INSERT of journal lines ``(line_no, side, amount, account)`` for sequence ``:s``."""
    values = ", ".join(f"(:s, {n}, '{account}', '{side}', {amount})" for n, side, amount, account in lines)
    return f"INSERT INTO ledger.journal_lines (sequence, line_no, account, side, amount) VALUES {values}"


def _entry_with(*lines: tuple[int, str, int, str]) -> str:
    """The posting protocol: the entry and its lines in ONE statement."""
    return f"WITH entry AS ({_ENTRY} RETURNING 1) {_lines(*lines)}"


def _dr(n: int, amount: int, account: str = "asset:bank:main") -> tuple[int, str, int, str]:
    return (n, "D", amount, account)


def _cr(n: int, amount: int, account: str = _SUSPENSE) -> tuple[int, str, int, str]:
    return (n, "C", amount, account)


async def test_service_role_cannot_post_unbalanced_or_one_line_entries(
    posted: tuple[AsyncEngine, int],
) -> None:
    engine, seq = posted
    before = await _journal_size(engine)
    forged = 9_000_000_000 + random.randrange(1_000_000)  # never a real sequence; everything rolls back
    # the protocol itself works: a balanced entry with its lines in one statement is accepted (then rolled back)
    async with engine.connect() as conn:
        await conn.execute(text(_ACCOUNTS))
        await conn.execute(text(_entry_with(_dr(1, 100), _cr(2, 100))), {"s": forged})
        await conn.rollback()
    # unbalanced: refused at the end of the statement
    await _refused(
        engine,
        "not balanced: 2 lines, debits - credits = 10",
        _ACCOUNTS,
        _entry_with(_dr(1, 100), _cr(2, 90)),
        s=forged,
    )
    # one line
    await _refused(engine, "not balanced: 1 lines", _ACCOUNTS, _entry_with(_dr(1, 100)), s=forged)
    # no lines at all
    await _refused(engine, "not balanced: 0 lines", _ENTRY, s=forged)
    # lines without their entry, and lines first with the entry in a later statement
    await _refused(engine, "need their entry", _ACCOUNTS, _lines(_dr(1, 100), _cr(2, 100)), s=forged)
    await _refused(engine, "need their entry", _ACCOUNTS, _lines(_dr(1, 100), _cr(2, 100)), _ENTRY, s=forged)
    # a line on an account never opened
    await _refused(engine, "never opened", _ACCOUNTS, _entry_with(_dr(1, 100), _cr(2, 100, "asset:nowhere")), s=forged)
    # a balanced pair of lines added to an entry already posted: refused
    await _refused(
        engine, "cannot be added to an entry already posted", _ACCOUNTS, _lines(_dr(90, 1), _cr(91, 1)), s=seq
    )
    # ...and to an entry posted earlier in the same transaction
    await _refused(
        engine,
        "cannot be added to an entry already posted",
        _ACCOUNTS,
        _entry_with(_dr(1, 100), _cr(2, 100)),
        _lines(_dr(3, 5), _cr(4, 5)),
        s=forged,
    )
    # zero and negative amounts never get as far as the triggers
    await _refused(engine, "check constraint", _ACCOUNTS, _entry_with(_dr(1, 0), _cr(2, 0)), s=forged)
    await _refused(engine, "check constraint", _ACCOUNTS, _entry_with(_dr(1, 5), _cr(2, -5)), s=forged)
    assert await _journal_size(engine) == before


async def test_opened_accounts_are_permanent_even_for_the_owner(
    ledger_db: RoleUrls, posted: tuple[AsyncEngine, int]
) -> None:
    """Lines name accounts by code without a per-line foreign key, so the codes must never change or vanish."""
    owner = make_engine(ledger_db.migrator, pool_size=1)
    try:
        await _refused(owner, "append-only", "DELETE FROM ledger.accounts WHERE code LIKE 'asset:bank:%'")
        await _refused(owner, "append-only", "UPDATE ledger.accounts SET code = upper(code) WHERE code LIKE 'asset:%'")
    finally:
        await owner.dispose()
