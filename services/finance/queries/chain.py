"""The ledger's hash chains as the workspace shows and stamps them: the head of every segment, their root, the
latest anchor.

The journal is one hash chain per segment (``ledger.chain_segments``: each segment's last sequence and hash), and
``ledger.chain_head`` is a view over them: the highest sequence and the root hash of every segment's head
(:func:`services.ledger.domain.hashchain.heads_root`, what an anchor commits to). A workspace request reads in one
REPEATABLE READ snapshot (:func:`services.finance.scope.scoped_read`), so the heads it shows and the figures beside
them are of the same moment: every entry the request counts is in the chains up to those heads, and none after them.
The root stamped on a document pins every segment's head at that moment; an anchor taken later pins them in turn
(``ledger.chain_anchors``, the hash finance publishes).

The last verification is not recorded by the ledger: its periodic check (:mod:`services.ledger.chain_watch`)
only sets Prometheus gauges (``karya_ledger_chain_verified``, ``…_last_verified_timestamp_seconds``) and
``karya ledger verify`` prints its finding. What the database does record are the verifications started from the
workspace (``finance.verification_results``, migration ``finance_0003``): :func:`chain_status` reads the latest of
those, and says None while there is none (or while that table does not exist). A run is broken when it names a
problem: a broken entry, or since ``finance_0010`` a broken anchor with no entry broken (its first broken link NULL),
or a run broken by an anchor alone kept through that migration's downgrade (link 0, the anchor in its problem only).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text

from infra.db.unit_of_work import UnitOfWork
from services.finance.scope import ReadModel
from services.ledger.adapters.anchors_repo import latest_anchor as ledger_latest_anchor
from services.ledger.domain.anchors import ChainAnchor
from services.ledger.domain.hashchain import SegmentHead
from services.ledger.reports import segment_heads as ledger_segment_heads


@dataclass(frozen=True, slots=True)
class ChainHead:
    """The chains at one moment: the highest sequence of their heads and the root hash of every segment's head."""

    sequence: int
    hash: str


@dataclass(frozen=True, slots=True)
class ChainStatus:
    """What the dashboard shows of the chain: its head, and when it was last verified (None: not recorded), whether
    it was intact then and if not what was broken (the verifier's text, naming the entry or the anchor)."""

    head: ChainHead
    last_verified: datetime | None = None
    intact: bool | None = None
    verified_hash: str | None = None
    problem: str | None = None


async def chain_head(reads: ReadModel) -> ChainHead:
    """The chains' head in the request's snapshot (not under the lapas policies: the heads name no lapas)."""
    row = (await reads.conn.execute(text(f"SELECT sequence, hash FROM {reads.ledger('chain_head')}"))).one()
    return ChainHead(int(row.sequence), str(row.hash))


async def chain_status(reads: ReadModel) -> ChainStatus:
    """The head and the latest recorded verification: when it ended, whether the chain was intact (no problem: a
    broken entry or a broken anchor each record one, ``verification_results_broken``), the head hash it reached and
    the problem (None each when none is recorded)."""
    head = await chain_head(reads)
    results = reads.finance("verification_results")
    exists = (await reads.conn.execute(text("SELECT to_regclass(:t) IS NOT NULL"), {"t": results})).scalar_one()
    if not exists:
        return ChainStatus(head)
    sql = f"SELECT ended_at, head_hash, problem FROM {results} ORDER BY ended_at DESC LIMIT 1"
    last = (await reads.conn.execute(text(sql))).first()
    if last is None:
        return ChainStatus(head)
    return ChainStatus(head, last.ended_at, last.problem is None, str(last.head_hash), last.problem)


async def segment_heads(reads: ReadModel) -> list[SegmentHead]:
    """The head of every segment in the request's snapshot, by segment."""
    heads = await ledger_segment_heads(UnitOfWork(reads.conn, reads.schemas.ledger))
    return [heads[name] for name in sorted(heads)]


async def latest_anchor(reads: ReadModel) -> ChainAnchor | None:
    """The latest anchor over the segment heads (None before the first)."""
    return await ledger_latest_anchor(UnitOfWork(reads.conn, reads.schemas.ledger))
