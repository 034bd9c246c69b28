"""Balances bound to the journal: the database keeps ``ledger.account_balances`` from the journal lines, the service
cannot write it, ``karya ledger verify`` recomputes every balance from the lines, and payouts are decided against the
balance in their own transaction (also when two race)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from infra.db.engine import make_engine
from infra.db.roles import RoleUrls
from services.ledger.adapters.journal_repo import normal_balances, post_entries
from services.ledger.domain import accounts
from services.ledger.domain.accounts import Side
from services.ledger.domain.errors import InsufficientBalanceError
from services.ledger.domain.journal import EntryKind, JournalEntry, Line
from services.ledger.domain.model import PayoutRequest
from services.ledger.domain.postings import build_payout, payout_key
from services.ledger.outbound import LedgerTopics
from services.ledger.payouts import SAVINGS_RULE, pay_out
from services.ledger.reports import verify_balances
from tests.integration.ledger_support import (
    Batch,
    LedgerDatabase,
    assert_journal_sound,
    completed,
    ledger_uow,
    new_inmate,
    new_order_key,
    new_processor,
    post,
    run_karya,
    run_payout,
    settled,
)

pytestmark = pytest.mark.integration

T = datetime(2026, 5, 4, 9, tzinfo=UTC)
FAKE = 40_000_000


async def _savings_of_a_sale(engine: AsyncEngine) -> tuple[str, int]:
    """Post a completed and settled order for a fresh inmate; (inmate id, savings balance)."""
    inmate, key = new_inmate(), new_order_key()
    order = [Batch(f"B-{key[-8:]}", "TNG-MAT-001", "tangerang", 5, 60_000, 12_000, "sup-pandan", ((inmate, 1),))]
    assert await post(engine, new_processor(), [completed(key, order, T), settled(key, 300_000, T)]) == []
    savings = accounts.inmate_savings(inmate)
    async with engine.connect() as conn:
        balance = (await normal_balances(ledger_uow(conn), [savings]))[savings]
    assert balance > 0
    return inmate, balance


async def _payout_count(engine: AsyncEngine, inmate: str) -> int:
    async with engine.connect() as conn:
        return int(
            (
                await conn.execute(
                    text("SELECT count(*) FROM ledger.journal_entries WHERE posting_key LIKE :k"),
                    {"k": payout_key(inmate, "%")},
                )
            ).scalar_one()
        )


@pytest.fixture
async def service(ledger_db: RoleUrls) -> AsyncIterator[AsyncEngine]:
    """The service role's engine on the session database."""
    engine = make_engine(ledger_db.service, pool_size=3)
    try:
        yield engine
    finally:
        await engine.dispose()


async def test_the_service_role_cannot_rewrite_a_balance_nor_pay_out_more_than_the_savings(
    ledger_db: RoleUrls, service: AsyncEngine
) -> None:
    inmate, balance = await _savings_of_a_sale(service)
    savings = accounts.inmate_savings(inmate)
    for statement in (
        "UPDATE ledger.account_balances SET credit_total = credit_total + 40000000 WHERE account = :a",
        "INSERT INTO ledger.account_balances (account, credit_total) VALUES (:a || '-x', 40000000)",
        "DELETE FROM ledger.account_balances WHERE account = :a",
    ):
        with pytest.raises(DBAPIError, match="permission denied for table account_balances"):
            async with service.begin() as conn:
                await conn.execute(text(statement), {"a": savings})

    async with service.connect() as conn:
        grants = (
            await conn.execute(
                text(
                    "SELECT has_table_privilege('karya_service', 'ledger.account_balances', 'SELECT') AS r, "
                    "has_table_privilege('karya_service', 'ledger.account_balances', 'INSERT, UPDATE, DELETE, "
                    "TRUNCATE') AS w, p.prosecdef, pg_get_userbyid(p.proowner) AS owner, p.proconfig "
                    "FROM pg_proc p WHERE p.oid = 'ledger.add_lines_to_balances()'::regprocedure"
                )
            )
        ).one()
    assert grants.r and not grants.w
    assert grants.prosecdef and grants.owner == "karya_migrator"
    assert grants.proconfig == ["search_path=pg_catalog, pg_temp"]

    refused = await run_payout(ledger_db, inmate, FAKE, "REL-FAKE")
    assert refused.exit_code == 1
    assert f"payout refused ({SAVINGS_RULE})" in refused.output
    assert f"exceeds the savings balance {balance}" in refused.output
    async with service.connect() as conn:
        assert (await normal_balances(ledger_uow(conn), [savings]))[savings] == balance
    assert await _payout_count(service, inmate) == 0


async def test_verify_names_a_balance_that_differs_from_its_lines(own_database: LedgerDatabase) -> None:
    db = own_database
    engine = make_engine(db.urls.service, pool_size=2)
    owner = make_engine(db.urls.migrator, pool_size=1)  # owns the table: privileges do not stop it
    try:
        inmate, balance = await _savings_of_a_sale(engine)
        savings = accounts.inmate_savings(inmate)
        ok = await run_karya(db.urls, "ledger", "verify")
        assert ok.returncode == 0, ok.stderr
        assert "balances agree with the journal lines" in ok.stdout

        async with owner.begin() as conn:
            await conn.execute(
                text("UPDATE ledger.account_balances SET credit_total = credit_total + :f WHERE account = :a"),
                {"f": FAKE, "a": savings},
            )
        async with engine.connect() as conn:
            checked, mismatches = await verify_balances(ledger_uow(conn))
        assert checked > 0 and [m.account for m in mismatches] == [savings]
        m = mismatches[0]
        assert (m.stored_debit, m.lines_debit) == (0, 0)
        assert (m.stored_credit, m.lines_credit) == (balance + FAKE, balance)

        broken = await run_karya(db.urls, "ledger", "verify")
        assert broken.returncode == 1
        assert "chain intact" in broken.stdout  # the chain cannot see it; the balance check does
        assert (
            f"balance of {savings} DIFFERS from its journal lines: stored debit 0 credit {balance + FAKE:,}, "
            f"lines debit 0 credit {balance:,}" in broken.stderr
        )
        as_json = await run_karya(db.urls, "ledger", "verify", "--json")
        assert as_json.returncode == 1
        report = json.loads(as_json.stdout)
        assert report["intact"] is False and report["first_broken"] is None
        assert [x["account"] for x in report["balance_mismatches"]] == [savings]

        # Not even a balance rewritten by the owner pays out: the payout checks it against the lines.
        refused = await run_payout(db.urls, inmate, balance + 1, "REL-1")
        assert refused.exit_code == 1 and "balance_matches_journal" in refused.output
        assert await _payout_count(engine, inmate) == 0

        # The trigger switched off by the owner: what is posted meanwhile never reaches the balances.
        async with owner.begin() as conn:
            await conn.execute(
                text("UPDATE ledger.account_balances SET credit_total = credit_total - :f WHERE account = :a"),
                {"f": FAKE, "a": savings},
            )
            await conn.execute(text("ALTER TABLE ledger.journal_lines DISABLE TRIGGER journal_lines_to_balances"))
        other, _ = await _savings_of_a_sale_without_balance(engine)
        async with owner.begin() as conn:
            await conn.execute(text("ALTER TABLE ledger.journal_lines ENABLE TRIGGER journal_lines_to_balances"))
        unposted = await run_karya(db.urls, "ledger", "verify")
        assert unposted.returncode == 1
        assert f"balance of {accounts.inmate_savings(other)} DIFFERS" in unposted.stderr
        assert savings not in unposted.stderr
    finally:
        await owner.dispose()
        await engine.dispose()


async def _savings_of_a_sale_without_balance(engine: AsyncEngine) -> tuple[str, str]:
    """A sale posted while the balance trigger is off (its balances never move); (inmate id, order key)."""
    inmate, key = new_inmate(), new_order_key()
    order = [Batch(f"B-{key[-8:]}", "TNG-MAT-001", "tangerang", 1, 60_000, 12_000, "sup-pandan", ((inmate, 1),))]
    assert await post(engine, new_processor(), [completed(key, order, T), settled(key, 60_000, T)]) == []
    return inmate, key


async def _waiting_on_a_lock(engine: AsyncEngine, timeout_s: float = 20.0) -> None:
    """Return once some session of this database waits on a lock (fails after ``timeout_s``)."""
    for _ in range(int(timeout_s / 0.05)):
        async with engine.connect() as conn:
            waiting = (
                await conn.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                        "AND wait_event_type = 'Lock'"
                    )
                )
            ).scalar_one()
        if waiting:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the second payout never waited for the first")


async def test_two_racing_payouts_that_fit_alone_but_not_together(own_database: LedgerDatabase) -> None:
    engine = make_engine(own_database.urls.service, pool_size=4)
    try:
        inmate, balance = await _savings_of_a_sale(engine)
        savings = accounts.inmate_savings(inmate)
        share = balance * 6 // 10  # each fits alone; both do not
        paid_at = datetime.now(UTC)

        # Through the use case: the second waits on the chain head, then sees what the first left.
        async with engine.connect() as first:
            await first.begin()
            done = await pay_out(ledger_uow(first), LedgerTopics(), inmate, share, "REL-A", paid_at)
            assert done.posted and done.savings_after == balance - share

            async def second() -> Any:
                async with engine.begin() as conn:
                    return await pay_out(ledger_uow(conn), LedgerTopics(), inmate, share, "REL-B", paid_at)

            racing = asyncio.create_task(second())
            await _waiting_on_a_lock(engine)
            await first.commit()
        with pytest.raises(InsufficientBalanceError, match=rf"payout refused \({SAVINGS_RULE}\).*REL-B"):
            await racing
        async with engine.connect() as conn:
            assert (await normal_balances(ledger_uow(conn), [savings]))[savings] == balance - share
        assert await _payout_count(engine, inmate) == 1

        # Code that skips the use case (reads the balance unlocked, both before either posts): the database
        # itself refuses the second in its transaction.
        left = balance - share
        half = left * 6 // 10
        async with engine.connect() as a, engine.connect() as b:
            await a.begin()
            await b.begin()
            entries = []
            for conn, pid in ((a, "REL-C"), (b, "REL-D")):
                seen = await normal_balances(ledger_uow(conn), [savings])
                entries.append(build_payout(PayoutRequest(inmate, pid, half, paid_at), seen, "tangerang"))
            await post_entries(ledger_uow(a), [(entries[0], None)])
            await a.commit()
            with pytest.raises(IntegrityError, match=SAVINGS_RULE):
                await post_entries(ledger_uow(b), [(entries[1], None)])
            await b.rollback()
        async with engine.connect() as conn:
            assert (await normal_balances(ledger_uow(conn), [savings]))[savings] == left - half
            await assert_journal_sound(conn)
    finally:
        await engine.dispose()


# --- the trigger keeps every balance equal to the sum of its lines, whatever is posted


@st.composite
def _entry(draw: st.DrawFn, pool: list[str], savings: list[str]) -> list[tuple[str, Side, int]]:
    """A balanced entry: 1-3 debits on ``pool`` accounts, their total split over 1-3 other accounts (savings only
    ever credited, so they never go negative)."""
    debit_accounts = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=3, unique=True))
    amounts = draw(st.lists(st.integers(1, 10**9), min_size=len(debit_accounts), max_size=len(debit_accounts)))
    total = sum(amounts)
    others = [a for a in pool + savings if a not in debit_accounts]
    credit_accounts = draw(st.lists(st.sampled_from(others), min_size=1, max_size=min(3, total), unique=True))
    cuts = (
        sorted(
            draw(
                st.lists(
                    st.integers(1, total - 1),
                    min_size=len(credit_accounts) - 1,
                    max_size=len(credit_accounts) - 1,
                    unique=True,
                )
            )
        )
        if len(credit_accounts) > 1
        else []
    )
    bounds = [0, *cuts, total]
    credits = [bounds[i + 1] - bounds[i] for i in range(len(credit_accounts))]
    return [
        *[(a, Side.DEBIT, m) for a, m in zip(debit_accounts, amounts, strict=True)],
        *[(a, Side.CREDIT, m) for a, m in zip(credit_accounts, credits, strict=True)],
    ]


def _pool(tag: str) -> tuple[list[str], list[str]]:
    pool = [accounts.bank(f"h{tag}", f"b{i}") for i in range(3)]
    pool += [accounts.supplier_payable(f"h{tag}", f"s{i}") for i in range(2)]
    pool += [accounts.production_capital(f"h{tag}"), accounts.material_cost_expense(f"h{tag}")]
    return pool, [accounts.inmate_savings(f"WBP-{tag[:6].upper()}")]


async def test_balances_equal_the_sum_of_lines_across_random_postings(ledger_db: RoleUrls) -> None:
    @settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.data())
    def check(data: st.DataObject) -> None:
        tag = uuid.uuid4().hex[:8]
        pool, savings = _pool(tag)
        statements = data.draw(
            st.lists(st.lists(_entry(pool, savings), min_size=1, max_size=25), min_size=1, max_size=4)
        )
        asyncio.run(_post_and_compare(ledger_db.service, tag, statements))

    await asyncio.to_thread(check)


async def _post_and_compare(url: str, tag: str, statements: list[list[list[tuple[str, Side, int]]]]) -> None:
    engine = make_engine(url, pool_size=1)
    expected: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    try:
        for s, entries in enumerate(statements):
            batch = []
            for n, lines in enumerate(entries):
                key = f"prop:{tag}:{s}:{n}"
                entry = JournalEntry(
                    key,
                    uuid.uuid5(uuid.NAMESPACE_URL, key).hex * 2,
                    EntryKind.SETTLEMENT,
                    "property",
                    T,
                    tuple(Line(a, side, m) for a, side, m in lines),
                )
                batch.append((entry, None))
                for a, side, m in lines:
                    expected[a][0 if side is Side.DEBIT else 1] += m
            async with engine.begin() as conn:
                assert len((await post_entries(ledger_uow(conn), batch)).posted) == len(batch)
            async with engine.connect() as conn:
                rows = await conn.execute(
                    text(
                        "SELECT account, sum(debit_total) AS debit_total, sum(credit_total) AS credit_total "
                        "FROM ledger.account_balances WHERE account = ANY(:a) GROUP BY account"
                    ),
                    {"a": sorted(expected)},
                )
                assert {r.account: [r.debit_total, r.credit_total] for r in rows} == dict(expected)
        async with engine.connect() as conn:
            assert (await verify_balances(ledger_uow(conn)))[1] == []
    finally:
        await engine.dispose()
