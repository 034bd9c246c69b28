"""`karya demo --once` end to end: simulator → gateway → orders → ledger, each service its own process, real
broker and database.

The demo runs against a database of its own (created and reset by the demo), and its last stdout line is a JSON
object of counters taken from the database and the broker; this test checks them and then recomputes every
inmate's savings independently from the split policies and the batches sold. The demo keeps its run's topics
(``demo<epoch>.*``, named in its JSON line) for inspection; this test deletes them once it has read that line.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from collections import defaultdict
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import text
from sqlalchemy.engine import make_url

from infra.db.engine import make_engine
from infra.db.roles import PASSWORD_ENV, ROLES, role_urls
from infra.environment import local_passwords
from infra.messaging.admin import delete_topics_with_prefix
from services.ledger.domain.allocation import allocate
from tests.conftest import Services

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
_TAX_TOTALS = {  # account kind → (the printed total it makes, its normal side); per lapas by the account's code
    "liability:ppn_output": ("ppn_output", "C"),
    "asset:ppn_input": ("ppn_input", "D"),
    "asset:pph22_prepaid": ("pph22_creditable", "D"),
    "expense:pph22_withheld": ("pph22_expense", "D"),
    "asset:pph22_reclaimable": ("pph22_exempt", "D"),
}


async def _delete_run_topics(bootstrap: str, prefix: str) -> None:
    """Delete the demo run's topics; hygiene only, so a failure is reported, not raised."""
    try:
        await asyncio.wait_for(delete_topics_with_prefix(bootstrap, prefix), 60)
    except Exception as exc:
        print(f"demo topics not deleted: {type(exc).__name__}: {exc}", file=sys.stderr)


def _shares(policy: dict[str, Any]) -> list[tuple[str, Fraction]]:
    from services.ledger.domain.policy_file import parse_share

    return [(str(r["target"]), parse_share(r["share"])) for r in policy["rules"]]


async def test_demo_once_counts_are_consistent_and_savings_recompute(services: Services, tmp_path: Path) -> None:
    database = "karya_e2e_demo"
    passwords = local_passwords()
    urls = role_urls(services.admin_url, passwords, database)
    admin = make_url(services.admin_url).set(database=database).render_as_string(hide_password=False)
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": services.kafka_bootstrap,
        "KARYA_DB_ADMIN_URL": admin,
        "DATABASE_URL": urls.service,
        "KARYA_MIGRATOR_URL": urls.migrator,
        "KARYA_AUDITOR_URL": urls.auditor,
        **{PASSWORD_ENV[r]: passwords[r] for r in ROLES},
    }
    done = subprocess.run(
        [sys.executable, "-m", "karya.cli", "demo", "--orders", "150", "--once", "--timeout", "300"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    counters = json.loads(done.stdout.strip().splitlines()[-1])
    assert re.fullmatch(r"demo\d+\.", counters["topic_prefix"])
    # Every record each consumer group committed past was applied or dead-lettered (read from Kafka and the inboxes).
    audit = subprocess.run(
        [sys.executable, "-m", "karya.cli", "audit", "completeness", "--json"],
        env={**env, "KARYA_TOPIC_PREFIX": counters["topic_prefix"]},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    unallocated = subprocess.run(
        [sys.executable, "-m", "karya.cli", "ledger", "unallocated", "--json"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    await _delete_run_topics(services.kafka_bootstrap, counters["topic_prefix"])
    assert audit.returncode == 0, audit.stdout[-3000:] + audit.stderr[-3000:]
    completeness = json.loads(audit.stdout)
    assert completeness["gaps"] == 0
    audited = {p["group"] for p in completeness["partitions"] if p["records"]}
    assert {f"{counters['topic_prefix']}karya-{g}" for g in ("orders", "ledger", "gateway-normaliser")} <= audited
    assert counters["drained"] is True
    assert counters["orders"] == 150
    assert counters["journal_entries"] > 0
    assert counters["trial_balance_debits"] == counters["trial_balance_credits"] > 0
    assert counters["webhooks_sent"] > counters["orders"]
    assert counters["webhooks_rejected"] == 2, "exactly the tampered and the wrong-secret copies are refused"
    for zero in (
        "unbalanced_entries",
        "duplicate_postings",
        "posting_conflicts",
        "negative_stock_rows",
        "dlq_messages",
    ):
        assert counters[zero] == 0, zero

    # Off the happy path, read from the ledger: refunds and settlements posted, nothing parked once drained (below),
    # and the unallocated figures the same as `karya ledger unallocated --json` lists.
    assert counters["refunds_posted"] > 0
    assert counters["settlements_posted"] > 0
    # the simulator's oversold orders: completed and paid, never reservable, so held in unallocated proceeds
    assert counters["unallocated_orders"] > 0 and counters["unallocated_amount"] > 0
    assert unallocated.returncode == 0, unallocated.stderr[-3000:]
    held = json.loads(unallocated.stdout)
    assert counters["unallocated_orders"] == len(held)
    assert counters["unallocated_amount"] == sum(r["held"] for r in held)
    assert all(isinstance(counters[k], int) for k in ("unallocated_amount", "suspense_balance"))

    # Independent recomputation of every inmate's savings from the policies and the batches sold.
    policies = yaml.safe_load((ROOT / "deploy" / "demo" / "policies.yaml").read_text())["policies"]
    engine = make_engine(urls.auditor)
    try:
        async with engine.connect() as conn:
            distributions = (
                await conn.execute(
                    text(
                        "SELECT e.order_key, e.batch_id, e.policy_ref, l.account, l.amount "
                        "FROM ledger.journal_entries e "
                        "JOIN ledger.journal_lines l USING (sequence) WHERE e.kind = 'distribution' AND l.side = 'C' "
                        "ORDER BY e.sequence, l.line_no"
                    )
                )
            ).all()
            completed_orders = (
                await conn.execute(
                    text(
                        "SELECT count(DISTINCT order_key) FROM orders.order_history WHERE to_state = 'completed' "
                        "AND decision IN ('new_order', 'forward', 'allowed_edge')"
                    )
                )
            ).scalar_one()
            completion_entries = (
                await conn.execute(
                    text("SELECT count(DISTINCT order_key) FROM ledger.journal_entries WHERE kind = 'sale_completed'")
                )
            ).scalar_one()
            parked = (
                await conn.execute(
                    text(
                        "SELECT p.type, p.waiting_for, EXISTS (SELECT 1 FROM ledger.journal_entries e "
                        "WHERE e.order_key = p.order_key AND e.kind = 'sale_completed') AS completed, "
                        "coalesce(p.envelope->'data'->>'netted_in_settlement', 'false') = 'true' AS netted, "
                        "(SELECT o.state FROM orders.orders o WHERE o.order_key = p.order_key) AS order_state, "
                        "EXISTS (SELECT 1 FROM ledger.closed_without_posting c WHERE c.order_key = p.order_key) "
                        "AS ended FROM ledger.pending_events p"
                    )
                )
            ).all()
            closed_refunds = (
                await conn.execute(
                    text(
                        "SELECT count(*) FROM ledger.closed_without_posting "
                        "WHERE event_type = 'karya.marketplace.refund_reported.v1'"
                    )
                )
            ).scalar_one()
            groups = {
                (r.batch_id, r.inmate_id): r.work_share
                for r in await conn.execute(text("SELECT batch_id, inmate_id, work_share FROM orders.batch_work_group"))
            }
            balances = {
                r.account.rsplit(":", 1)[1]: (int(r.debit_total), int(r.credit_total))
                for r in await conn.execute(
                    text(
                        "SELECT account, sum(debit_total) AS debit_total, sum(credit_total) AS credit_total "
                        "FROM ledger.account_balances WHERE account LIKE 'liability:inmate\\_savings:%' "
                        "GROUP BY account"
                    )
                )
            }
            reversed_ = {
                r.account.rsplit(":", 1)[1]: int(r.amount)
                for r in await conn.execute(
                    text(
                        "SELECT l.account, sum(l.amount) AS amount "
                        "FROM ledger.journal_lines l JOIN ledger.journal_entries e "
                        "USING (sequence) WHERE e.kind = 'refund_reversal' AND l.side = 'D' "
                        "AND l.account LIKE 'liability:inmate\\_savings:%' GROUP BY l.account"
                    )
                )
            }
            by_lapas = (
                await conn.execute(
                    text(
                        "SELECT coalesce(split_part(l.account, ':', 3), '') AS owner, f.lapas_id, e.kind, "
                        "split_part(l.account, ':', 1) || ':' || split_part(l.account, ':', 2) AS kind_of_account, "
                        "sum(CASE l.side WHEN 'D' THEN l.amount ELSE 0 END)::bigint AS debit, "
                        "sum(CASE l.side WHEN 'C' THEN l.amount ELSE 0 END)::bigint AS credit "
                        "FROM ledger.journal_lines l JOIN ledger.journal_entries e USING (sequence) "
                        "LEFT JOIN ledger.order_facts f ON f.order_key = e.order_key GROUP BY 1, 2, 3, 4"
                    )
                )
            ).all()
    finally:
        await engine.dispose()
    # The per-lapas totals the demo printed (its report functions) are the journal lines' sums by account.
    journal: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for r in by_lapas:
        if r.kind_of_account == "revenue:sales":
            journal[r.owner]["sales"] += r.credit - r.debit
        elif r.kind_of_account == "liability:pnbp_payable":
            journal[r.owner]["pnbp_accrued"] += r.credit
            journal[r.owner]["pnbp_deposited"] += r.debit if r.kind == "pnbp_deposit" else 0
        elif r.kind_of_account == "liability:inmate_savings" and r.lapas_id:
            journal[r.lapas_id]["premi_accrued"] += r.credit
        elif r.kind_of_account in _TAX_TOTALS and (
            r.kind in ("settlement", "refund") or r.kind_of_account.startswith("expense:")
        ):
            # a tax on a balance account: what the sales' settlements and refunds moved; a tax borne as a cost: all
            key, normal = _TAX_TOTALS[r.kind_of_account]
            journal[r.owner][key] += r.debit - r.credit if normal == "D" else r.credit - r.debit
    printed_totals = counters["lapas_totals"]
    assert {"cipinang", "kerobokan"} <= set(printed_totals) and any(t["sales"] > 0 for t in printed_totals.values())
    for lapas, totals in printed_totals.items():
        assert totals == {k: journal[lapas].get(k, 0) for k in totals}, lapas
    assert completed_orders == completion_entries > 0, "each completed order posted once"
    # Once drained nothing waits (issue 15): a return the marketplace carried to its end (every unit refunded,
    # read from its returns API) ends the order, so the refunds of orders returned before completion are closed
    # without posting, and a rejected return goes on to completion; what is left names itself in the message.
    waiting = sorted({(r.type, r.waiting_for, r.completed, r.netted, r.order_state) for r in parked})
    assert counters["parked_events"] == len(parked) == 0, waiting
    assert closed_refunds > 0, "the simulator's full returns end their orders"
    expected: dict[str, int] = defaultdict(int)
    per_entry: dict[tuple[str, str, str], int] = defaultdict(int)
    material: dict[tuple[str, str, str], int] = defaultdict(int)
    for r in distributions:
        if r.account.startswith(("liability:pnbp_payable:", "equity:production_capital:", "liability:inmate_savings:")):
            per_entry[(r.order_key, r.batch_id, r.policy_ref)] += r.amount
        elif r.account.startswith("liability:supplier_payable:"):
            material[(r.order_key, r.batch_id, r.policy_ref)] += r.amount
    for (order, batch, policy_ref), shares_paid in per_entry.items():
        policy_id, version = policy_ref.rsplit("@v", 1)
        policy = next(p for p in policies if p["policy_id"] == policy_id and p["version"] == int(version))
        # a revenue-base policy pays the material cost out of the capital share, so the shares split that much more
        revenue_base = policy.get("base") == "revenue"
        remainder = shares_paid + (material[(order, batch, policy_ref)] if revenue_base else 0)
        shares = _shares(policy)
        parts = allocate(remainder, [s for _, s in shares])
        premi = dict(zip([t for t, _ in shares], parts, strict=True))["inmate_premi"]
        members = sorted((i, w) for (b, i), w in groups.items() if b == batch)
        for (inmate, _), part in zip(members, allocate(premi, [w for _, w in members]), strict=True):
            expected[inmate] += part
    credited: dict[str, int] = defaultdict(int)
    for r in distributions:
        if r.account.startswith("liability:inmate_savings:"):
            credited[r.account.rsplit(":", 1)[1]] += r.amount
    assert {k: v for k, v in expected.items() if v} == {k: v for k, v in credited.items() if v}
    for inmate, (debit, credit) in balances.items():
        # savings = what distributions credited (recomputed above) − what refunds took back; never negative
        assert credit - debit == expected[inmate] - reversed_.get(inmate, 0) >= 0, inmate
