"""Every row lock the ledger takes, in one global order: order facts (by key) → chain head → balances (by
account). Posting transactions serialise on the chain head, so commit order is chain order."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import text
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection


async def lock_order_facts(conn: AsyncConnection, order_keys: Iterable[str]) -> list[Row[tuple[object, ...]]]:
    """Lock and return the facts rows of ``order_keys`` (sorted)."""
    keys = sorted(set(order_keys))
    if not keys:
        return []
    return list(
        await conn.execute(
            text(
                "SELECT order_key, lapas_id, completion, settlement, refunded_gross FROM ledger.order_facts "
                "WHERE order_key = ANY(:k) ORDER BY order_key FOR UPDATE"
            ),
            {"k": keys},
        )
    )


async def lock_chain_head(conn: AsyncConnection) -> tuple[int, str]:
    """Lock the chain head; returns (last sequence, last hash)."""
    row = (await conn.execute(text("SELECT sequence, hash FROM ledger.chain_head FOR UPDATE"))).one()
    return int(row.sequence), str(row.hash)


async def lock_balances(conn: AsyncConnection, accounts: Sequence[str]) -> None:
    """Create missing balance rows, then lock all of ``accounts`` in sorted order."""
    ordered = sorted(set(accounts))
    await conn.execute(
        text(
            "INSERT INTO ledger.account_balances (account) SELECT unnest(CAST(:a AS text[])) "
            "ON CONFLICT (account) DO NOTHING"
        ),
        {"a": ordered},
    )
    await conn.execute(
        text("SELECT 1 FROM ledger.account_balances WHERE account = ANY(:a) ORDER BY account FOR UPDATE"),
        {"a": ordered},
    )
