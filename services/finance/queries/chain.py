"""The ledger's hash chain as the workspace shows and stamps it: the head (sequence and hash of the last entry).

``ledger.chain_head`` is one row the posting path updates in the transaction of every posting, under a row lock,
so entries with a sequence up to the head's are exactly the ones committed when the head was read: a report that
keeps to ``sequence <= head.sequence`` holds the numbers of that head, whatever is posted meanwhile.

The last verification is not recorded by the ledger: its periodic check (:mod:`services.ledger.chain_watch`)
only sets Prometheus gauges (``karya_ledger_chain_verified``, ``…_last_verified_timestamp_seconds``) and
``karya ledger verify`` prints its finding. What the database does record are the verifications started from the
workspace (``finance.verification_results``, migration ``finance_0003``): :func:`chain_status` reads the latest of
those, and says None while there is none (or while that table does not exist).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text

from services.finance.scope import ReadModel


@dataclass(frozen=True, slots=True)
class ChainHead:
    """The last entry of the chain: its sequence and its chain hash (64 zeros before the first entry)."""

    sequence: int
    hash: str


@dataclass(frozen=True, slots=True)
class ChainStatus:
    """What the dashboard shows of the chain: its head, and when it was last verified (None: not recorded)."""

    head: ChainHead
    last_verified: datetime | None = None
    intact: bool | None = None
    verified_hash: str | None = None


async def chain_head(reads: ReadModel) -> ChainHead:
    """The chain head now (not under the lapas policies: the head names no lapas)."""
    row = (await reads.conn.execute(text(f"SELECT sequence, hash FROM {reads.ledger('chain_head')}"))).one()
    return ChainHead(int(row.sequence), str(row.hash))


async def chain_status(reads: ReadModel) -> ChainStatus:
    """The head and the latest recorded verification: when it ended, whether the chain was intact and the head
    hash it reached (None each when none is recorded)."""
    head = await chain_head(reads)
    results = reads.finance("verification_results")
    exists = (await reads.conn.execute(text("SELECT to_regclass(:t) IS NOT NULL"), {"t": results})).scalar_one()
    if not exists:
        return ChainStatus(head)
    sql = f"SELECT ended_at, first_broken IS NULL AS intact, head_hash FROM {results} ORDER BY ended_at DESC LIMIT 1"
    last = (await reads.conn.execute(text(sql))).first()
    if last is None:
        return ChainStatus(head)
    return ChainStatus(head, last.ended_at, bool(last.intact), str(last.head_hash))


async def lines_moved(reads: ReadModel, accounts: list[str], after: int, upto: int) -> bool:
    """Whether an entry with a sequence in ``(after, upto]`` has a line on one of ``accounts`` (visible ones):
    a read between two heads with no such line holds the numbers of both."""
    sql = (
        f"SELECT EXISTS (SELECT 1 FROM {reads.ledger('journal_lines')} l "
        "WHERE l.account = ANY(:a) AND l.sequence > :after AND l.sequence <= :upto)"
    )
    return bool((await reads.conn.execute(text(sql), {"a": accounts, "after": after, "upto": upto})).scalar_one())
