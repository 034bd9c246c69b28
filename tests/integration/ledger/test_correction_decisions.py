"""A correction proposal that should not post is closed: rejected by another person or withdrawn by its proposer,
with who, when and why, through the commands an operator runs on the real database. A closed proposal is never
approved, ``karya ledger proposals --all`` shows every state, and the database holds each rule by itself."""

from __future__ import annotations

import asyncio
import json

import pytest
from sqlalchemy import text

from infra.db.engine import make_engine
from infra.db.roles import RoleUrls
from tests.integration.ledger.test_corrections import completed_order, entry, karya, kind_of, proposal_id

pytestmark = pytest.mark.integration


async def test_a_rejected_proposal_stays_closed_and_the_entry_can_be_proposed_again(ledger_db: RoleUrls) -> None:
    engine = make_engine(ledger_db.service, pool_size=1)
    try:
        key = await completed_order(engine)
        async with engine.connect() as conn:
            original = await kind_of(conn, key, "sale_completed")
        pid = proposal_id((await karya(ledger_db, "ani", "revert", original, "--reason", "looks doubled")).output)

        own = await karya(ledger_db, "ani", "reject", pid, "--reason", "changed my mind")
        assert own.exit_code == 1 and f"rejection of proposal {pid} refused (four_eyes)" in own.output, own.output
        assert f"karya ledger withdraw {pid}" in own.output
        silent = await karya(ledger_db, "budi", "reject", pid, "--reason", " ")
        assert silent.exit_code == 1 and "(reason_required)" in silent.output, silent.output
        rejected = await karya(ledger_db, "budi", "reject", pid, "--reason", "the completion is right")
        assert rejected.exit_code == 0 and f"proposal {pid} rejected by budi" in rejected.output, rejected.output

        approved = await karya(ledger_db, "citra", "approve", pid)
        assert approved.exit_code == 1, approved.output
        assert f"approval of proposal {pid} refused (decide_once): proposal {pid} was rejected by budi" in (
            approved.output
        )
        again = await karya(ledger_db, "citra", "reject", pid, "--reason", "twice")
        assert again.exit_code == 1 and "(decide_once)" in again.output, again.output
        async with engine.connect() as conn:
            assert await entry(conn, f"revert:{original}") is None  # nothing posted
            closure = (
                await conn.execute(
                    text("SELECT * FROM ledger.correction_closures WHERE proposal_id = :i"), {"i": int(pid)}
                )
            ).one()
            assert (closure.outcome, closure.closed_by, closure.reason) == (
                "rejected",
                "budi",
                "the completion is right",
            )

        listed = {
            str(p["proposal_id"]): p for p in json.loads((await karya(ledger_db, None, "proposals", "--json")).output)
        }
        assert pid not in listed  # only open ones by default
        every = json.loads((await karya(ledger_db, None, "proposals", "--all", "--json")).output)
        (mine,) = [p for p in every if str(p["proposal_id"]) == pid]
        assert (mine["state"], mine["decided_by"], mine["decision_reason"]) == (
            "rejected",
            "budi",
            "the completion is right",
        )
        assert mine["decided_at"] == closure.closed_at.isoformat()

        # Rejected is not "already proposed": the same entry may be proposed again, and that one may be approved.
        second = await karya(ledger_db, "dewi", "revert", original, "--reason", "it was doubled after all")
        assert second.exit_code == 0, second.output
        posted = await karya(ledger_db, "budi", "approve", proposal_id(second.output))
        assert posted.exit_code == 0 and f"posted revert:{original}" in posted.output, posted.output
        late = await karya(ledger_db, "citra", "reject", proposal_id(second.output), "--reason", "too late")
        assert late.exit_code == 1 and "(decide_once)" in late.output and "approved by budi" in late.output
    finally:
        await engine.dispose()


async def test_only_the_proposer_withdraws_and_a_withdrawn_proposal_is_never_approved(ledger_db: RoleUrls) -> None:
    engine = make_engine(ledger_db.service, pool_size=1)
    try:
        key = await completed_order(engine)
        async with engine.connect() as conn:
            original = await kind_of(conn, key, "sale_completed")
        pid = proposal_id((await karya(ledger_db, "ani", "revert", original, "--reason", "wrong order")).output)

        other = await karya(ledger_db, "budi", "withdraw", pid, "--reason", "not mine")
        assert other.exit_code == 1, other.output
        assert f"withdrawal of proposal {pid} refused (withdraw_own): only its proposer ani withdraws it" in (
            other.output
        )
        withdrawn = await karya(ledger_db, "ani", "withdraw", pid, "--reason", "proposed the wrong entry")
        assert withdrawn.exit_code == 0 and f"proposal {pid} withdrawn by ani" in withdrawn.output
        approved = await karya(ledger_db, "budi", "approve", pid)
        assert approved.exit_code == 1 and f"proposal {pid} was withdrawn by ani" in approved.output, approved.output
        assert "(decide_once)" in approved.output
        table = await karya(ledger_db, None, "proposals", "--all")
        (row,) = [line for line in table.output.splitlines() if line.split()[:1] == [pid]]
        assert row.split()[1] == "withdrawn" and "withdrawn by ani" in row and "proposed the wrong entry" in row
        missing = await karya(ledger_db, "ani", "withdraw", "999999", "--reason", "x")
        assert missing.exit_code == 1 and "there is no such proposal" in missing.output
        async with engine.connect() as conn:
            assert await entry(conn, f"revert:{original}") is None
    finally:
        await engine.dispose()


async def test_the_database_holds_the_decision_rules_by_itself(ledger_db: RoleUrls) -> None:
    engine = make_engine(ledger_db.service, pool_size=1)
    try:
        key = await completed_order(engine)
        async with engine.connect() as conn:
            original = await kind_of(conn, key, "sale_completed")
        pid = int(proposal_id((await karya(ledger_db, "ani", "revert", original, "--reason", "doubled")).output))
        closing = (
            "INSERT INTO ledger.correction_closures (proposal_id, outcome, closed_by, closed_at, reason) "
            "VALUES (:i, :o, :by, now(), 'r')"
        )
        for outcome, by, rule in (("rejected", "ani", "four_eyes"), ("withdrawn", "budi", "withdraw_own")):
            async with engine.connect() as conn:
                with pytest.raises(Exception, match=rule):
                    await conn.execute(text(closing), {"i": pid, "o": outcome, "by": by})
        async with engine.begin() as conn:
            await conn.execute(text(closing), {"i": pid, "o": "rejected", "by": "budi"})
        async with engine.connect() as conn:
            with pytest.raises(Exception, match="decide_once"):
                await conn.execute(
                    text(
                        "INSERT INTO ledger.correction_approvals (proposal_id, approved_by, approved_at, posting_key) "
                        "VALUES (:i, 'citra', now(), :k)"
                    ),
                    {"i": pid, "k": f"revert:{original}"},
                )
        for statement in (
            "UPDATE ledger.correction_closures SET closed_by = 'citra'",
            "DELETE FROM ledger.correction_closures",
        ):
            async with engine.connect() as conn:
                with pytest.raises(Exception, match="permission denied"):
                    await conn.execute(text(statement + " WHERE proposal_id = :i"), {"i": pid})
    finally:
        await engine.dispose()


async def test_an_approval_racing_a_rejection_waits_for_it_and_is_refused(ledger_db: RoleUrls) -> None:
    """Two deciders of one proposal at once: the approval's trigger waits on the proposal's advisory lock until the
    rejection commits, then sees it (``decide_once``), so a proposal is never both rejected and approved."""
    engine = make_engine(ledger_db.service, pool_size=3)
    try:
        key = await completed_order(engine)
        async with engine.connect() as conn:
            original = await kind_of(conn, key, "sale_completed")
        pid = int(proposal_id((await karya(ledger_db, "ani", "revert", original, "--reason", "doubled")).output))
        async with engine.connect() as rejecting:
            await rejecting.execute(
                text(
                    "INSERT INTO ledger.correction_closures (proposal_id, outcome, closed_by, closed_at, reason) "
                    "VALUES (:i, 'rejected', 'budi', now(), 'right as it is')"
                ),
                {"i": pid},
            )

            async def approval() -> None:
                async with engine.begin() as conn:
                    await conn.execute(text("SELECT set_config('application_name', 'racing-approval', true)"))
                    await conn.execute(
                        text(
                            "INSERT INTO ledger.correction_approvals (proposal_id, approved_by, approved_at, "
                            "posting_key) VALUES (:i, 'citra', now(), :k)"
                        ),
                        {"i": pid, "k": original},
                    )

            racing = asyncio.create_task(approval())
            async with engine.connect() as watcher:  # wait until the approval waits on the advisory lock
                while not racing.done():
                    waiting = await watcher.execute(
                        text(
                            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'racing-approval' "
                            "AND wait_event_type = 'Lock' AND wait_event = 'advisory'"
                        )
                    )
                    if waiting.scalar_one():
                        break
                    await watcher.rollback()
                    await asyncio.sleep(0.05)
            assert not racing.done(), "the approval did not wait for the open rejection"
            await rejecting.commit()
        with pytest.raises(Exception, match="decide_once"):
            await racing
    finally:
        await engine.dispose()
