"""Tamper evidence: a row altered behind the service's back (as superuser, triggers off) is found by
``verify_chain`` and by ``karya ledger verify``, which names the first broken link and exits 1."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from infra.db.engine import make_engine
from services.ledger.reports import Verification, verify_chain
from tests.integration.ledger_support import (
    Batch,
    LedgerDatabase,
    as_superuser,
    completed,
    ledger_uow,
    new_inmate,
    new_order_key,
    new_processor,
    post,
    refunded,
    run_karya,
    settled,
)

pytestmark = pytest.mark.integration

T = datetime(2026, 4, 1, 10, tzinfo=UTC)


async def _verify(engine: AsyncEngine) -> Verification:
    async with engine.connect() as conn:
        return await verify_chain(ledger_uow(conn))


async def _seq(engine: AsyncEngine, posting_key: str) -> int:
    async with engine.connect() as conn:
        return int(
            (
                await conn.execute(
                    text("SELECT sequence FROM ledger.journal_entries WHERE posting_key = :k"),
                    {"k": posting_key},
                )
            ).scalar_one()
        )


async def _line(engine: AsyncEngine, seq: int, where: str) -> tuple[int, str, int]:
    """(line_no, account, amount) of the first line of entry ``seq`` matching ``where``."""
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    f"SELECT line_no, account, amount FROM ledger.journal_lines "
                    f"WHERE sequence = :s AND {where} ORDER BY line_no LIMIT 1"
                ),
                {"s": seq},
            )
        ).one()
    return int(row.line_no), str(row.account), int(row.amount)


async def test_altered_rows_are_found_and_named(own_database: LedgerDatabase) -> None:
    db = own_database
    engine = make_engine(db.urls.service, pool_size=2)
    processor = new_processor()
    a, b = new_inmate(), new_inmate()
    keys = [new_order_key(), new_order_key()]
    try:
        for n, key in enumerate(keys):
            batches = [
                Batch(f"B-T{n}-1", "CPN-GLV-001", "cipinang", 2, 30_000, 8_000, "sup-benang", ((a, 2), (b, 1))),
                Batch(f"B-T{n}-2", "CPN-WDW-001", "cipinang", 1, 90_000, 30_000, "sup-kayu", ((b, 1),)),
            ]
            assert await post(engine, processor, [completed(key, batches, T)]) == []
            assert await post(engine, processor, [settled(key, 150_000, T)]) == []
        assert await post(engine, processor, [refunded(keys[0], "R1", 40_000, T)]) == []

        intact = await _verify(engine)
        assert (
            intact.first_broken is None and intact.entries == 11
        )  # (completed, settled, 2 × distribution) × 2, refund, 2 reversals
        async with engine.connect() as conn:
            head = (await conn.execute(text("SELECT sequence, hash FROM ledger.chain_head"))).one()
        assert (head.sequence, head.hash) == (11, intact.head_hash)
        ok = await run_karya(db.urls, "ledger", "verify")
        assert ok.returncode == 0, ok.stderr
        assert f"chain intact: 11 entries in 7 segments; heads root {intact.head_hash}" in ok.stdout

        # 1. one line's amount raised in a distribution entry (the entry no longer balances)
        dist = await _seq(engine, f"{keys[0]}:distribution:B-T0-1")
        no, _, amount = await _line(engine, dist, "side = 'C'")
        await as_superuser(
            db.admin_url,
            f"UPDATE ledger.journal_lines SET amount = {amount + 1000} WHERE sequence = {dist} AND line_no = {no}",
        )
        found = await _verify(engine)
        assert found.first_broken == dist and "does not balance" in (found.problem or "")
        await as_superuser(
            db.admin_url,
            f"UPDATE ledger.journal_lines SET amount = {amount} WHERE sequence = {dist} AND line_no = {no}",
        )
        assert (await _verify(engine)) == intact  # the chain is over content: restoring the row restores it

        # 2. premi moved from one inmate's savings to another's: balanced, same amounts — only the hash tells
        victim = await _seq(engine, f"{keys[1]}:distribution:B-T1-1")
        no, account, _ = await _line(engine, victim, f"account = 'liability:inmate_savings:{a}'")
        await as_superuser(
            db.admin_url,
            "INSERT INTO ledger.accounts (code, type, normal_side) VALUES "
            "('liability:inmate_savings:WBP-FRAUD1', 'liability', 'C') ON CONFLICT DO NOTHING",
            f"UPDATE ledger.journal_lines SET account = 'liability:inmate_savings:WBP-FRAUD1' "
            f"WHERE sequence = {victim} AND line_no = {no}",
        )
        found = await _verify(engine)
        assert found.first_broken == victim and "does not match its hash" in (found.problem or "")
        await as_superuser(
            db.admin_url,
            f"UPDATE ledger.journal_lines SET account = '{account}' WHERE sequence = {victim} AND line_no = {no}",
        )
        assert (await _verify(engine)) == intact

        # 3. a debit and a credit of the same entry raised together (still balanced)
        refund = await _seq(engine, f"{keys[0]}:refund:R1")
        debit, _, _ = await _line(engine, refund, "side = 'D'")
        credit, _, _ = await _line(engine, refund, "side = 'C'")
        await as_superuser(
            db.admin_url,
            f"UPDATE ledger.journal_lines SET amount = amount + 500 "
            f"WHERE sequence = {refund} AND line_no IN ({debit}, {credit})",
        )
        found = await _verify(engine)
        assert found.first_broken == refund and "does not match its hash" in (found.problem or "")
        await as_superuser(
            db.admin_url,
            f"UPDATE ledger.journal_lines SET amount = amount - 500 "
            f"WHERE sequence = {refund} AND line_no IN ({debit}, {credit})",
        )
        assert (await _verify(engine)) == intact

        # 4. an entry's memo rewritten
        settlement = await _seq(engine, f"{keys[1]}:settlement:ESC-1")
        await as_superuser(
            db.admin_url,
            f"UPDATE ledger.journal_entries SET memo = memo || ' (corrected)' WHERE sequence = {settlement}",
        )
        found = await _verify(engine)
        assert found.first_broken == settlement and "does not match its hash" in (found.problem or "")
        broken = await run_karya(db.urls, "ledger", "verify")
        assert broken.returncode == 1
        assert f"chain BROKEN at entry {settlement}: entry {settlement} ({keys[1]}:settlement:ESC-1)" in broken.stderr
        await as_superuser(
            db.admin_url,
            f"UPDATE ledger.journal_entries SET memo = left(memo, -12) WHERE sequence = {settlement}",
        )
        assert (await _verify(engine)) == intact

        # 5. the last entry deleted (lines and all): the chain head no longer matches
        async with engine.connect() as conn:
            last_key = (
                await conn.execute(text("SELECT posting_key FROM ledger.journal_entries WHERE sequence = 11"))
            ).scalar_one()
        assert last_key.startswith(f"{keys[0]}:refund:R1:")
        await as_superuser(
            db.admin_url,
            "DELETE FROM ledger.journal_lines WHERE sequence = 11",
            "DELETE FROM ledger.journal_entries WHERE sequence = 11",
        )
        found = await _verify(engine)
        assert found.first_broken == 11 and "chain head" in (found.problem or "")
    finally:
        await engine.dispose()
