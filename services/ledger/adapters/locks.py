"""Every row lock the ledger takes, in one global order: order facts (by key) → chain head → balances (by
account). Posting transactions serialise on the chain head, so commit order is chain order. The events parked
for an order are taken (deleted, which locks their rows) only after its facts row is locked.

Balance rows are written only by the database: the ``journal_lines_to_balances`` statement trigger (migration
``ledger_0006``) upserts them, in account order, at the end of each statement that inserts journal lines — that
is, while the posting transaction holds the chain head. Code that must decide on a balance before it posts (a
payout) takes the chain head first, then reads the balance with :func:`balances_under_chain_head`: no other posting
can move it until this transaction ends. (The service cannot lock balance rows themselves: ``FOR UPDATE`` needs
the UPDATE privilege it no longer has.)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import text
from sqlalchemy.engine import Row

from infra.db.rowsets import KeyedQuery
from infra.db.unit_of_work import UnitOfWork


async def lock_order_facts(uow: UnitOfWork, order_keys: Iterable[str]) -> list[Row[tuple[object, ...]]]:
    """Lock and return the facts rows of ``order_keys`` (sorted)."""
    keys = sorted(set(order_keys))
    if not keys:
        return []
    # The keys as one JSON text (KeyedQuery), not an array asyncpg encodes key by key.
    query = KeyedQuery(
        "SELECT order_key, lapas_id, completion, settlement, refunded_gross "
        f"FROM {uow.table('order_facts')} WHERE order_key = ANY({{keys}}) ORDER BY order_key FOR UPDATE"
    )
    return list(await query.execute(uow.conn, keys))


async def lock_chain_head(uow: UnitOfWork) -> tuple[int, str]:
    """Lock the chain head; returns (last sequence, last hash)."""
    row = (await uow.conn.execute(text(f"SELECT sequence, hash FROM {uow.table('chain_head')} FOR UPDATE"))).one()
    return int(row.sequence), str(row.hash)


async def balances_under_chain_head(uow: UnitOfWork, accounts: Sequence[str]) -> dict[str, int]:
    """Normal-side balances of ``accounts`` (an account without a row is absent, i.e. 0), read by a statement
    that starts after the caller took the chain head, so it sees every posting committed before and none can
    commit until the caller is done."""
    rows = await uow.conn.execute(
        text(
            "SELECT b.account, b.debit_total, b.credit_total, a.normal_side "
            f"FROM {uow.table('account_balances')} b JOIN {uow.table('accounts')} a ON a.code = b.account "
            "WHERE b.account = ANY(:a)"
        ),
        {"a": sorted(set(accounts))},
    )
    return {
        r.account: (r.debit_total - r.credit_total) if r.normal_side == "D" else (r.credit_total - r.debit_total)
        for r in rows
    }
