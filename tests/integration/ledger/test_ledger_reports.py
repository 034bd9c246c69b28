"""The finance read side on a real journal: trial balance as of a time, account statement, inmate savings —
checked against the journal lines and against a recomputation of the premi from the demo policies."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta, timezone
from fractions import Fraction
from typing import Any

import pytest
import yaml
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection
from typer.testing import CliRunner

from infra.db.engine import make_engine
from services.ledger.adapters.journal_repo import normal_balances, post_entries
from services.ledger.cli import ledger_app
from services.ledger.domain import accounts
from services.ledger.domain.allocation import allocate
from services.ledger.domain.model import PayoutRequest
from services.ledger.domain.policy_file import parse_share
from services.ledger.domain.postings import build_payout
from services.ledger.reports import inmate_savings, statement, trial_balance
from tests.integration.ledger_support import (
    DEMO_POLICY_FILE,
    Batch,
    LedgerDatabase,
    completed,
    ledger_cli_root,
    ledger_uow,
    new_inmate,
    new_order_key,
    new_processor,
    post,
    pph22,
    refunded,
    run_payout,
    settled,
)

pytestmark = pytest.mark.integration

WITA = timezone(timedelta(hours=8))
#: (PNBP, premi, capital) shares per policy version, as written in deploy/demo/policies.yaml (checked below).
SHARES = {
    "cipinang-standard@v1": (Fraction(50, 100), Fraction(15, 100), Fraction(35, 100)),
    "cipinang-gloves@v1": (Fraction(2, 5), Fraction(1, 4), Fraction(7, 20)),
    "kerobokan-standard@v1": (Fraction(50, 100), Fraction(35, 100), Fraction(15, 100)),
    "kerobokan-standard@v2": (Fraction(45, 100), Fraction(40, 100), Fraction(15, 100)),
}
FEES = {"commission_fee": 6, "service_fee": 2}  # percent of gross
AS_OF = datetime(2026, 8, 9, tzinfo=UTC)


def test_share_table_matches_the_demo_policy_file() -> None:
    raw = yaml.safe_load(DEMO_POLICY_FILE.read_text(encoding="utf-8"))["policies"]
    written = {f"{p['policy_id']}@v{p['version']}": tuple(parse_share(r["share"]) for r in p["rules"]) for p in raw}
    assert {ref: written[ref] for ref in SHARES} == SHARES
    assert all([r["target"] for r in p["rules"]] == ["pnbp", "inmate_premi", "production_capital"] for p in raw)


def expected_premi(batches: list[Batch], policy_of: dict[str, str]) -> dict[tuple[str, str], int]:
    """Premi per (inmate, batch) of a settled order, computed here from the rules of the split (not with
    ``plan_distribution``): base = min(net, gross − fees − PPh 22), attributed to batches by value; material
    cost first; the remainder split PNBP / premi / capital; premi over the work group by work share."""
    gross = sum(b.value for b in batches)
    fees = sum(gross * pct // 100 for pct in FEES.values())
    base = gross - fees - pph22(gross)  # the settlements here pay exactly what is expected
    out: dict[tuple[str, str], int] = {}
    for batch, proceeds in zip(batches, allocate(base, [b.value for b in batches]), strict=True):
        _, premi, _ = allocate(proceeds - batch.material_cost, list(SHARES[policy_of[batch.batch_id]]))
        for (inmate, _), part in zip(batch.work_group, allocate(premi, [s for _, s in batch.work_group]), strict=True):
            out[(inmate, batch.batch_id)] = part
    return out


async def _cli(db: LedgerDatabase, *args: str) -> dict[str, Any]:
    """``karya ledger ARGS --json`` in process (on a worker thread: the command runs its own event loop)."""
    result = await asyncio.to_thread(CliRunner().invoke, ledger_app, [*args, "--json"], obj=ledger_cli_root(db.urls))
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def _settle(key: str, batches: list[Batch], at: datetime) -> Any:
    gross = sum(b.value for b in batches)
    return settled(key, gross, at, fees={t: gross * pct // 100 for t, pct in FEES.items()})


async def _by_account(conn: AsyncConnection, where: str, **params: object) -> dict[str, tuple[int, int]]:
    rows = await conn.execute(
        text(
            "SELECT l.account, coalesce(sum(l.amount) FILTER (WHERE l.side = 'D'), 0) AS d, "
            "coalesce(sum(l.amount) FILTER (WHERE l.side = 'C'), 0) AS c FROM ledger.journal_lines l "
            f"JOIN ledger.journal_entries e USING (sequence) WHERE {where} GROUP BY l.account"
        ),
        params,
    )
    return {r.account: (int(r.d), int(r.c)) for r in rows}


async def test_trial_balance_statement_and_inmate_report(own_database: LedgerDatabase) -> None:
    db = own_database
    engine = make_engine(db.urls.service, pool_size=2)
    processor = new_processor()
    a, b, c = new_inmate(), new_inmate(), new_inmate()
    k1, k2, k3, k4 = (new_order_key() for _ in range(4))
    o1 = [
        Batch("B-CPN-GLV-1", "CPN-GLV-001", "cipinang", 4, 25_000, 9_000, "sup-benang", ((a, 3), (b, 2))),
        Batch("B-CPN-WDW-1", "CPN-WDW-001", "cipinang", 1, 120_000, 40_000, "sup-kayu", ((a, 1),)),
    ]
    o2 = [Batch("B-KRB-CCN-1", "KRB-CCN-001", "kerobokan", 2, 33_333, 7_777, "sup-kelapa", ((a, 1), (b, 1)))]
    o3 = [Batch("B-KRB-CCN-2", "KRB-CCN-001", "kerobokan", 3, 41_000, 9_500, "sup-kelapa", ((a, 2),))]
    o4 = [Batch("B-CPN-WDW-2", "CPN-WDW-001", "cipinang", 2, 87_654, 20_000, "sup-kayu", ((c, 1),))]
    policy_of = {
        "B-CPN-GLV-1": "cipinang-gloves@v1",
        "B-CPN-WDW-1": "cipinang-standard@v1",
        "B-KRB-CCN-1": "kerobokan-standard@v2",  # completed on 2026-07-02 WITA: version 2 in force
        "B-KRB-CCN-2": "kerobokan-standard@v1",
        "B-CPN-WDW-2": "cipinang-standard@v1",
    }
    try:
        for envelopes in (
            [
                completed(k1, o1, datetime(2026, 3, 2, 10, tzinfo=UTC)),
                _settle(k1, o1, datetime(2026, 3, 5, tzinfo=UTC)),
            ],
            [
                completed(k2, o2, datetime(2026, 7, 2, 9, tzinfo=WITA)),
                _settle(k2, o2, datetime(2026, 7, 5, tzinfo=UTC)),
            ],
            [
                completed(k3, o3, datetime(2026, 6, 15, tzinfo=UTC)),
                _settle(k3, o3, datetime(2026, 6, 18, tzinfo=UTC)),
            ],
            [
                completed(k4, o4, datetime(2026, 3, 10, tzinfo=UTC)),
                _settle(k4, o4, datetime(2026, 3, 12, tzinfo=UTC)),
            ],
            [refunded(k3, "RET-1", sum(x.value for x in o3), datetime(2026, 8, 1, tzinfo=UTC))],  # full refund
        ):
            assert await post(engine, processor, envelopes) == []
        async with engine.begin() as conn:  # a payout on release, as `karya ledger payout` posts it
            savings_a = accounts.inmate_savings(a)
            payout = build_payout(
                PayoutRequest(a, "REL-1", 1_000, datetime(2026, 8, 5, tzinfo=UTC)),
                await normal_balances(ledger_uow(conn), [savings_a]),
                "cipinang",
            )
            assert len((await post_entries(ledger_uow(conn), [(payout, "test")])).posted) == 1
        before_refund = await _cli(db, "trial-balance", "--as-of", AS_OF.isoformat())
        assert await post(engine, processor, [refunded(k4, "R-1", 50_000, datetime(2026, 8, 10, tzinfo=UTC))]) == []

        # --- trial balance: as of before the refund vs now differs by exactly the refund's postings
        async with engine.connect() as conn:
            now = {r["account"]: (r["debit"], r["credit"]) for r in await trial_balance(ledger_uow(conn))}
            then = {r["account"]: (r["debit"], r["credit"]) for r in await trial_balance(ledger_uow(conn), AS_OF)}
            refund_lines = await _by_account(conn, "e.posting_key LIKE :k", k=f"{k4}:refund:R-1%")
            refund_kinds = sorted(
                (
                    await conn.execute(
                        text("SELECT kind FROM ledger.journal_entries WHERE posting_key LIKE :k"),
                        {"k": f"{k4}:refund:R-1%"},
                    )
                )
                .scalars()
                .all()
            )
        assert refund_kinds == ["refund", "refund_reversal"]
        assert {r["account"]: (r["debit"], r["credit"]) for r in before_refund["accounts"]} == then
        assert before_refund["balanced"] and before_refund["total_debit"] == sum(d for d, _ in then.values())
        difference = {
            acct: (now[acct][0] - then.get(acct, (0, 0))[0], now[acct][1] - then.get(acct, (0, 0))[1]) for acct in now
        }
        assert {acct: dc for acct, dc in difference.items() if dc != (0, 0)} == refund_lines
        assert sum(d for d, _ in now.values()) == sum(c for _, c in now.values())

        # --- inmate: every savings posting traced to order, batch and policy; balance recomputed
        premi = {
            **expected_premi(o1, policy_of),
            **expected_premi(o2, policy_of),
            **expected_premi(o3, policy_of),
        }
        key_of = {x.batch_id: k for k, order in ((k1, o1), (k2, o2), (k3, o3)) for x in order}
        expected_postings = sorted(
            [
                ("distribution", key_of[batch], batch, policy_of[batch], amount)
                for (inmate, batch), amount in premi.items()
                if inmate == a
            ]
            # k3's full refund takes no premi back: the demo policies keep the default claw_back_premi: never
            + [("payout", None, None, None, -1_000)],
            key=str,
        )
        report = await _cli(db, "inmate", a)
        assert (
            sorted(
                ((p["kind"], p["order_key"], p["batch_id"], p["policy_ref"], p["amount"]) for p in report["postings"]),
                key=str,
            )
            == expected_postings
        )
        expected_balance = sum(amount for (inmate, _), amount in premi.items() if inmate == a) - 1_000
        assert report["savings_balance"] == expected_balance > 0
        assert report["receivable_balance"] == 0
        async with engine.connect() as conn:
            assert (await inmate_savings(ledger_uow(conn), b))["savings_balance"] == sum(
                amount for (inmate, _), amount in premi.items() if inmate == b
            )
            assert (await normal_balances(ledger_uow(conn), [savings_a]))[savings_a] == expected_balance

            # --- statement: the running balance ends at the account balance
            full = await statement(ledger_uow(conn), savings_a)
            window = await statement(ledger_uow(conn), savings_a, datetime(2026, 7, 1, tzinfo=UTC), AS_OF)
        running = 0
        for line in full["lines"]:
            running += line["credit"] - line["debit"]
            assert line["balance"] == running
        assert full["opening_balance"] == 0 and full["closing_balance"] == running == expected_balance
        assert [line["effective_at"] for line in full["lines"]] == sorted(
            line["effective_at"] for line in full["lines"]
        )
        # the window (1 July – 9 August) opens with the March and June premi and holds order 2 and the payout (the
        # return takes no premi back under claw_back_premi: never)
        opening = premi[(a, "B-CPN-GLV-1")] + premi[(a, "B-CPN-WDW-1")] + premi[(a, "B-KRB-CCN-2")]
        assert window["opening_balance"] == opening
        assert [line["kind"] for line in window["lines"]] == ["distribution", "payout"]
        assert window["closing_balance"] == expected_balance
        by_cli = await _cli(db, "statement", savings_a, "--from", "2026-07-01", "--to", AS_OF.isoformat())
        assert by_cli["closing_balance"] == expected_balance and len(by_cli["lines"]) == 2
    finally:
        await engine.dispose()


async def test_payout_by_cli_is_checked_and_posted_once_per_payout_id(own_database: LedgerDatabase) -> None:
    db = own_database
    engine = make_engine(db.urls.service, pool_size=1)
    inmate, key = new_inmate(), new_order_key()
    order = [Batch("B-TNG-1", "TNG-MAT-001", "tangerang", 5, 60_000, 12_000, "sup-pandan", ((inmate, 1),))]
    try:
        assert (
            await post(
                engine,
                new_processor(),
                [
                    completed(key, order, datetime(2026, 4, 1, tzinfo=UTC)),
                    _settle(key, order, datetime(2026, 4, 3, tzinfo=UTC)),
                ],
            )
            == []
        )
        savings = accounts.inmate_savings(inmate)
        async with engine.connect() as conn:
            balance = (await normal_balances(ledger_uow(conn), [savings]))[savings]

        async def payout(amount: int, payout_id: str) -> Any:
            return await run_payout(db.urls, inmate, amount, payout_id)

        too_much = await payout(balance + 1, "REL-0")
        assert too_much.exit_code == 1 and "exceeds the savings balance" in too_much.output
        first = await payout(balance - 100, "REL-1")
        assert first.exit_code == 0, first.output
        assert f"savings now {100:,}" in first.output
        again = await payout(balance - 100, "REL-1")  # the operator retries: the same payout, not a second one
        assert again.exit_code == 0, again.output
        assert "already posted" in again.output
        other = await payout(50, "REL-1")  # the same payout id for a different amount
        assert other.exit_code == 1 and "already used for a different payout" in other.output
        async with engine.connect() as conn:
            assert (await normal_balances(ledger_uow(conn), [savings]))[savings] == 100
            payouts = (
                await conn.execute(text("SELECT count(*) FROM ledger.journal_entries WHERE kind = 'payout'"))
            ).scalar_one()
        assert payouts == 1
    finally:
        await engine.dispose()
