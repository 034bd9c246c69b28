"""What the demo reports, counted from the database and the broker (never from what the load intended).

Each service's tables are found where the topology says (``schemas``: service -> schema, by default
:data:`karya.services.SERVICES`); nothing here names a schema.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from infra.db.engine import make_engine
from infra.db.unit_of_work import UnitOfWork
from infra.messaging.admin import BrokerProbe as BrokerProbe  # re-exported: the fault suite reads it from here
from infra.messaging.outbox import measure_backlog
from karya.processes import ServiceProcess
from karya.services import SERVICES
from services.ledger.adapters.facts_repo import held_orders, parked_events
from services.ledger.allocation import held_row
from services.ledger.domain import accounts
from services.ledger.domain.journal import EntryKind
from services.ledger.reports import trial_balance


def topology_schemas() -> dict[str, str]:
    """Each service's schema, as the topology (:data:`karya.services.SERVICES`) names it."""
    return {name: service.schema for name, service in SERVICES.items()}


async def backlog(conn: AsyncConnection, schemas: Mapping[str, str] | None = None) -> int:
    """Outbox rows not yet published (the relay deletes what Kafka acknowledged), over all services: exact while
    small, else an upper bound (:func:`infra.messaging.outbox.measure_backlog`); 0 only when none waits."""
    total = 0
    for schema in (schemas or topology_schemas()).values():
        total += (await measure_backlog(conn, schema)).rows
    return total


def _events_processed(schemas: Mapping[str, str]) -> str:
    """The inbox rows of every service: the events its consumer processed."""
    return "SELECT " + " + ".join(f"(SELECT count(*) FROM {schema}.inbox)" for schema in schemas.values())


async def database_counts(conn: AsyncConnection, schemas: Mapping[str, str] | None = None) -> dict[str, int]:
    """Counters for the demo's final JSON line."""
    schemas = schemas or topology_schemas()
    orders, ledger = schemas["orders"], schemas["ledger"]
    q = {
        "orders": f"SELECT count(*) FROM {orders}.orders",
        "events_processed": _events_processed(schemas),
        "journal_entries": f"SELECT count(*) FROM {ledger}.journal_entries",
        "trial_balance_debits": f"SELECT coalesce(sum(amount), 0) FROM {ledger}.journal_lines WHERE side = 'D'",
        "trial_balance_credits": f"SELECT coalesce(sum(amount), 0) FROM {ledger}.journal_lines WHERE side = 'C'",
        "unbalanced_entries": f"SELECT count(*) FROM (SELECT sequence FROM {ledger}.journal_lines GROUP BY sequence "
        "HAVING sum(CASE side WHEN 'D' THEN amount ELSE -amount END) <> 0 OR count(*) < 2) x",
        "duplicate_postings": f"SELECT count(*) FROM (SELECT order_key FROM {ledger}.journal_entries "
        "WHERE kind = 'sale_completed' GROUP BY order_key HAVING count(*) > 1) x",
        "posting_conflicts": f"SELECT count(*) FROM {ledger}.posting_conflicts",
        "negative_stock_rows": f"SELECT count(*) FROM {orders}.batch_stock WHERE on_hand < 0 OR soft_reserved < 0 "
        "OR allocated < 0 OR quarantined < 0 OR soft_reserved + allocated > on_hand",
    }
    return {k: int((await conn.execute(text(sql))).scalar_one()) for k, sql in q.items()}


async def ledger_figures(conn: AsyncConnection, schemas: Mapping[str, str] | None = None) -> dict[str, int]:
    """What reached the ledger off the happy path, through the ledger's own read use cases (the same ones
    ``karya ledger unallocated``, ``pending`` and ``trial-balance`` print): orders held in unallocated proceeds and
    the rupiah held, events still parked, the suspense balance, refund and settlement entries posted."""
    uow = UnitOfWork(conn, (schemas or topology_schemas())["ledger"])
    held = [held_row(facts, since) for facts, since in await held_orders(uow)]
    balances = {r["account"]: int(r["balance"]) for r in await trial_balance(uow)}
    kinds = {
        str(r.kind): int(r.n)
        for r in await conn.execute(
            text(f"SELECT kind, count(*) AS n FROM {uow.table('journal_entries')} GROUP BY kind")
        )
    }
    return {
        "unallocated_orders": len(held),
        "unallocated_amount": sum(int(r["held"]) for r in held),
        "parked_events": len(await parked_events(uow)),
        "suspense_balance": sum(v for k, v in balances.items() if accounts.account_info(k).kind.name == "suspense"),
        "refunds_posted": kinds.get(EntryKind.REFUND.value, 0),
        "settlements_posted": kinds.get(EntryKind.SETTLEMENT.value, 0),
    }


async def summary_tables(
    conn: AsyncConnection, schemas: Mapping[str, str] | None = None
) -> dict[str, list[dict[str, Any]]]:
    """Readable summary: orders by state, stock by workshop, PNBP per lapas, top savings, trial balance."""
    schemas = schemas or topology_schemas()
    orders, ledger = schemas["orders"], schemas["ledger"]

    async def rows(sql: str) -> list[dict[str, Any]]:
        return [dict(r._mapping) for r in await conn.execute(text(sql))]

    return {
        "orders_by_state": await rows(
            f"SELECT coalesce(state, 'parked') AS state, count(*) AS orders FROM {orders}.orders "
            "GROUP BY 1 ORDER BY 2 DESC"
        ),
        "stock_by_workshop": await rows(
            "SELECT workshop_id, sum(on_hand) AS on_hand, sum(soft_reserved) AS soft_reserved, "
            "sum(allocated) AS allocated, "
            "sum(quarantined) AS quarantined, sum(on_hand - soft_reserved - allocated) AS available "
            f"FROM {orders}.batch_stock GROUP BY workshop_id ORDER BY workshop_id"
        ),
        "pnbp_per_lapas": await rows(
            "SELECT split_part(account, ':', 3) AS lapas, sum(credit_total - debit_total)::bigint AS pnbp_payable "
            f"FROM {ledger}.account_balances WHERE account LIKE 'liability:pnbp\\_payable:%' "
            "GROUP BY account ORDER BY 1"
        ),
        "top_inmate_savings": await rows(
            "SELECT split_part(account, ':', 3) AS inmate, sum(credit_total - debit_total)::bigint AS savings "
            f"FROM {ledger}.account_balances WHERE account LIKE 'liability:inmate\\_savings:%' GROUP BY account "
            "ORDER BY 2 DESC "
            "LIMIT 10"
        ),
        "trial_balance": await rows(
            "SELECT split_part(account, ':', 1) AS type, sum(debit_total)::bigint AS debit, "
            "sum(credit_total)::bigint AS credit "
            f"FROM {ledger}.account_balances GROUP BY 1 ORDER BY 1"
        ),
    }


async def wait_pipeline_drained(
    database_url: str,
    prefix: str,
    procs: Sequence[ServiceProcess],
    timeout_s: float,
    *,
    min_processed: int = 0,
    stable_s: float = 2.0,
    poll_s: float = 1.0,
    count_every_s: float = 5.0,
    on_update: Callable[[int, int, int], None] | None = None,
) -> bool:
    """Until consumer lag (orders, ledger, gateway normaliser) and outbox backlog are zero and the inbox counts
    stopped moving for ``stable_s``; False on timeout. ``on_update(processed, lag, outbox)`` after each look.

    The broker's lag is read at every look; the outbox backlog once the lag is zero, and the inboxes once both are;
    while the pipeline is busy, both at most every ``count_every_s`` (``processed`` and ``outbox`` are the last
    counts meanwhile). A count reads every inbox row: at a million orders it took longer than the poll interval, so
    a bench that counted at every look kept a core of the database it measures busy with its own question."""
    engine = make_engine(database_url, pool_size=1)
    schemas = topology_schemas()
    groups = [f"{prefix}karya-{g}" for g in ("orders", "ledger", "gateway-normaliser")]
    deadline = time.monotonic() + timeout_s
    last: tuple[int, int] | None = None
    stable_since = time.monotonic()
    processed, pending, counted_at = 0, 0, float("-inf")
    try:
        async with BrokerProbe(os.environ["KAFKA_BOOTSTRAP_SERVERS"], prefix) as probe:
            while time.monotonic() < deadline:
                dead = [p.name for p in procs if p.popen.poll() is not None]
                if dead:
                    raise RuntimeError(f"service process(es) exited: {dead}; see their logs")
                _, lag = await probe.counts(groups)
                due = time.monotonic() - counted_at >= count_every_s
                if lag == 0 or due:
                    async with engine.connect() as conn:
                        pending = await backlog(conn, schemas)
                        if (lag == 0 and pending == 0) or due:
                            # Only the count it needs: the full counters aggregate the whole journal.
                            processed = int((await conn.execute(text(_events_processed(schemas)))).scalar_one())
                            counted_at = time.monotonic()
                if on_update is not None:
                    on_update(processed, lag, pending)
                state = (processed, lag + pending)
                if state != last:
                    stable_since = time.monotonic()
                elif (
                    processed >= min_processed
                    and lag == 0
                    and pending == 0
                    and time.monotonic() - stable_since >= stable_s
                ):
                    return True
                last = state
                await asyncio.sleep(poll_s)
    finally:
        await engine.dispose()
    return False
