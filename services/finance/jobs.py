"""Chain verifications started from the workspace: a background asyncio task in the workspace process, one at a
time, recorded in ``finance.verification_runs`` / ``verification_results`` (migration ``finance_0003``).

A run reuses the ledger's verifiers (:func:`services.ledger.reports.verify_chain` over every segment's chain and
:func:`services.ledger.chain_anchor.verify_anchors` over every anchor, what ``karya ledger verify`` and the ledger's
chain watch run): no second hash-chain implementation. Verification needs every entry, so it reads as the
workspace's own role (``karya_finance``, the only credential the process holds) in a READ ONLY, REPEATABLE READ
transaction whose lapas scope is ``'*'`` (every row of ``journal_entries`` and ``journal_lines``, the segment heads
and the anchors; it can write nothing and sees no personal data). The scope is set by the job, never taken from the
user, so the result is global, not per lapas: what an auditor of one lapas starts verifies the whole chain too.

Progress (entries checked of the total) lives in this process while the run goes; the tables keep who started a
run, when, and its result (entries, the root hash of the segment heads reached, the first broken link; the anchors
checked, the latest found intact and the first broken one, migration ``finance_0010``). A run whose process stopped
before its result was written has no result row: shown as interrupted.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text

from infra.db.unit_of_work import Database, UnitOfWork
from infra.logging import get_logger
from services.finance.scope import StaticViewer, Viewer, enter_scope
from services.ledger.chain_anchor import AnchorVerification, verify_anchors
from services.ledger.reports import Verification, verify_chain

log = get_logger(__name__)
EVERY_LAPAS = StaticViewer("chain-verification", "auditor_pusat", None)
"""The scope a verification reads in: every lapas (the chain is one chain over all of them)."""


class VerificationBusy(RuntimeError):
    """A verification is already running in this process."""


@dataclass(slots=True)
class Progress:
    """The running verification: its run id, who started it, entries checked so far of the chain's length."""

    run_id: int
    started_by: str
    checked: int
    total: int


class ChainJobs:
    """Starts verifications (one at a time) and reads their history; one per app (``app.state.chain_jobs``)."""

    def __init__(self, db: Database, ledger_schema: str) -> None:
        """``db``: the workspace's database (its engine reads the chain, its schema keeps the runs)."""
        self._db = db
        self._ledger = ledger_schema
        self._task: asyncio.Task[None] | None = None
        self.progress: Progress | None = None

    @property
    def busy(self) -> bool:
        """Whether a verification is running."""
        return self._task is not None and not self._task.done()

    async def start(self, user: Viewer) -> int:
        """Record a run started by ``user`` and start it in the background; its id. :class:`VerificationBusy`
        while one runs (the check and the claim happen before any await: two requests cannot both start)."""
        if self.busy or self.progress is not None:
            raise VerificationBusy("a chain verification is already running")
        self.progress = Progress(0, user.name, 0, 0)
        try:
            async with self._db.begin() as uow:
                run_id = int(
                    (
                        await uow.conn.execute(
                            text(
                                f"INSERT INTO {uow.table('verification_runs')} (started_by, role) "
                                "VALUES (:n, :r) RETURNING id"
                            ),
                            {"n": user.name, "r": user.role},
                        )
                    ).scalar_one()
                )
        except BaseException:
            self.progress = None
            raise
        self.progress.run_id = run_id
        self._task = asyncio.create_task(self._run(run_id), name=f"chain-verification-{run_id}")
        return run_id

    async def wait(self) -> None:
        """Until the running verification (if any) has ended and recorded its result."""
        if self._task is not None:
            await asyncio.shield(self._task)

    async def stop(self) -> None:
        """Cancel a running verification (the app stops): it stays without a result, shown as interrupted."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self, run_id: int) -> None:
        progress = self.progress
        assert progress is not None
        try:
            result, anchors = await self._verify(progress)
            progress.checked = result.entries
            async with self._db.begin() as uow:
                await uow.conn.execute(
                    text(
                        f"INSERT INTO {uow.table('verification_results')} (run_id, entries, head_hash, first_broken, "
                        "problem, anchors, latest_anchor, latest_anchor_hash, first_broken_anchor) "
                        "VALUES (:id, :e, :h, :b, :p, :a, :la, :lh, :ba)"
                    ),
                    {
                        "id": run_id,
                        "e": result.entries,
                        "h": result.head_hash,
                        "b": result.first_broken,
                        "p": "; ".join(p for p in (result.problem, anchors.problem) if p) or None,
                        "a": anchors.anchors,
                        "la": None if anchors.latest is None else anchors.latest.anchor_no,
                        "lh": None if anchors.latest is None else anchors.latest.anchor_hash,
                        "ba": anchors.first_broken,
                    },
                )
            if result.first_broken is not None or anchors.first_broken is not None:
                log.error(
                    "chain_broken",
                    run=run_id,
                    first_broken=result.first_broken,
                    first_broken_anchor=anchors.first_broken,
                    problem=result.problem or anchors.problem,
                )
        except Exception:
            log.exception("chain_verification_failed", run=run_id)
        finally:
            self.progress = None

    async def _verify(self, progress: Progress) -> tuple[Verification, AnchorVerification]:
        """The ledger's verifiers, in one snapshot, with progress reported into ``progress`` (every 5,000 entries,
        its own pace)."""
        engine = self._db.engine
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="REPEATABLE READ")
            async with conn.begin() as transaction:
                await conn.execute(text("SET TRANSACTION READ ONLY"))
                await enter_scope(conn, EVERY_LAPAS)
                uow = UnitOfWork(conn, self._ledger)
                entries = await conn.execute(text(f"SELECT count(*) FROM {uow.table('journal_entries')}"))
                progress.total = int(entries.scalar_one())

                def report(done: int, total: int) -> None:
                    progress.checked, progress.total = done, total

                result = await verify_chain(uow, report)
                anchors = await verify_anchors(uow)
                await transaction.rollback()
        return result, anchors

    async def history(self, limit: int = 50) -> list[dict[str, Any]]:
        """The latest runs, newest first: who, when, and the result (None while running or interrupted)."""
        async with self._db.read() as uow:
            rows = await uow.conn.execute(
                text(
                    "SELECT r.id, r.started_by, r.role, r.started_at, x.ended_at, x.entries, x.head_hash, "
                    "x.first_broken, x.problem, x.anchors, x.latest_anchor, x.latest_anchor_hash, "
                    f"x.first_broken_anchor FROM {uow.table('verification_runs')} r "
                    f"LEFT JOIN {uow.table('verification_results')} x ON x.run_id = r.id "
                    "ORDER BY r.id DESC LIMIT :n"
                ),
                {"n": limit},
            )
            return [_run_row(dict(r._mapping), self.progress) for r in rows]


def _run_row(row: dict[str, Any], progress: Progress | None) -> dict[str, Any]:
    """A history row with its state: ``ok``, ``broken``, ``running`` or ``interrupted``."""
    if row["ended_at"] is not None:
        row["state"] = "ok" if row["problem"] is None else "broken"
    else:
        row["state"] = "running" if progress is not None and progress.run_id == row["id"] else "interrupted"
    return row
