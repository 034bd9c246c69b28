"""Corrections on the real database, through the commands an operator runs: a revert or adjustment is proposed by
one person and posted once only when another approves; the refusals name their rule; the chain still verifies.
Scenario (E) of docs/accounting.md ("Corrections"): an unmapped fee lands in suspense and an approved adjustment
clears it, every line asserted."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from typer.testing import CliRunner

from infra.db.engine import make_engine
from infra.db.roles import RoleUrls
from services.ledger.cli import ledger_app
from services.ledger.domain import accounts
from services.ledger.reports import verify_chain
from tests.integration.ledger_support import (
    Batch,
    LedgerDatabase,
    as_superuser,
    assert_journal_sound,
    balances,
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

AT = datetime(2026, 11, 3, 10, 0, tzinfo=UTC)


async def karya(urls: RoleUrls, user: str | None, *argv: str) -> Any:
    """``karya ledger ARGV`` in this process, on its own root, as ``user`` (KARYA_USER); typer's result."""
    root = ledger_cli_root(urls)
    return await asyncio.to_thread(CliRunner().invoke, ledger_app, list(argv), env={"KARYA_USER": user or ""}, obj=root)


def order(inmate: str) -> list[Batch]:
    return [Batch("B-TNG-1", "TNG-MAT-001", "tangerang", 5, 60_000, 12_000, "sup-pandan", ((inmate, 1),))]


async def entry(conn: AsyncConnection, posting_key: str) -> Any:
    return (
        await conn.execute(text("SELECT * FROM ledger.journal_entries WHERE posting_key = :k"), {"k": posting_key})
    ).one_or_none()


async def lines(conn: AsyncConnection, posting_key: str) -> list[tuple[str, str, int]]:
    rows = await conn.execute(
        text(
            "SELECT l.account, l.side, l.amount FROM ledger.journal_lines l JOIN ledger.journal_entries e "
            "USING (sequence) WHERE e.posting_key = :k ORDER BY l.line_no"
        ),
        {"k": posting_key},
    )
    return [(r.account, r.side, int(r.amount)) for r in rows]


async def kind_of(conn: AsyncConnection, order_key: str, kind: str) -> str:
    """The posting key of the one entry of ``kind`` for ``order_key``."""
    rows = await conn.execute(
        text("SELECT posting_key FROM ledger.journal_entries WHERE order_key = :o AND kind = :k"),
        {"o": order_key, "k": kind},
    )
    (key,) = [r.posting_key for r in rows]
    return str(key)


def proposal_id(output: str) -> str:
    """The id in ``proposal N: …``."""
    assert output.startswith("proposal "), output
    return output.split()[1].rstrip(":")


async def completed_order(engine: AsyncEngine) -> str:
    key = new_order_key()
    assert await post(engine, new_processor(), [completed(key, order(new_inmate()), AT)]) == []
    return key


async def test_revert_posts_the_mirror_once_after_another_person_approves(ledger_db: RoleUrls) -> None:
    engine = make_engine(ledger_db.service, pool_size=1)
    try:
        key = await completed_order(engine)
        async with engine.connect() as conn:
            original = await kind_of(conn, key, "sale_completed")
            before = await lines(conn, original)
        proposed = await karya(ledger_db, "ani", "revert", original, "--reason", "completion posted in error")
        assert proposed.exit_code == 0, proposed.output
        pid = proposal_id(proposed.output)
        listed = await karya(ledger_db, None, "proposals", "--json")
        mine = [p for p in json.loads(listed.output) if str(p["proposal_id"]) == pid]
        assert mine and mine[0]["posting_key"] == f"revert:{original}" and mine[0]["proposed_by"] == "ani"

        async with engine.connect() as conn:
            assert await entry(conn, f"revert:{original}") is None  # proposed is not posted
        approved = await karya(ledger_db, "budi", "approve", pid)
        assert approved.exit_code == 0, approved.output
        assert f"posted revert:{original}" in approved.output

        async with engine.connect() as conn:
            posted = await entry(conn, f"revert:{original}")
            assert posted.kind == "reversal" and posted.reverses == original and posted.order_key == key
            assert posted.memo == (
                f"revert of {original}; reason: completion posted in error; proposed by ani, approved by budi "
                f"(proposal {pid})"
            )
            mirrored = await lines(conn, f"revert:{original}")
            assert mirrored == [(a, "C" if s == "D" else "D", n) for a, s, n in before]
            receivable = accounts.marketplace_receivable("tangerang", "shopee")
            assert receivable in {a for a, _, _ in mirrored}
            await assert_journal_sound(conn)
        listed = await karya(ledger_db, None, "proposals", "--json")
        assert pid not in {str(p["proposal_id"]) for p in json.loads(listed.output)}

        again = await karya(ledger_db, "citra", "approve", pid)
        assert again.exit_code == 1 and "(approve_once)" in again.output, again.output
        twice = await karya(ledger_db, "citra", "revert", original, "--reason", "again")
        assert twice.exit_code == 1 and f"(revert_once): already reverted by revert:{original}" in twice.output
        of_revert = await karya(ledger_db, "citra", "revert", f"revert:{original}", "--reason", "undo the undo")
        assert of_revert.exit_code == 1 and "(no_revert_of_revert)" in of_revert.output, of_revert.output
        async with engine.connect() as conn:
            count = await conn.execute(
                text("SELECT count(*) FROM ledger.journal_entries WHERE posting_key LIKE :k"),
                {"k": f"revert:%{key}%"},
            )
            assert count.scalar_one() == 1
    finally:
        await engine.dispose()


async def test_the_proposer_cannot_approve_and_a_second_proposal_waits_for_the_first(ledger_db: RoleUrls) -> None:
    engine = make_engine(ledger_db.service, pool_size=1)
    try:
        key = await completed_order(engine)
        async with engine.connect() as conn:
            original = await kind_of(conn, key, "sale_completed")
        pid = proposal_id((await karya(ledger_db, "ani", "revert", original, "--reason", "wrong order")).output)
        own = await karya(ledger_db, "ani", "approve", pid)
        assert own.exit_code == 1 and f"approval of proposal {pid} refused (four_eyes)" in own.output, own.output
        anonymous = await karya(ledger_db, None, "approve", pid)
        assert anonymous.exit_code != 0  # --as / KARYA_USER is required
        duplicate = await karya(ledger_db, "budi", "revert", original, "--reason", "same")
        assert duplicate.exit_code == 1 and f"already proposed as proposal {pid}" in duplicate.output
        async with engine.connect() as conn:
            assert await entry(conn, f"revert:{original}") is None
        # The database holds the rule too, and keeps proposals append-only.
        async with engine.connect() as conn:
            with pytest.raises(Exception, match="four_eyes"):
                await conn.execute(
                    text(
                        "INSERT INTO ledger.correction_approvals (proposal_id, approved_by, approved_at, posting_key) "
                        "VALUES (:i, 'ani', now(), :k)"
                    ),
                    {"i": int(pid), "k": f"revert:{original}"},
                )
        async with engine.connect() as conn:
            with pytest.raises(Exception, match="permission denied"):
                await conn.execute(
                    text("UPDATE ledger.correction_proposals SET proposed_by = 'budi' WHERE proposal_id = :i"),
                    {"i": int(pid)},
                )
    finally:
        await engine.dispose()


async def test_adjustments_of_accounts_not_adjustable_or_unbalanced_are_refused(
    ledger_db: RoleUrls, tmp_path: Path
) -> None:
    cases = {
        "savings": (
            {"lines": [{"account": "liability:inmate_savings:WBP-ABC123", "debit": 1_000},
                       {"account": "clearing:suspense:tangerang", "credit": 1_000}]},
            "refused (adjustable_accounts): liability:inmate_savings:WBP-ABC123 may not be adjusted by hand",
        ),
        "bank": (
            {"lines": [{"account": "asset:bank:tangerang:main", "debit": 1_000},
                       {"account": "clearing:suspense:tangerang", "credit": 1_000}]},
            "refused (adjustable_accounts): a line on asset:bank:tangerang:main needs a 'reference'",
        ),
        "unbalanced": (
            {"lines": [{"account": "expense:marketplace_fee:tangerang:unmapped", "debit": 2_500},
                       {"account": "clearing:suspense:tangerang", "credit": 2_000}]},
            "refused (balanced_entry): debits 2,500 != credits 2,000 (difference +500)",
        ),
    }  # fmt: skip
    engine = make_engine(ledger_db.service, pool_size=1)
    try:
        async with engine.connect() as conn:
            before = (await conn.execute(text("SELECT count(*) FROM ledger.correction_proposals"))).scalar_one()
        for name, (document, message) in cases.items():
            path = tmp_path / f"{name}.json"
            path.write_text(json.dumps(document))
            result = await karya(ledger_db, "ani", "adjust", str(path), "--reason", name)
            assert result.exit_code == 1 and message in result.output, (name, result.output)
        async with engine.connect() as conn:
            after = (await conn.execute(text("SELECT count(*) FROM ledger.correction_proposals"))).scalar_one()
        assert after == before  # nothing proposed
    finally:
        await engine.dispose()


async def test_scenario_e_an_unmapped_fee_in_suspense_is_cleared_by_an_approved_adjustment(
    own_database: LedgerDatabase, tmp_path: Path
) -> None:
    db = own_database
    engine = make_engine(db.urls.service, pool_size=1)
    key, inmate = new_order_key(), new_inmate()
    try:
        # G 300,000; the marketplace itemises commission 15,000 and withholds PPh 22 1,500 but pays 281,000:
        # a 2,500 fee it did not itemise.
        envelopes = [completed(key, order(inmate), AT), settled(key, 300_000, AT, fees={"commission_fee": 15_000},
                                                              net=281_000)]  # fmt: skip
        assert await post(engine, new_processor(), envelopes) == []
        async with engine.connect() as conn:
            completion = await kind_of(conn, key, "sale_completed")
            settlement = await kind_of(conn, key, "settlement")
            assert sorted(await lines(conn, completion)) == [
                ("asset:marketplace_receivable:tangerang:shopee", "D", 300_000),
                ("clearing:undistributed_proceeds:tangerang", "C", 300_000),
            ]
            assert sorted(await lines(conn, settlement)) == [
                ("asset:bank:tangerang:main", "D", 281_000),
                ("asset:marketplace_receivable:tangerang:shopee", "C", 300_000),
                ("asset:pph22_prepaid:tangerang", "D", 1_500),
                ("clearing:suspense:tangerang", "D", 2_500),
                ("clearing:undistributed_proceeds:tangerang", "D", 300_000),
                ("expense:marketplace_fee:tangerang:commission_fee", "D", 15_000),
                ("revenue:sales:tangerang", "C", 300_000),
            ]
            # The base is min(N, G - F - W) = min(281,000, 283,500): the unitemised fee is borne before the split.
            distribution = await kind_of(conn, key, "distribution")
            assert (await entry(conn, distribution)).policy_ref == "tangerang-standard@v1"
            assert sorted(await lines(conn, distribution)) == [
                ("equity:production_capital:tangerang", "C", 77_350),
                ("expense:capital_allocation:tangerang", "D", 77_350),
                ("expense:inmate_premi:tangerang", "D", 33_150),
                ("expense:material_cost:tangerang", "D", 60_000),
                ("expense:pnbp_share:tangerang", "D", 110_500),
                (f"liability:inmate_savings:{inmate}", "C", 33_150),
                ("liability:pnbp_payable:tangerang", "C", 110_500),
                ("liability:supplier_payable:tangerang:sup-pandan", "C", 60_000),
            ]
            assert (await balances(conn, ["clearing:suspense:tangerang"]))["clearing:suspense:tangerang"] == 2_500

        path = tmp_path / "clear-fee.yaml"
        path.write_text(
            f"memo: unitemised fee of {key}\norder_key: {key}\nlines:\n"
            "  - {account: 'expense:marketplace_fee:tangerang:unitemised', debit: 2500}\n"
            "  - {account: 'clearing:suspense:tangerang', credit: 2500}\n"
        )
        reason = "escrow detail shows a 2,500 campaign fee"
        proposed = await karya(db.urls, "ani", "adjust", str(path), "--reason", reason)
        assert proposed.exit_code == 0, proposed.output
        pid = proposal_id(proposed.output)
        async with engine.connect() as conn:
            outbox_before = (await conn.execute(text("SELECT count(*) FROM ledger.outbox"))).scalar_one()
        approved = await karya(db.urls, "budi", "approve", pid)
        assert approved.exit_code == 0 and f"posted adjust:{pid}" in approved.output, approved.output

        async with engine.connect() as conn:
            adjustment = await entry(conn, f"adjust:{pid}")
            assert adjustment.kind == "adjustment" and adjustment.order_key == key and adjustment.reverses is None
            assert adjustment.memo == (
                f"adjustment (unitemised fee of {key}); reason: {reason}; proposed by ani, approved by budi "
                f"(proposal {pid})"
            )
            assert await lines(conn, f"adjust:{pid}") == [
                ("expense:marketplace_fee:tangerang:unitemised", "D", 2_500),
                ("clearing:suspense:tangerang", "C", 2_500),
            ]
            assert (await balances(conn, ["clearing:suspense:tangerang"]))["clearing:suspense:tangerang"] == 0
            outbox = (
                await conn.execute(
                    text("SELECT payload FROM ledger.outbox ORDER BY id OFFSET :n"), {"n": outbox_before}
                )
            ).all()
            assert [json.loads(bytes(r.payload))["data"]["posting_key"] for r in outbox] == [f"adjust:{pid}"]
            await assert_journal_sound(conn)
            approval = (await conn.execute(text("SELECT * FROM ledger.correction_approvals"))).one()
            assert (approval.proposal_id, approval.approved_by, approval.posting_key) == (
                int(pid),
                "budi",
                f"adjust:{pid}",
            )

        # The approver is in the chain: naming someone else afterwards breaks verification at that entry.
        await as_superuser(
            db.admin_url,
            f"UPDATE ledger.journal_entries SET memo = replace(memo, 'approved by budi', 'approved by ani') "
            f"WHERE posting_key = 'adjust:{pid}'",
        )
        async with engine.connect() as conn:
            check = await verify_chain(ledger_uow(conn))
            assert check.first_broken == adjustment.sequence
    finally:
        await engine.dispose()


async def test_a_revert_that_would_take_paid_out_savings_below_zero_is_refused(ledger_db: RoleUrls) -> None:
    engine = make_engine(ledger_db.service, pool_size=1)
    key, inmate = new_order_key(), new_inmate()
    try:
        envelopes = [completed(key, order(inmate), AT), settled(key, 300_000, AT)]
        assert await post(engine, new_processor(), envelopes) == []
        savings = accounts.inmate_savings(inmate)
        async with engine.connect() as conn:
            distribution = await kind_of(conn, key, "distribution")
            balance = (await balances(conn, [savings]))[savings]
        paid = await karya(ledger_db, None, "payout", inmate, str(balance), "--payout-id", "REL-1")
        assert paid.exit_code == 0, paid.output
        pid = proposal_id((await karya(ledger_db, "ani", "revert", distribution, "--reason", "wrong batch")).output)
        refused = await karya(ledger_db, "budi", "approve", pid)
        assert refused.exit_code == 1 and "refused (savings_never_negative)" in refused.output, refused.output
        async with engine.connect() as conn:
            assert await entry(conn, f"revert:{distribution}") is None
            assert (await balances(conn, [savings]))[savings] == 0
            approvals = await conn.execute(
                text("SELECT count(*) FROM ledger.correction_approvals WHERE proposal_id = :i"), {"i": int(pid)}
            )
            assert approvals.scalar_one() == 0  # the refusal rolled the approval back with the posting
    finally:
        await engine.dispose()
