"""SQL of ``ledger.chain_anchors`` (append-only: the service inserts and reads, nothing updates or deletes) and of the
journal's hash at the heads anchors name."""

from __future__ import annotations

import json
from collections.abc import Iterable

from sqlalchemy import text
from sqlalchemy.engine import Row

from infra.db.unit_of_work import UnitOfWork
from services.ledger.domain.anchors import ChainAnchor, heads_of_json, heads_to_json

_COLUMNS = "anchor_no, taken_at, reason, heads::text AS heads, heads_root, prev_hash, anchor_hash"


def _anchor(row: Row[tuple[object, ...]]) -> ChainAnchor:
    """A stored row as a :class:`ChainAnchor` (a malformed ``heads`` value reads as no heads: its root won't match)."""
    try:
        heads = heads_of_json(json.loads(str(row.heads)))
    except ValueError:
        heads = ()
    return ChainAnchor(
        int(row.anchor_no),
        row.taken_at,
        str(row.reason),
        heads,
        str(row.heads_root),
        str(row.prev_hash),
        str(row.anchor_hash),
    )


async def latest_anchor(uow: UnitOfWork) -> ChainAnchor | None:
    """The anchor with the highest number (None before the first)."""
    sql = f"SELECT {_COLUMNS} FROM {uow.table('chain_anchors')} ORDER BY anchor_no DESC LIMIT 1"
    row = (await uow.conn.execute(text(sql))).first()
    return None if row is None else _anchor(row)


async def anchors_after(uow: UnitOfWork, after_no: int, limit: int) -> list[ChainAnchor]:
    """Up to ``limit`` anchors numbered above ``after_no``, in number order."""
    sql = f"SELECT {_COLUMNS} FROM {uow.table('chain_anchors')} WHERE anchor_no > :a ORDER BY anchor_no LIMIT :n"
    return [_anchor(r) for r in await uow.conn.execute(text(sql), {"a": after_no, "n": limit})]


async def insert_anchor(uow: UnitOfWork, anchor: ChainAnchor) -> None:
    """Append ``anchor`` (the primary key refuses a number another taker inserted first)."""
    await uow.conn.execute(
        text(
            f"INSERT INTO {uow.table('chain_anchors')} "
            "(anchor_no, taken_at, reason, heads, heads_root, prev_hash, anchor_hash) "
            "VALUES (:no, :at, :reason, CAST(:heads AS jsonb), :root, :prev, :hash)"
        ),
        {
            "no": anchor.anchor_no,
            "at": anchor.taken_at,
            "reason": anchor.reason,
            "heads": json.dumps(heads_to_json(anchor.heads)),
            "root": anchor.heads_root,
            "prev": anchor.prev_hash,
            "hash": anchor.anchor_hash,
        },
    )


async def entry_hashes(uow: UnitOfWork, sequences: Iterable[int]) -> dict[int, tuple[str, str]]:
    """The (segment, chain hash) of each journal entry in ``sequences`` that exists."""
    wanted = sorted({s for s in sequences if s > 0})
    if not wanted:
        return {}
    rows = await uow.conn.execute(
        text(
            f"SELECT sequence, segment, chain_hash FROM {uow.table('journal_entries')} "
            "WHERE sequence = ANY(CAST(:s AS bigint[]))"
        ),
        {"s": wanted},
    )
    return {int(r.sequence): (str(r.segment), str(r.chain_hash)) for r in rows}


async def anchor_hashes(uow: UnitOfWork, numbers: Iterable[int]) -> dict[int, str]:
    """The stored hash of each anchor in ``numbers`` that exists."""
    wanted = sorted(set(numbers))
    if not wanted:
        return {}
    rows = await uow.conn.execute(
        text(
            f"SELECT anchor_no, anchor_hash FROM {uow.table('chain_anchors')} "
            "WHERE anchor_no = ANY(CAST(:n AS bigint[]))"
        ),
        {"n": wanted},
    )
    return {int(r.anchor_no): str(r.anchor_hash) for r in rows}
