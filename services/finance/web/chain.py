"""The chain page (``/chain``): the head of every segment's hash chain and the latest anchor (number, hash, time)
now; start a verification of every chain and every anchor (``POST /chain/verify``, auditors only, CSRF-protected),
watch its progress (the page refreshes itself while one runs) and read the history of runs with the root hash of the
heads they reached and the latest anchor they found intact (``?format=csv|xlsx``: every run, audited). The
verification is global — every segment, every lapas — see :mod:`services.finance.jobs`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import RedirectResponse

from services.finance.auth import CurrentUser, User, audit, csrf_protect, require_role
from services.finance.jobs import ChainJobs, VerificationBusy
from services.finance.queries import chain
from services.finance.scope import Reads
from services.finance.templating import page_lang
from services.finance.web.common import ViewerZone, page
from services.finance.web.downloads import MAX_ROWS, PageFormat, bounded, export_links, table_download
from services.presentation.exports import Column

router = APIRouter(include_in_schema=False)
STARTERS = ("auditor_pusat", "auditor_lapas")
"""Who may start a verification (it reads nothing of a lapas to them: only the global result is shown)."""
RUN_COLUMNS = (
    Column("id", "run", "int"),
    Column("started_by", "started_by"),
    Column("role", "role"),
    Column("started_at", "started_at", "datetime"),
    Column("ended_at", "ended_at", "datetime"),
    Column("entries", "entries", "int"),
    Column("state", "state"),
    Column("first_broken", "first_broken", "int"),
    Column("problem", "problem"),
    Column("head_hash", "head_hash"),
    Column("anchors", "anchors", "int"),
    Column("latest_anchor", "latest_anchor", "int"),
    Column("latest_anchor_hash", "latest_anchor_hash"),
    Column("first_broken_anchor", "first_broken_anchor", "int"),
)
"""A verification run as exported (``state``: ``ok``, ``broken``, ``running`` or ``interrupted``)."""
_TEXTS: dict[str, tuple[str, str]] = {
    "title": ("Verifikasi rantai hash", "Hash chain verification"),
    "start": ("Mulai verifikasi", "Start a verification"),
    "running": ("Sedang berjalan", "Running"),
    "checked": ("entri diperiksa dari", "entries checked of"),
    "history": ("Riwayat", "History"),
    "started_by": ("Dimulai oleh", "Started by"),
    "started_at": ("Mulai", "Started"),
    "ended_at": ("Selesai", "Ended"),
    "entries": ("Entri", "Entries"),
    "head": ("Akar hash kepala", "Heads root hash"),
    "heads": ("Kepala segmen", "Segment heads"),
    "segment": ("Segmen", "Segment"),
    "sequence": ("Entri terakhir", "Last entry"),
    "hash": ("Hash", "Hash"),
    "anchor": ("Jangkar terakhir", "Latest anchor"),
    "no_anchor": ("Belum ada jangkar.", "No anchor yet."),
    "taken": ("diambil", "taken"),
    "anchor_broken": ("jangkar rusak", "anchor broken"),
    "anchor_ok": ("jangkar utuh sampai", "anchors intact up to"),
    "result": ("Hasil", "Result"),
    "ok": ("utuh", "intact"),
    "broken": ("rusak pada entri", "broken at entry"),
    "interrupted": ("terputus", "interrupted"),
    "busy": ("Verifikasi lain sedang berjalan.", "Another verification is running."),
    "global": (
        "Rantai mencakup semua lapas: hasilnya berlaku global.",
        "The chain spans every lapas: the result is global.",
    ),
}


def chain_jobs(request: Request) -> ChainJobs:
    """The app's :class:`ChainJobs` (made on first use: one per app, hence one verification at a time)."""
    state = request.app.state
    jobs: ChainJobs | None = getattr(state, "chain_jobs", None)
    if jobs is None:
        jobs = ChainJobs(state.db, getattr(state, "schemas", {}).get("ledger", "ledger"))
        state.chain_jobs = jobs
    return jobs


Jobs = Annotated[ChainJobs, Depends(chain_jobs)]


@router.get("/chain", response_model=None)
async def chain_page(
    request: Request,
    user: CurrentUser,
    jobs: Jobs,
    zone: ViewerZone,
    reads: Reads,
    busy: int = 0,
    format: PageFormat = "html",
) -> Response:
    """The segment heads and the latest anchor now, the running verification's progress (refreshing every 2 s while
    it runs) and the history of runs; as CSV or XLSX every run."""
    if format != "html":
        runs = bounded(await jobs.history(MAX_ROWS + 1))
        return await table_download(request, user, RUN_COLUMNS, runs, fmt=format, stem="chain_verifications", zone=zone)
    words = {k: v[0 if page_lang(request) == "id" else 1] for k, v in _TEXTS.items()}
    context = {
        "cw": words,
        "progress": jobs.progress,
        "runs": await jobs.history(),
        "heads": await chain.segment_heads(reads),
        "anchor": await chain.latest_anchor(reads),
        "may_start": user.role in STARTERS,
        "busy": bool(busy),
        "exports": export_links(request),
    }
    return await page(request, user, "chain", context)


@router.post("/chain/verify", dependencies=[Depends(csrf_protect)])
async def start_verification(
    request: Request, user: Annotated[User, Depends(require_role(*STARTERS))], jobs: Jobs
) -> Response:
    """Start a verification in the background and go back to the page (``?busy=1`` when one already runs)."""
    try:
        run_id = await jobs.start(user)
    except VerificationBusy:
        return RedirectResponse("/chain?busy=1", status_code=303)
    async with request.app.state.db.begin() as uow:
        await audit.record(uow, user, "verify_chain", f"run {run_id}")
    return RedirectResponse("/chain", status_code=303)
