"""Work queues (``/queues``): the viewer's unallocated proceeds, suspense items and open correction proposals,
with the treasurer's actions as POST forms. Each list downloads as CSV or XLSX
(``?format=csv|xlsx&table=unallocated|suspense|parked|proposals``: every item, audited).

The lists are read through the scoped read model (:data:`services.finance.scope.Reads`). The actions call the
ledger's own use cases — :func:`services.ledger.allocation.allocate` (as ``karya ledger allocate``, with
``allocated_by`` the user) and the correction use cases of :mod:`services.ledger.corrections` (proposer, approver,
rejecter or withdrawer: the user) — in a transaction of the **ledger writer**: a second engine, connected as the
service role (``karya_finance`` only reads the ledger), that the composition root installs with
:func:`install_ledger_writer`. Before any write, the target (order, entry, proposal) is looked up through the
scoped read model: outside the user's lapas it is a 404, like one that does not exist.

Only a ``bendahara`` acts (others get 403); every form carries the CSRF token (403 without). A refusal by a
ledger rule (``four_eyes``, ``quantity_fits``, …) is the page's error message, never a 500 (the page answers 200:
a browser logs no failed load). Every action is on the audit log (:func:`services.finance.auth.audit.record`)
before the ledger sees it: ``<action>_attempt`` commits in a finance transaction of its own before the ledger's
transaction starts, so a ledger change never lacks its actor (the two databases' transactions cannot commit as
one), then the outcome in another: ``<action>`` once the ledger committed, ``<action>_refused`` for a refusal
(nothing written to the ledger), ``<action>_failed`` for an error (the request fails).

The workspace's role cannot read ``ledger.correction_proposals``: the proposals are read by the writer, past the
lapas policies, and kept (listed, or decided: else 404) only when the viewer's scope sees their order (a proposal
without an order: only every-lapas viewers), every account their lines move and, for a revert, its target entry.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Annotated, Any, Literal

import yaml
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Request, Response
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from infra.db.unit_of_work import Database, UnitOfWork
from services.finance.auth import CurrentUser, User, audit, csrf_protect, form_fields, require_role
from services.finance.queries import items
from services.finance.scope import ReadModel, Reads
from services.finance.web.common import page, resolve_zone
from services.finance.web.downloads import PageFormat, every_row, export_links, table_download
from services.ledger import corrections
from services.ledger.adapters.corrections_repo import load_proposal
from services.ledger.allocation import allocate, parse_pick
from services.ledger.domain.errors import LedgerDomainError
from services.ledger.outbound import LedgerTopics
from services.presentation.exports import Column

router = APIRouter(include_in_schema=False)
QUEUE_SIZE = 100
Queue = Literal["unallocated", "suspense", "parked", "proposals"]
QUEUES: tuple[Queue, ...] = ("unallocated", "suspense", "parked", "proposals")
OPEN_ITEM_COLUMNS = (
    Column("order_key", "order"),
    Column("account", "account"),
    Column("amount", "amount", "rupiah"),
    Column("first_at", "first_at", "datetime"),
    Column("last_at", "last_at", "datetime"),
    Column("entries", "entries", "int"),
)
COLUMNS: dict[Queue, tuple[Column, ...]] = {
    "unallocated": OPEN_ITEM_COLUMNS,
    "suspense": OPEN_ITEM_COLUMNS,
    "parked": (
        Column("order_key", "order"),
        Column("event_id", "event_id"),
        Column("type", "type"),
        Column("waiting_for", "waiting_for"),
        Column("received_at", "received_at", "datetime"),
    ),
    "proposals": (
        Column("proposal_id", "proposal_id", "int"),
        Column("kind", "kind"),
        Column("posting_key", "posting_key"),
        Column("order_key", "order"),
        Column("reason", "reason"),
        Column("proposed_by", "proposed_by"),
        Column("proposed_at", "proposed_at", "datetime"),
        Column("lines", "lines"),
    ),
}
"""Each queue's exported columns."""
QUEUE_READS = {"unallocated": items.unallocated, "suspense": items.suspense, "parked": items.parked}
"""How each queue of items is read, a page at a time (the proposals are read by the ledger writer)."""


@dataclass(frozen=True, slots=True)
class LedgerWriter:
    """What the actions write with: the ledger's schema on a service-role engine, its topics (under the
    deployment's prefix) and the orders service's schema (the catalogue the allocation checks batches against)."""

    db: Database
    topics: LedgerTopics
    catalogue_schema: str


def install_ledger_writer(app: FastAPI, engine: AsyncEngine, topics: LedgerTopics, schemas: dict[str, str]) -> None:
    """Let the queues act: ``engine`` connects as the service role (the caller's; it disposes it), ``schemas``:
    each service's schema by name (``ledger`` and ``orders`` are used)."""
    catalogue = schemas.get("orders", "orders")
    app.state.ledger_writer = LedgerWriter(Database(engine, schemas.get("ledger", "ledger")), topics, catalogue)


def _writer(request: Request) -> LedgerWriter:
    writer: LedgerWriter | None = getattr(request.app.state, "ledger_writer", None)
    if writer is None:
        raise HTTPException(status_code=503, detail="this workspace is not configured to write to the ledger")
    return writer


Treasurer = Annotated[User, Depends(require_role("bendahara"))]
CSRF = [Depends(csrf_protect)]
"""Every action's form carries the CSRF token (403 without)."""


class Refusal(Exception):
    """An action refused before it reached the ledger (a form field missing or malformed)."""


async def _visible_order(reads: ReadModel, order_key: str | None) -> bool:
    """Whether ``order_key`` is an order of the viewer's scope (None: whether the viewer sees every lapas)."""
    if order_key is None:
        return bool(await reads.conn.scalar(text(f"SELECT {reads.finance('sees')}('*')")))
    sql = f"SELECT 1 FROM {reads.ledger('order_facts')} WHERE order_key = :k"
    return (await reads.conn.scalar(text(sql), {"k": order_key})) is not None


async def _visible_orders(reads: ReadModel, order_keys: Sequence[str | None]) -> set[str | None]:
    """The subset of ``order_keys`` visible in the viewer's scope (None included when every lapas is)."""
    keys = sorted({k for k in order_keys if k is not None})
    rows = await reads.conn.execute(
        text(f"SELECT order_key FROM {reads.ledger('order_facts')} WHERE order_key = ANY(:keys)"), {"keys": keys}
    )
    seen: set[str | None] = {r.order_key for r in rows}
    if None in order_keys and await _visible_order(reads, None):
        seen.add(None)
    return seen


async def _open_proposals(request: Request, reads: ReadModel) -> list[dict[str, object]]:
    """The open proposals whose order the viewer sees, as :func:`corrections.proposal_view` shows them."""
    writer = getattr(request.app.state, "ledger_writer", None)
    if writer is None:
        return []
    async with writer.db.read() as uow:
        found = await corrections.list_open(uow)
    return [corrections.proposal_view(p) for p in await _visible_proposals(reads, found)]


async def _visible_proposals(reads: ReadModel, proposals: Sequence[corrections.Proposal]) -> list[corrections.Proposal]:
    """The proposals wholly in the viewer's scope: their order (none: every-lapas viewers only), every account
    their lines move and a revert's target entry (the writer reads them past the lapas policies, so the scope is
    checked here against what the viewer's scoped read sees)."""
    orders = await _visible_orders(reads, [p.draft.order_key for p in proposals])
    codes = sorted({line.account for p in proposals for line in p.draft.lines})
    sql = f"SELECT code FROM {reads.ledger('accounts')} WHERE code = ANY(:codes)"
    seen_accounts = set((await reads.conn.execute(text(sql), {"codes": codes})).scalars())
    targets = sorted({p.draft.target for p in proposals if p.draft.target is not None})
    sql = f"SELECT posting_key FROM {reads.ledger('journal_entries')} WHERE posting_key = ANY(:keys)"
    seen_targets = set((await reads.conn.execute(text(sql), {"keys": targets})).scalars())
    return [
        p
        for p in proposals
        if p.draft.order_key in orders
        and all(line.account in seen_accounts for line in p.draft.lines)
        and (p.draft.target is None or p.draft.target in seen_targets)
    ]


async def _queues(
    request: Request, user: User, reads: ReadModel, message: str | None = None, *, refused: bool = False
) -> Response:
    await resolve_zone(request, reads)  # the page's times in the viewer's lapas' own zone
    unallocated, _ = await items.unallocated(reads, None, QUEUE_SIZE)
    suspense, _ = await items.suspense(reads, None, QUEUE_SIZE)
    parked, _ = await items.parked(reads, None, QUEUE_SIZE)
    context: dict[str, Any] = {
        "unallocated": unallocated,
        "suspense": suspense,
        "parked": parked,
        "proposals": await _open_proposals(request, reads),
        "exports": {q: export_links(request, q) for q in QUEUES},
        "can_act": user.role == "bendahara",
        "message": message,
        "refused": refused,
    }
    return await page(request, user, "queues", context)


@router.get("/queues", response_model=None)
async def queues_page(
    request: Request, user: CurrentUser, reads: Reads, format: PageFormat = "html", table: Queue = "unallocated"
) -> Response:
    """The viewer's work queues; a ``bendahara`` also gets the action forms. As CSV or XLSX: every item of the
    queue ``table``."""
    if format == "html":
        return await _queues(request, user, reads)
    zone = await resolve_zone(request, reads)
    if table == "proposals":
        rows = [_exported_proposal(p) for p in await _open_proposals(request, reads)]
    else:
        rows = await every_row(partial(QUEUE_READS[table], reads))
    return await table_download(request, user, COLUMNS[table], rows, fmt=format, stem=f"queue_{table}", zone=zone)


def _exported_proposal(proposal: dict[str, Any]) -> dict[str, Any]:
    """A proposal as its export row: its time as a time, its lines in one cell (``account side amount; …``)."""
    lines = "; ".join(f"{x['account']} {x['side']} {x['amount']}" for x in proposal["lines"])
    return proposal | {"proposed_at": datetime.fromisoformat(str(proposal["proposed_at"])), "lines": lines}


@asynccontextmanager
async def _acting(request: Request, user: User, action: str, subject: str) -> AsyncIterator[UnitOfWork]:
    """A ledger-writer transaction for one action, on the audit log first (``<action>_attempt``, committed before
    the ledger's transaction starts) and with its outcome after (``<action>``, ``<action>_refused`` or
    ``<action>_failed``, each in a finance transaction of its own; the block's exception is re-raised)."""
    writer = _writer(request)
    await _audit(request, user, f"{action}_attempt", subject)
    try:
        async with writer.db.begin() as uow:
            yield uow
    except (LedgerDomainError, Refusal):
        await _audit(request, user, f"{action}_refused", subject)
        raise
    except Exception:
        await _audit(request, user, f"{action}_failed", subject)
        raise
    await _audit(request, user, action, subject)


async def _audit(request: Request, user: User, action: str, subject: str) -> None:
    """Append ``action`` on ``subject`` to the audit log in a finance transaction of its own, committed here."""
    async with request.app.state.db.begin() as finance:
        await audit.record(finance, user, action, subject, ip=request.client.host if request.client else None)


async def _act(
    request: Request,
    user: User,
    reads: ReadModel,
    audited: tuple[str, str],
    work: Callable[[UnitOfWork, LedgerWriter], Awaitable[str]],
) -> Response:
    """Run ``work`` as ``user`` (audited as ``audited``: action, subject, by :func:`_acting`); its message on the
    page, or the refusal as an error message — a refused action writes nothing to the ledger."""
    writer = _writer(request)
    try:
        async with _acting(request, user, *audited) as uow:
            done = await work(uow, writer)
    except (LedgerDomainError, Refusal) as exc:
        return await _queues(request, user, reads, str(exc), refused=True)
    return await _queues(request, user, reads, done)


def _field(fields: dict[str, str], name: str) -> str:
    value = fields.get(name, "").strip()
    if not value:
        raise Refusal(f"{name} is required")
    return value


def _not_found(what: str) -> HTTPException:
    return HTTPException(status_code=404, detail=f"no such {what}")


@router.post("/queues/allocate", dependencies=CSRF, response_model=None)
async def allocate_action(request: Request, user: Treasurer, reads: Reads) -> Response:
    """Allocate an order of the user's lapas to batches (``batches``: ``BATCH:QTY``, comma or space separated)."""
    fields = await form_fields(request)
    order_key = fields.get("order_key", "").strip()
    if not order_key or not await _visible_order(reads, order_key):
        raise _not_found("order")
    picks_text = fields.get("batches", "").replace(",", " ").split()

    async def work(uow: UnitOfWork, writer: LedgerWriter) -> str:
        picks = [parse_pick(p) for p in picks_text]
        outcome = await allocate(
            uow, writer.topics, order_key, picks, catalogue_schema=writer.catalogue_schema, allocated_by=user.name
        )
        if outcome.already_allocated:
            return f"{order_key} was already allocated to these batches"
        if outcome.waiting_for_settlement:
            return f"allocated {order_key}; its settlement will distribute it"
        return f"allocated {order_key}: posted " + ", ".join(outcome.posted)

    return await _act(request, user, reads, ("allocate", order_key), work)


@router.post("/queues/revert", dependencies=CSRF, response_model=None)
async def revert_action(request: Request, user: Treasurer, reads: Reads) -> Response:
    """Propose the revert of an entry (by posting key) of the user's lapas; another person approves it."""
    fields = await form_fields(request)
    posting_key = fields.get("posting_key", "").strip()
    sql = f"SELECT order_key FROM {reads.ledger('journal_entries')} WHERE posting_key = :k"
    row = (await reads.conn.execute(text(sql), {"k": posting_key})).first() if posting_key else None
    if row is None or not await _visible_order(reads, row.order_key):
        raise _not_found("entry")

    async def work(uow: UnitOfWork, _: LedgerWriter) -> str:
        proposal = await corrections.propose_revert(
            uow, posting_key, reason=_field(fields, "reason"), proposed_by=user.name, at=datetime.now(UTC)
        )
        return _proposed(proposal)

    return await _act(request, user, reads, ("propose_revert", posting_key), work)


@router.post("/queues/adjust", dependencies=CSRF, response_model=None)
async def adjust_action(request: Request, user: Treasurer, reads: Reads) -> Response:
    """Propose a manual entry (``document``: the YAML/JSON of ``karya ledger adjust``) on an order of the user's
    lapas, touching only accounts the user sees; another person approves it."""
    fields = await form_fields(request)
    try:
        document = yaml.safe_load(fields.get("document", ""))
    except yaml.YAMLError as exc:
        return await _queues(request, user, reads, f"the adjustment is not YAML or JSON: {exc}", refused=True)
    order_key = document.get("order_key") if isinstance(document, dict) else None
    if not await _visible_order(reads, order_key if isinstance(order_key, str) else None):
        raise _not_found("order")
    if not await _accounts_visible(reads, document):
        raise _not_found("account")

    async def work(uow: UnitOfWork, _: LedgerWriter) -> str:
        proposal = await corrections.propose_adjustment(
            uow, document, "form", reason=_field(fields, "reason"), proposed_by=user.name, at=datetime.now(UTC)
        )
        return _proposed(proposal)

    return await _act(request, user, reads, ("propose_adjustment", str(order_key)), work)


async def _accounts_visible(reads: ReadModel, document: object) -> bool:
    """Whether every account the document's lines name is an existing account the viewer sees."""
    lines = document.get("lines") if isinstance(document, dict) else None
    named = {line.get("account") for line in lines if isinstance(line, dict)} if isinstance(lines, list) else set()
    codes = sorted(c for c in named if isinstance(c, str))
    sql = f"SELECT count(*) FROM {reads.ledger('accounts')} WHERE code = ANY(:codes)"
    return int(await reads.conn.scalar(text(sql), {"codes": codes}) or 0) == len(codes)


def _proposed(proposal: corrections.Proposal) -> str:
    return f"proposal {proposal.proposal_id}: {proposal.posting_key} proposed by {proposal.draft.proposed_by}"


Decision = Callable[[UnitOfWork, LedgerWriter, int, User, str], Awaitable[str]]


async def _approve(uow: UnitOfWork, writer: LedgerWriter, pid: int, user: User, _: str) -> str:
    done = await corrections.approve(uow, writer.topics, pid, approved_by=user.name, at=datetime.now(UTC))
    return f"proposal {pid} approved by {user.name}: posted {done.posting_key} (sequence {done.sequence})"


async def _reject(uow: UnitOfWork, _: LedgerWriter, pid: int, user: User, reason: str) -> str:
    await corrections.reject(uow, pid, rejected_by=user.name, reason=reason, at=datetime.now(UTC))
    return f"proposal {pid} rejected by {user.name}: nothing posted"


async def _withdraw(uow: UnitOfWork, _: LedgerWriter, pid: int, user: User, reason: str) -> str:
    await corrections.withdraw(uow, pid, withdrawn_by=user.name, reason=reason, at=datetime.now(UTC))
    return f"proposal {pid} withdrawn by {user.name}: nothing posted"


DECISIONS: dict[str, tuple[Decision, bool]] = {
    "approve": (_approve, False),
    "reject": (_reject, True),
    "withdraw": (_withdraw, True),
}
"""Each decision's use case and whether it needs a reason."""


@router.post("/queues/proposals/{proposal_id}/{decision}", dependencies=CSRF, response_model=None)
async def decide_action(
    request: Request,
    user: Treasurer,
    reads: Reads,
    proposal_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
    decision: str,
) -> Response:
    """Approve, reject or withdraw a proposal of the user's lapas (approve/reject: never by its proposer — the
    ledger's ``four_eyes`` refusal is shown on the page)."""
    if decision not in DECISIONS:
        raise _not_found("decision")
    async with _writer(request).db.read() as uow:
        found = await load_proposal(uow, proposal_id)
    if found is None or not await _visible_proposals(reads, [found]):
        raise _not_found("proposal")
    fields = await form_fields(request)
    use_case, needs_reason = DECISIONS[decision]

    async def work(uow: UnitOfWork, writer: LedgerWriter) -> str:
        reason = _field(fields, "reason") if needs_reason else ""
        return await use_case(uow, writer, proposal_id, user, reason)

    return await _act(request, user, reads, (decision, str(proposal_id)), work)
