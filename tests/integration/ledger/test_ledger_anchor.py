"""The daily anchor (issue 17 item 7, issue 19 item 1) on a database of the test's own: ``karya ledger verify --anchor
FILE --anchor-key-env NAME`` takes an anchor over every segment's head and, the journal and the anchors intact,
appends a signed line with the latest anchor's number and hash; ``karya ledger anchor-check FILE`` re-checks every
published anchor against ``ledger.chain_anchors`` today. A history rewritten by the database's administrator (an
entry altered, the balances, every hash after it in its segment, the segment's head and every anchor recomputed, so
``verify`` alone finds nothing) fails the check naming each published anchor; an edited line fails its signature; a
line of the single chain still checks its legacy entry; a key that is asked for and missing stops the command."""

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
from services.ledger.adapters.anchors_repo import anchors_after
from services.ledger.cli import ledger_app
from services.ledger.domain.anchors import ChainAnchor, anchor_hash, heads_to_json
from services.ledger.domain.hashchain import GENESIS_HASH, SegmentHead, chain_hash, heads_root
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
    balances to match, recompute every hash of its segment from there on, the segment's head and every anchor, so
    the chains, the anchors and the balances verify again. Returns the altered entry's sequence."""
    async with engine.connect() as conn:
        victim = (
            await conn.execute(
                text(
                    "SELECT l.sequence, l.line_no, l.amount, e.segment FROM ledger.journal_lines l "
                    "JOIN ledger.journal_entries e USING (sequence) "
                    "WHERE e.kind = 'distribution' AND l.account = :a ORDER BY l.sequence LIMIT 1"
                ),
                {"a": f"liability:inmate_savings:{a}"},
            )
        ).one()
    fraud, segment = "liability:inmate_savings:WBP-FRAUD1", victim.segment
    await as_superuser(
        db.admin_url,
        f"INSERT INTO ledger.accounts (code, type, normal_side) VALUES ('{fraud}', 'liability', 'C')",
        f"UPDATE ledger.journal_lines SET account = '{fraud}' WHERE sequence = {victim.sequence} "
        f"AND line_no = {victim.line_no}",
        f"UPDATE ledger.account_balances SET credit_total = credit_total - {victim.amount} "
        f"WHERE account = 'liability:inmate_savings:{a}' AND segment = '{segment}'",
        f"INSERT INTO ledger.account_balances (account, segment, debit_total, credit_total) VALUES ('{fraud}', "
        f"'{segment}', 0, {victim.amount})",
    )
    async with engine.connect() as conn:
        uow = ledger_uow(conn)
        rows = [row async for row in _committed(uow, segment, victim.sequence - 1, 2**62)]
        anchors = await anchors_after(uow, 0, 1000)
    prev, statements, rehashed = rows[0][1], [], {}
    for committed, _ in rows:
        new = chain_hash(prev, committed)
        statements.append(
            f"UPDATE ledger.journal_entries SET prev_hash = '{prev}', chain_hash = '{new}' "
            f"WHERE sequence = {committed.sequence}"
        )
        rehashed[committed.sequence], prev = new, new
    statements.append(f"UPDATE ledger.chain_segments SET hash = '{prev}' WHERE segment = '{segment}'")
    statements += _reseal_anchors(anchors, segment, rehashed)
    await as_superuser(db.admin_url, *statements)
    return int(victim.sequence)


def _reseal_anchors(anchors: list[ChainAnchor], segment: str, rehashed: dict[int, str]) -> list[str]:
    """The updates that make every anchor agree with ``segment``'s recomputed hashes: heads, roots, the anchor chain."""
    statements, prev = [], GENESIS_HASH
    for anchor in anchors:
        heads = tuple(
            SegmentHead(h.segment, h.sequence, rehashed.get(h.sequence, h.hash)) if h.segment == segment else h
            for h in anchor.heads
        )
        root = heads_root(heads)
        sealed = anchor_hash(prev, anchor.anchor_no, anchor.taken_at, anchor.reason, root)
        statements.append(
            f"UPDATE ledger.chain_anchors SET heads = '{json.dumps(heads_to_json(heads))}', heads_root = '{root}', "
            f"prev_hash = '{prev}', anchor_hash = '{sealed}' WHERE anchor_no = {anchor.anchor_no}"
        )
        prev = sealed
    return statements


async def test_published_anchors_reveal_a_rewritten_history_and_an_edited_line(
    own_database: LedgerDatabase, tmp_path: Path
) -> None:
    db, anchors = own_database, tmp_path / "anchors.jsonl"
    engine = make_engine(db.urls.service, pool_size=2)
    a, b = new_inmate(), new_inmate()
    try:
        await _sell(engine, a, b)
        first = await _karya(db, "verify", "--anchor", str(anchors), "--anchor-key-env", KEY_ENV)
        assert first.exit_code == 0, first.output
        assert "chain intact: 3 entries in" in first.output  # completed, settled, distribution
        assert "anchored anchor 1 in" in first.output and "(signed)" in first.output
        await _sell(engine, a, b)
        second = await _karya(db, "verify", "--json", "--anchor", str(anchors), "--anchor-key-env", KEY_ENV)
        assert second.exit_code == 0, second.output
        lines = anchors.read_text().splitlines()
        assert len(lines) == 2 and json.loads(second.output)["anchored"] == lines[1], "appended, the first kept"
        published = [json.loads(line) for line in lines]
        assert [p["anchor_no"] for p in published] == [1, 2] and all(len(p["hmac_sha256"]) == 64 for p in published)
        assert published[1]["anchor_hash"] == json.loads(second.output)["latest_anchor"]["anchor_hash"]
        assert {"anchored_at", "host", "user"} <= set(published[0])

        ok = await _karya(db, "anchor-check", str(anchors), "--anchor-key-env", KEY_ENV)
        assert ok.exit_code == 0, ok.output
        assert "2 published anchors match the database (6 entries, 2 anchors, intact); signatures checked" in ok.output

        altered = await _rewrite_history(db, engine, a)
        assert altered <= 3
        fooled = await _karya(db, "verify")
        assert fooled.exit_code == 0, "the rewrite is consistent: chains, anchors and balances verify on their own"
        caught = await _karya(db, "anchor-check", str(anchors), "--anchor-key-env", KEY_ENV)
        assert caught.exit_code == 1
        assert f"anchor 1 published at {published[0]['anchored_at']}" in caught.output
        assert f"anchor 1 DIFFERS from its publication (published hash {published[0]['anchor_hash']}" in caught.output
        assert "anchor 2 DIFFERS from its publication" in caught.output

        # whoever rewrote the journal edits the file to match: without the key the signature gives it away
        forged = dict(published[0], anchor_hash="f" * 64)
        anchors.write_text("\n".join([json.dumps(forged), lines[1]]) + "\n")
        signed = await _karya(db, "anchor-check", "--json", str(anchors), "--anchor-key-env", KEY_ENV)
        assert signed.exit_code == 1
        problems = [f["problem"] for f in json.loads(signed.output)["findings"]]
        assert any(p.startswith("line 1 (anchor 1) has a signature that does not match") for p in problems), problems
        other_key = await _karya(
            db, "anchor-check", str(anchors), "--anchor-key-env", KEY_ENV, key="another-key-of-16+b"
        )
        assert "line 2 (anchor 2) has a signature that does not match" in other_key.output
    finally:
        await engine.dispose()


async def test_a_line_of_the_single_chain_is_checked_against_the_legacy_entry(
    own_database: LedgerDatabase, tmp_path: Path
) -> None:
    """A line ``verify --anchor`` wrote before segments names an entry of the legacy chain: it still matches while
    that entry is intact, and an entry altered (hashes recomputed) or gone is named."""
    db, anchors = own_database, tmp_path / "anchors.jsonl"
    engine = make_engine(db.urls.service, pool_size=2)
    try:
        await _sell(engine, new_inmate(), new_inmate())
        async with engine.connect() as conn:
            entry = (await conn.execute(text("SELECT sequence, chain_hash FROM ledger.journal_entries "
                                             "ORDER BY sequence LIMIT 1"))).one()  # fmt: skip
        # what a database migrated from the single chain has: its entries in the legacy segment
        await as_superuser(db.admin_url, f"UPDATE ledger.journal_entries SET segment = 'legacy' WHERE sequence = "
                           f"{entry.sequence}")  # fmt: skip
        old = {"anchored_at": "2026-11-30T02:00:00Z", "head_hash": entry.chain_hash, "host": "fin-01",
               "sequence": entry.sequence, "user": "ani"}  # fmt: skip
        anchors.write_text(json.dumps(old) + "\n" + json.dumps(dict(old, sequence=0, head_hash=GENESIS_HASH)) + "\n")
        checked = await _karya(db, "anchor-check", "--json", str(anchors))
        report = json.loads(checked.output)
        assert report["findings"] == [] and report["lines"] == 2, checked.output
        anchors.write_text(json.dumps(dict(old, head_hash="e" * 64)) + "\n")
        differs = await _karya(db, "anchor-check", str(anchors))
        assert differs.exit_code == 1
        assert (
            f"line 1: head {entry.sequence} published at 2026-11-30T02:00:00Z by ani@fin-01: entry " in differs.output
        )
        assert f"entry {entry.sequence} DIFFERS from its anchor (anchored hash {'e' * 64}" in differs.output
        anchors.write_text(json.dumps(dict(old, sequence=999)) + "\n")
        gone = await _karya(db, "anchor-check", str(anchors))
        assert "entry 999 is GONE from the journal's legacy segment" in gone.output
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
        assert unsigned.exit_code == 1 and "line 1 (anchor 1) is not signed" in unsigned.output
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
        assert (
            gone.exit_code == 1 and "anchors BROKEN at anchor 1: anchor 1: entry 3, the head of segment" in gone.output
        )
        assert "it pins, is GONE from the journal" in gone.output
    finally:
        await engine.dispose()
