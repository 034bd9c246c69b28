"""The ceiling: the rows the pipeline wrote, written again by the simplest set-based SQL, one transaction per
batch, into copies of the same tables in the same database — no Kafka, no Python domain logic.

Row counts per table are taken from the pipeline run itself, so pipeline and ceiling write the same rows.
"""

from __future__ import annotations

import time

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

TABLES = [
    ("orders", "inbox"),
    ("orders", "orders"),
    ("orders", "order_history"),
    ("orders", "stock_movements"),
    ("orders", "reservations"),
    ("orders", "allocations"),
    ("orders", "outbox"),
    ("ledger", "inbox"),
    ("ledger", "journal_entries"),
    ("ledger", "journal_lines"),
    ("ledger", "order_facts"),
    ("ledger", "outbox"),
]

# Per table: the column list and one generated row per ``g`` — the simplest values of the right types and sizes.
# Serial ids come from the copied column defaults (the original sequences).
_ROWS = {
    "orders.inbox": (
        '(consumer, event_id, topic, "partition", "offset")',
        "SELECT 'orders', gen_random_uuid(), 't', 0, g FROM generate_series(1, CAST(:n AS int)) g",
    ),
    "orders.orders": (
        "(order_key, channel, shop_id, order_id, state, update_time, stock_stage, lapas_id, gross_amount)",
        "SELECT 'ceil:' || CAST(:bs AS text) || ':' || g, 'shopee', 's', g::text, 'completed', now(), 3, 'cipinang', "
        "50000 FROM generate_series(1, CAST(:n AS int)) g",
    ),
    "orders.order_history": (
        "(order_key, from_state, to_state, requested_state, raw_status, update_time, decision, event_id)",
        "SELECT 'k' || g, 'paid', 'shipped', 'shipped', 'SHIPPED', now(), 'forward', "
        "gen_random_uuid() FROM generate_series(1, CAST(:n AS int)) g",
    ),
    "orders.stock_movements": (
        "(batch_id, kind, quantity, d_on_hand, d_soft_reserved, d_allocated, d_quarantined, "
        "order_key, reason, event_id)",
        "SELECT 'B1', 'consume', 1, -1, 0, -1, 0, 'k' || g, "
        "'order shipped', gen_random_uuid() FROM generate_series(1, CAST(:n AS int)) g",
    ),
    "orders.reservations": ("(order_key, state)", "SELECT 'k' || g, 'hard' FROM generate_series(1, CAST(:n AS int)) g"),
    "orders.allocations": (
        "(reservation_id, batch_id, sku, workshop_id, quantity)",
        "SELECT CAST(:b AS bigint) * 1000000 + g, 'B1', 'SKU', 'W1', 1 FROM generate_series(1, CAST(:n AS int)) g",
    ),
    "orders.outbox": (
        "(topic, key, payload)",
        "SELECT 'orders.events', convert_to('k' || g, 'UTF8'), "
        "convert_to(repeat('x', CAST(:size AS int)), 'UTF8') FROM generate_series(1, CAST(:n AS int)) g",
    ),
    "ledger.inbox": (
        '(consumer, event_id, topic, "partition", "offset")',
        "SELECT 'ledger', gen_random_uuid(), 't', 0, g FROM generate_series(1, CAST(:n AS int)) g",
    ),
    "ledger.journal_entries": (
        "(sequence, posting_key, request_hash, kind, memo, effective_at, recorded_at, order_key, "
        "prev_hash, chain_hash, segment)",
        "SELECT CAST(:b AS bigint) * 1000000 + g, 'ceil:' || CAST(:bs AS text) || ':' || g, "
        "md5(g::text), 'settlement', 'memo', now(), now(), 'k', md5(g::text), "
        "md5(CAST(:bs AS text) || ':' || g), 's0' FROM generate_series(1, CAST(:n AS int)) g",
    ),
    "ledger.journal_lines": (
        "(sequence, line_no, account, side, amount)",
        "SELECT CAST(:b AS bigint) * 1000000 + g / 8, g % 8, 'asset:bank:cipinang:main', 'D', 1000 "
        "FROM generate_series(1, CAST(:n AS int)) g",
    ),
    "ledger.order_facts": (
        "(order_key, lapas_id, completion)",
        "SELECT 'ceil:' || CAST(:bs AS text) || ':' || g, 'cipinang', "
        "'{}'::jsonb FROM generate_series(1, CAST(:n AS int)) g",
    ),
    "ledger.outbox": (
        "(topic, key, payload)",
        "SELECT 'ledger.entries', convert_to('k' || g, 'UTF8'), "
        "convert_to(repeat('x', CAST(:size AS int)), 'UTF8') FROM generate_series(1, CAST(:n AS int)) g",
    ),
}


def _copy_name(schema: str, table: str) -> str:
    return f"{schema}_{table}"


async def table_counts(engine: AsyncEngine) -> dict[str, int]:
    """Rows per table written by the pipeline run. The outboxes are queues the relays empty, so theirs is the
    number of ids handed out (a rolled-back batch would count too; a bench run has none)."""
    async with engine.connect() as c:
        return {f"{s}.{t}": int((await c.execute(text(_count_sql(s, t)))).scalar_one()) for s, t in TABLES}


def _count_sql(schema: str, table: str) -> str:
    if table == "outbox":
        return f"SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM {schema}.outbox_id_seq"
    return f"SELECT count(*) FROM {schema}.{table}"


async def run_ceiling(migrator: AsyncEngine, counts: dict[str, int], batches: int, payload_size: int = 700) -> float:
    """Write ``counts`` rows in ``batches`` transactions; returns the seconds it took."""
    async with migrator.begin() as c:
        await c.execute(text("DROP SCHEMA IF EXISTS ceiling CASCADE"))
        await c.execute(text("CREATE SCHEMA ceiling"))
        for s, t in TABLES:
            await c.execute(
                text(
                    f"CREATE TABLE ceiling.{_copy_name(s, t)} (LIKE {s}.{t} INCLUDING DEFAULTS "
                    "INCLUDING CONSTRAINTS INCLUDING INDEXES)"
                )
            )
        await c.execute(text("CREATE TABLE ceiling.balances (LIKE ledger.account_balances INCLUDING ALL)"))
        await c.execute(
            text("INSERT INTO ceiling.balances (account, segment) SELECT 'a' || g, 's0' FROM generate_series(1, 200) g")
        )
    started = time.perf_counter()
    for b in range(batches):
        async with migrator.begin() as c:
            for s, t in TABLES:
                n = counts[f"{s}.{t}"] // batches + (1 if b < counts[f"{s}.{t}"] % batches else 0)
                if n:
                    columns, rows = _ROWS[f"{s}.{t}"]
                    await c.execute(
                        text(f"INSERT INTO ceiling.{_copy_name(s, t)} {columns} {rows}"),
                        {"n": n, "b": b, "bs": str(b), "size": payload_size},
                    )
            await c.execute(
                text(
                    "UPDATE ceiling.balances SET debit_total = debit_total + 1 WHERE account IN "
                    "(SELECT 'a' || g FROM generate_series(1, 200) g)"
                )
            )
            # What the relays do once Kafka acknowledged the batch.
            await c.execute(text("DELETE FROM ceiling.orders_outbox"))
            await c.execute(text("DELETE FROM ceiling.ledger_outbox"))
    elapsed = time.perf_counter() - started
    async with migrator.begin() as c:
        await c.execute(text("DROP SCHEMA ceiling CASCADE"))
    return elapsed
