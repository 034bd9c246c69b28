"""Helpers for the ledger integration tests: event builders, dedicated databases, invariants, the CLI."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import yaml
from prometheus_client import Counter
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from infra.cli_root import CliRoot
from infra.db.engine import make_engine
from infra.db.migrate import upgrade_to_head_async
from infra.db.roles import RoleUrls, bootstrap_database, drop_database, role_urls
from infra.db.unit_of_work import UnitOfWork
from infra.environment import local_passwords
from infra.messaging.consumer import InboundEvent, Rejection
from infra.messaging.delivery import Delivery
from infra.messaging.envelope import Envelope, make_envelope
from infra.messaging.relay import make_producer
from services.contracts.marketplace import REFUND_REPORTED, SETTLEMENT_REPORTED
from services.contracts.orders import ORDER_COMPLETED
from services.ledger.adapters.policy_repo import store_policies
from services.ledger.app import SCHEMA, LedgerProcessor
from services.ledger.domain.policy_file import parse_policies
from services.ledger.outbound import LedgerTopics
from services.ledger.reports import verify_chain
from tests.integration.cli_support import cli_root

ROOT = Path(__file__).resolve().parents[2]
DEMO_POLICY_FILE = ROOT / "deploy" / "demo" / "policies.yaml"


def uid() -> str:
    """A short unique suffix."""
    return uuid.uuid4().hex[:8]


def new_inmate() -> str:
    """A fresh pseudonymous inmate id (``WBP-`` and six upper-case hex digits, as the contracts require)."""
    return f"WBP-{uuid.uuid4().hex[:6].upper()}"


def new_order_key(channel: str = "shopee") -> str:
    """A fresh ``marketplace:shop:order`` key."""
    u = uid()
    return f"{channel}:shop-{u[:4]}:{u}"


@dataclass(frozen=True)
class Batch:
    """Units of one order taken from one production batch (what ``order_completed`` carries)."""

    batch_id: str
    sku: str
    lapas_id: str
    quantity: int
    unit_price: int
    unit_material_cost: int
    supplier_id: str
    work_group: tuple[tuple[str, int], ...]

    @property
    def value(self) -> int:
        """Quantity × unit price (the weight the base is attributed by)."""
        return self.quantity * self.unit_price

    @property
    def material_cost(self) -> int:
        """Quantity × unit material cost."""
        return self.quantity * self.unit_material_cost


def completed_payload(key: str, batches: Sequence[Batch], at: datetime, gross: int | None = None) -> dict[str, Any]:
    """An ``order_completed`` payload (gross defaults to the batches' value)."""
    channel = key.split(":", 1)[0]
    return {
        "order_key": key,
        "channel": channel,
        "lapas_id": batches[0].lapas_id,
        "raw_status": "COMPLETED",
        "update_time": at.isoformat(),
        "gross_amount": gross if gross is not None else sum(b.value for b in batches),
        "allocations": [
            {
                "batch_id": b.batch_id,
                "sku": b.sku,
                "workshop_id": f"{b.lapas_id}-bengkel",
                "lapas_id": b.lapas_id,
                "quantity": b.quantity,
                "unit_price": b.unit_price,
                "unit_material_cost": b.unit_material_cost,
                "supplier_id": b.supplier_id,
                "work_group": [{"inmate_id": i, "work_share": s} for i, s in b.work_group],
            }
            for b in batches
        ],
    }


def pph22(gross: int) -> int:
    """PPh 22 withheld by the marketplace: 0.5% of gross, whole rupiah (half up)."""
    return (gross * 5 + 500) // 1000


def settlement_payload(
    key: str,
    gross: int,
    at: datetime,
    *,
    fees: dict[str, int] | None = None,
    settlement_id: str = "ESC-1",
    net: int | None = None,
) -> dict[str, Any]:
    """A ``settlement_reported`` payload; ``net`` defaults to gross − fees − PPh 22 (no suspense)."""
    fee_map = fees if fees is not None else {"commission_fee": gross * 6 // 100, "service_fee": gross * 2 // 100}
    withheld = pph22(gross)
    return {
        "order_key": key,
        "channel": key.split(":", 1)[0],
        "settlement_id": settlement_id,
        "gross_amount": gross,
        "fees": [{"fee_type": t, "amount": a} for t, a in fee_map.items()],
        "pph22_withheld": withheld,
        "net_payout": net if net is not None else gross - sum(fee_map.values()) - withheld,
        "settled_at": at.isoformat(),
    }


def refund_payload(key: str, refund_id: str, amount: int, at: datetime) -> dict[str, Any]:
    """A ``refund_reported`` payload."""
    return {
        "order_key": key,
        "channel": key.split(":", 1)[0],
        "refund_id": refund_id,
        "amount": amount,
        "reason": "partial",
        "refunded_at": at.isoformat(),
    }


def completed(key: str, batches: Sequence[Batch], at: datetime) -> Envelope:
    """An ``order_completed`` envelope."""
    return make_envelope(
        type=ORDER_COMPLETED, source="karya/orders", subject=key, data=completed_payload(key, batches, at)
    )


def settled(key: str, gross: int, at: datetime, **kw: Any) -> Envelope:
    """A ``settlement_reported`` envelope."""
    return make_envelope(
        type=SETTLEMENT_REPORTED,
        source="karya/gateway",
        subject=key,
        data=settlement_payload(key, gross, at, **kw),
    )


def refunded(key: str, refund_id: str, amount: int, at: datetime) -> Envelope:
    """A ``refund_reported`` envelope."""
    return make_envelope(
        type=REFUND_REPORTED,
        source="karya/gateway",
        subject=key,
        data=refund_payload(key, refund_id, amount, at),
    )


def reissued(envelope: Envelope) -> Envelope:
    """The same payload under a new event id (a gateway re-emitting a settlement it saw again)."""
    return make_envelope(type=envelope.type, source=envelope.source, subject=envelope.subject, data=envelope.data)


def inbound(envelope: Envelope, topic: str = "test") -> InboundEvent:
    """An envelope as the batch consumer hands it to a handler (with a stand-in record)."""
    return InboundEvent(envelope, Delivery(topic, 0, 0, envelope.subject.encode(), envelope.to_bytes()))


def ledger_uow(conn: AsyncConnection) -> UnitOfWork:
    """The ledger's unit of work on ``conn`` (the schema the composition root names)."""
    return UnitOfWork(conn, SCHEMA)


def new_processor(conflicts: Counter | None = None, topics: LedgerTopics | None = None) -> LedgerProcessor:
    """The ledger's Kafka handler as the composition root builds it (``topics``: default the base names)."""
    return LedgerProcessor(topics or LedgerTopics(), SCHEMA, conflicts)


async def post(engine: AsyncEngine, processor: LedgerProcessor, envelopes: Sequence[Envelope]) -> list[str]:
    """Hand ``envelopes`` to the processor as one batch in one transaction; the rejection reasons."""
    async with engine.begin() as conn:
        rejected: Sequence[Rejection] = await processor(conn, [inbound(e) for e in envelopes])
    return [r.reason for r in rejected]


async def load_demo_policies(url: str) -> None:
    """Load ``deploy/demo/policies.yaml`` as ``karya policy load`` does (identical versions are skipped)."""
    policies = parse_policies(yaml.safe_load(DEMO_POLICY_FILE.read_text(encoding="utf-8")), str(DEMO_POLICY_FILE))
    engine = make_engine(url, pool_size=1)
    try:
        async with engine.begin() as conn:
            await store_policies(ledger_uow(conn), policies)
    finally:
        await engine.dispose()


@dataclass(frozen=True, repr=False)
class LedgerDatabase:
    """A migrated database with the demo policies: the three role URLs and the superuser URL on it."""

    urls: RoleUrls
    admin_url: str

    def __repr__(self) -> str:  # never the passwords (pytest prints fixtures of failing tests)
        return f"LedgerDatabase({make_url(self.admin_url).database})"


@asynccontextmanager
async def fresh_database(server_admin_url: str) -> AsyncIterator[LedgerDatabase]:
    """A database of its own (roles, migrations, demo policies) for tests that break it or count on it."""
    name = f"karya_ledger_{uid()}"
    passwords = local_passwords()
    for attempt in range(3):
        try:
            await bootstrap_database(server_admin_url, passwords, name)
            break
        except asyncpg.InternalServerError as exc:  # ALTER ROLE racing another session's bootstrap
            if "concurrently updated" not in str(exc) or attempt == 2:
                raise
            await asyncio.sleep(0.2)
    urls = role_urls(server_admin_url, passwords, name)
    try:
        await upgrade_to_head_async(urls.migrator)
        await load_demo_policies(urls.service)
        yield LedgerDatabase(urls, make_url(server_admin_url).set(database=name).render_as_string(hide_password=False))
    finally:
        await drop_database(server_admin_url, name)


#: Run with :func:`as_superuser` (triggers off) to empty the ledger of a test's own database, keeping the policies.
LEDGER_RESET = (
    "TRUNCATE ledger.journal_lines, ledger.journal_entries, ledger.account_balances, ledger.accounts, "
    "ledger.order_facts, ledger.pending_events, ledger.posting_conflicts, ledger.outbox, ledger.inbox, "
    # CASCADE: tables that reference the journal (correction proposals) too
    "ledger.dead_letters, ledger.chain_anchors CASCADE",
    "UPDATE ledger.chain_segments SET last_sequence = 0, hash = repeat('0', 64)",
)


async def as_superuser(admin_url: str, *statements: str) -> None:
    """Run ``statements`` as the superuser with triggers off (``session_replication_role = replica``)."""
    dsn = make_url(admin_url).set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            await conn.execute("SET LOCAL session_replication_role = replica")
            for statement in statements:
                await conn.execute(statement)
    finally:
        await conn.close()


async def entries_of(conn: AsyncConnection, order_keys: Sequence[str]) -> list[Any]:
    """Journal entries of ``order_keys`` in chain order."""
    rows = await conn.execute(
        text(
            "SELECT sequence, posting_key, kind, order_key, batch_id, policy_ref, reverses, effective_at "
            "FROM ledger.journal_entries WHERE order_key = ANY(:k) ORDER BY sequence"
        ),
        {"k": list(order_keys)},
    )
    return list(rows)


async def balances(conn: AsyncConnection, accounts: Sequence[str] | None = None) -> dict[str, int]:
    """Normal-side balances from ``ledger.account_balances``, summed over segments (all accounts, or ``accounts``)."""
    rows = await conn.execute(
        text(
            "SELECT b.account, a.normal_side, sum(b.debit_total) AS debit_total, sum(b.credit_total) AS credit_total "
            "FROM ledger.account_balances b JOIN ledger.accounts a ON a.code = b.account "
            "WHERE CAST(:a AS text[]) IS NULL OR b.account = ANY(CAST(:a AS text[])) GROUP BY b.account, a.normal_side"
        ),
        {"a": None if accounts is None else list(accounts)},
    )
    return {r.account: int(r.debit_total - r.credit_total) * (1 if r.normal_side == "D" else -1) for r in rows}


_SOUNDNESS = """
SELECT
  (SELECT coalesce(sum(amount) FILTER (WHERE side = 'D'), 0) FROM ledger.journal_lines) AS line_debits,
  (SELECT coalesce(sum(amount) FILTER (WHERE side = 'C'), 0) FROM ledger.journal_lines) AS line_credits,
  (SELECT coalesce(sum(debit_total), 0) FROM ledger.account_balances) AS balance_debits,
  (SELECT coalesce(sum(credit_total), 0) FROM ledger.account_balances) AS balance_credits,
  ARRAY(SELECT e.sequence FROM ledger.journal_entries e
        LEFT JOIN ledger.journal_lines l USING (sequence) GROUP BY e.sequence HAVING count(l.line_no) < 2
        OR coalesce(sum(CASE l.side WHEN 'D' THEN l.amount ELSE -l.amount END), 0) <> 0) AS unbalanced,
  ARRAY(SELECT DISTINCT l.sequence FROM ledger.journal_lines l
        LEFT JOIN ledger.journal_entries e USING (sequence) WHERE e.sequence IS NULL) AS orphan_lines,
  ARRAY(SELECT coalesce(b.account, l.account) FROM (
          SELECT account, sum(debit_total) AS debit_total, sum(credit_total) AS credit_total
          FROM ledger.account_balances GROUP BY account) b FULL JOIN (
          SELECT account, sum(amount) FILTER (WHERE side = 'D') AS d,
                 sum(amount) FILTER (WHERE side = 'C') AS c
          FROM ledger.journal_lines GROUP BY account) l USING (account)
        WHERE coalesce(b.debit_total, 0) <> coalesce(l.d, 0)
        OR coalesce(b.credit_total, 0) <> coalesce(l.c, 0)) AS drifted,
  ARRAY(SELECT account FROM ledger.account_balances WHERE account LIKE 'liability:inmate\\_savings:%'
        GROUP BY account HAVING sum(credit_total) < sum(debit_total)) AS negative_savings,
  (SELECT count(*) - count(DISTINCT posting_key) FROM ledger.journal_entries) AS repeated_keys
"""


async def assert_journal_sound(conn: AsyncConnection) -> None:
    """Database-wide invariants: debits = credits (lines and balances), every entry balanced with ≥ 2 lines,
    no line without its entry, balances equal to the lines, no savings balance negative, each posting key
    once, and the hash chain intact."""
    r = (await conn.execute(text(_SOUNDNESS))).one()
    assert r.line_debits == r.line_credits == r.balance_debits == r.balance_credits, r
    assert r.unbalanced == [], f"entries not balanced: {r.unbalanced}"
    assert r.orphan_lines == [], f"lines without an entry: {r.orphan_lines}"
    assert r.drifted == [], f"balances differ from their lines: {r.drifted}"
    assert r.negative_savings == [], f"negative savings: {r.negative_savings}"
    assert r.repeated_keys == 0, "a posting key appears twice"
    check = await verify_chain(ledger_uow(conn))
    assert check.first_broken is None, f"chain broken at {check.first_broken}: {check.problem}"


def cli_env(urls: RoleUrls) -> dict[str, str]:
    """Environment for a ``karya`` subprocess against ``urls`` (reads as the auditor, writes as the service); a
    command run in this process gets :func:`ledger_cli_root` as ``obj`` instead."""
    return {**os.environ, "DATABASE_URL": urls.service, "KARYA_AUDITOR_URL": urls.auditor}


async def run_payout(urls: RoleUrls, inmate_id: str, amount: int, payout_id: str) -> Any:
    """``karya ledger payout`` in this process (off the event loop); typer's result (exit code, output)."""
    from typer.testing import CliRunner

    from services.ledger.cli import ledger_app

    argv = ["payout", inmate_id, str(amount), "--payout-id", payout_id]
    return await asyncio.to_thread(CliRunner().invoke, ledger_app, argv, obj=ledger_cli_root(urls))


def ledger_cli_root(urls: RoleUrls) -> CliRoot:
    """The root of a ``karya ledger`` command run in this process against ``urls``: reads as the auditor, writes
    as the service role (as :func:`cli_env` configures a subprocess)."""
    return cli_root(urls, roles=("service", "auditor"))


async def run_karya(urls: RoleUrls, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m karya.cli ARGS`` in a subprocess (off the event loop); the completed process."""
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "karya.cli", *args],
        env=cli_env(urls),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def publish(bootstrap: str, topic: str, envelopes: Sequence[Envelope]) -> list[str]:
    """Publish ``envelopes`` to ``topic`` keyed by subject, in order (idempotent producer); where each landed, as
    ``topic/partition/offset`` (the form of the ``karya-dlq-origin`` header)."""
    producer = make_producer(bootstrap, "test-ledger")
    await producer.start()
    landed = []
    try:
        for envelope in envelopes:
            meta = await producer.send_and_wait(topic, envelope.to_bytes(), key=envelope.subject.encode())
            landed.append(f"{meta.topic}/{meta.partition}/{meta.offset}")
    finally:
        await producer.stop()
    return landed
