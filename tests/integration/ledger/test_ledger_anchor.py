"""The daily anchor (issue 17 item 7) on a database of the test's own: ``karya ledger verify --anchor FILE
--anchor-key-env NAME`` appends a signed line with the verified head; ``karya ledger anchor-check FILE`` re-checks
every anchored head against the chain today. A history rewritten by the database's administrator (an entry altered,
the balances and every hash after it recomputed, so ``verify`` alone finds nothing) fails the check naming each
anchored sequence; an edited line fails its signature; a key that is asked for and missing stops the command."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from typer.testing import CliRunner

from infra.db.engine import make_engine
from services.ledger.cli import ledger_app
from services.ledger.domain.hashchain import chain_hash
from services.ledger.reports import _committed
from tests.integration.ledger_support import (
    Batch,
    LedgerDatabase,
    as_superuser,
    completed,
    ledger_cli_root,
    ledger_uow,
    new_inmate,
    new_order_key,
    new_processor,
    post,
    settled,
)

pytestmark = pytest.mark.integration

T = datetime(2026, 4, 1, 10, tzinfo=UTC)
KEY_ENV = "KARYA_TEST_ANCHOR_KEY"
KEY = "a-finance-secret-of-32-characters"


async def _karya(db: LedgerDatabase, *args: str, key: str | None = KEY) -> Any:
    """``karya ledger ARGS`` in this process with a fresh root (the key is read once per invocation)."""
    env = {KEY_ENV: key} if key is not None else {KEY_ENV: ""}
    return await asyncio.to_thread(CliRunner().invoke, ledger_app, list(args), obj=ledger_cli_root(db.urls), env=env)


async def _sell(engine: AsyncEngine, a: str, b: str) -> str:
    key = new_order_key()
    batch = Batch(f"B-{key[-8:]}", "CPN-GLV-001", "cipinang", 2, 30_000, 8_000, "sup-benang", ((a, 2), (b, 1)))
    assert await post(engine, new_processor(), [completed(key, [batch], T), settled(key, 60_000, T)]) == []
    return key


async def _rewrite_history(db: LedgerDatabase, engine: AsyncEngine, a: str) -> int:
    """As the administrator: move inmate ``a``'s premi of the first distribution to another account, fix the
    balances to match and recompute every hash from there on, so the chain and the balances verify again. Returns the
    altered entry's sequence."""
    async with engine.connect() as conn:
        victim = (
            await conn.execute(
                text(
                    "SELECT l.sequence, l.line_no, l.amount FROM ledger.journal_lines l JOIN ledger.journal_entries e "
                    "USING (sequence) WHERE e.kind = 'distribution' AND l.account = :a ORDER BY l.sequence LIMIT 1"
                ),
                {"a": f"liability:inmate_savings:{a}"},
            )
        ).one()
    fraud = "liability:inmate_savings:WBP-FRAUD1"
    await as_superuser(
        db.admin_url,
        f"INSERT INTO ledger.accounts (code, type, normal_side) VALUES ('{fraud}', 'liability', 'C')",
        f"UPDATE ledger.journal_lines SET account = '{fraud}' WHERE sequence = {victim.sequence} "
        f"AND line_no = {victim.line_no}",
        f"UPDATE ledger.account_balances SET credit_total = credit_total - {victim.amount} "
        f"WHERE account = 'liability:inmate_savings:{a}'",
        f"INSERT INTO ledger.account_balances (account, debit_total, credit_total) VALUES ('{fraud}', 0, "
        f"{victim.amount})",
    )
    async with engine.connect() as conn:
        rows = [row async for row in _committed(ledger_uow(conn), after=victim.sequence - 1)]
    prev, statements = rows[0][1], []
    for committed, _, _ in rows:
        new = chain_hash(prev, committed)
        statements.append(
            f"UPDATE ledger.journal_entries SET prev_hash = '{prev}', chain_hash = '{new}' "
            f"WHERE sequence = {committed.sequence}"
        )
        prev = new
    statements.append(f"UPDATE ledger.chain_head SET hash = '{prev}'")
    await as_superuser(db.admin_url, *statements)
    return int(victim.sequence)


async def test_anchors_reveal_a_rewritten_history_and_an_edited_line(
    own_database: LedgerDatabase, tmp_path: Path
) -> None:
    db, anchors = own_database, tmp_path / "anchors.jsonl"
    engine = make_engine(db.urls.service, pool_size=2)
    a, b = new_inmate(), new_inmate()
    try:
        await _sell(engine, a, b)
        first = await _karya(db, "verify", "--anchor", str(anchors), "--anchor-key-env", KEY_ENV)
        assert first.exit_code == 0, first.output
        assert "anchored head 3 in" in first.output and "(signed)" in first.output  # completed, settled, distribution
        await _sell(engine, a, b)
        second = await _karya(db, "verify", "--json", "--anchor", str(anchors), "--anchor-key-env", KEY_ENV)
        assert second.exit_code == 0, second.output
        lines = anchors.read_text().splitlines()
        assert len(lines) == 2 and json.loads(second.output)["anchored"] == lines[1], "appended, the first kept"
        heads = [json.loads(line) for line in lines]
        assert [h["sequence"] for h in heads] == [3, 6] and all(len(h["hmac_sha256"]) == 64 for h in heads)
        assert heads[1]["head_hash"] == json.loads(second.output)["head_hash"]
        assert {"anchored_at", "host", "user"} <= set(heads[0])

        ok = await _karya(db, "anchor-check", str(anchors), "--anchor-key-env", KEY_ENV)
        assert ok.exit_code == 0, ok.output
        assert "2 anchored heads match the chain (6 entries, intact); signatures checked" in ok.output

        altered = await _rewrite_history(db, engine, a)
        assert altered <= 3
        fooled = await _karya(db, "verify")
        assert fooled.exit_code == 0, "the rewrite is consistent: the chain and the balances verify on their own"
        caught = await _karya(db, "anchor-check", str(anchors), "--anchor-key-env", KEY_ENV)
        assert caught.exit_code == 1
        assert f"head 3 anchored at {heads[0]['anchored_at']}" in caught.output
        assert f"entry 3 DIFFERS from its anchor (anchored hash {heads[0]['head_hash']}" in caught.output
        assert "entry 6 DIFFERS from its anchor" in caught.output

        # whoever rewrote the journal edits the file to match: without the key the signature gives it away
        forged = dict(heads[0], head_hash="f" * 64)
        anchors.write_text("\n".join([json.dumps(forged), lines[1]]) + "\n")
        signed = await _karya(db, "anchor-check", "--json", str(anchors), "--anchor-key-env", KEY_ENV)
        assert signed.exit_code == 1
        problems = [f["problem"] for f in json.loads(signed.output)["findings"]]
        assert any(p.startswith("line 1 (head 3) has a signature that does not match") for p in problems), problems
        other_key = await _karya(
            db, "anchor-check", str(anchors), "--anchor-key-env", KEY_ENV, key="another-key-of-16+b"
        )
        assert "line 2 (head 6) has a signature that does not match" in other_key.output
    finally:
        await engine.dispose()


async def test_a_missing_key_refuses_to_start_and_a_broken_chain_anchors_nothing(
    own_database: LedgerDatabase, tmp_path: Path
) -> None:
    db, anchors = own_database, tmp_path / "anchors.jsonl"
    engine = make_engine(db.urls.service, pool_size=2)
    try:
        await _sell(engine, new_inmate(), new_inmate())
        refused = await _karya(db, "verify", "--anchor", str(anchors), "--anchor-key-env", KEY_ENV, key=None)
        assert refused.exit_code != 0 and f"refusing to start: --anchor-key-env {KEY_ENV}" in refused.output
        assert not anchors.exists()
        short = await _karya(db, "verify", "--anchor", str(anchors), "--anchor-key-env", KEY_ENV, key="short")
        assert short.exit_code != 0 and "shorter than 16 bytes" in short.output
        lone = await _karya(db, "verify", "--anchor-key-env", KEY_ENV)
        assert lone.exit_code == 2 and "--anchor-key-env" in lone.output

        assert (await _karya(db, "verify", "--anchor", str(anchors))).exit_code == 0
        unsigned = await _karya(db, "anchor-check", str(anchors), "--anchor-key-env", KEY_ENV)
        assert unsigned.exit_code == 1 and "line 1 (head 3) is not signed" in unsigned.output
        unchecked = await _karya(db, "anchor-check", str(anchors))
        assert unchecked.exit_code == 0 and "signatures NOT checked" in unchecked.output

        await as_superuser(
            db.admin_url, "UPDATE ledger.journal_entries SET memo = memo || ' (edited)' WHERE sequence = 2"
        )
        broken = await _karya(db, "verify", "--anchor", str(anchors))
        assert broken.exit_code == 1 and "nothing anchored" in broken.output
        assert len(anchors.read_text().splitlines()) == 1
        check = await _karya(db, "anchor-check", str(anchors))
        assert check.exit_code == 1 and "chain BROKEN at entry 2" in check.output
        await as_superuser(db.admin_url, "DELETE FROM ledger.journal_lines WHERE sequence = 3",
                           "DELETE FROM ledger.journal_entries WHERE sequence = 3")  # fmt: skip
        gone = await _karya(db, "anchor-check", str(anchors))
        assert gone.exit_code == 1 and "entry 3 is GONE from the journal" in gone.output
    finally:
        await engine.dispose()
