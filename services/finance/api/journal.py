"""``/api/v1/entries``, ``/api/v1/entries/{sequence}``, ``/api/v1/orders/{order_key}``: the journal by period,
posting key, order, kind or account (cursor pagination), one entry with its lines, chain link and causes, one
order with its entries — in the viewer's lapas."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path

from services.finance.api.models import EntryDetail, EntryPage, Order
from services.finance.api.params import (
    NO_NUL,
    NOT_FOUND,
    AsOf,
    Cursor,
    End,
    KnownAt,
    Limit,
    Start,
    moment,
    not_found,
    period,
    sequence_cursor,
    text_query,
)
from services.finance.queries import journal
from services.finance.scope import Reads

router = APIRouter(prefix="/api/v1", tags=["journal"])


@router.get("/entries", response_model=EntryPage)
async def list_entries(
    reads: Reads,
    start: Start = None,
    end: End = None,
    as_of: AsOf = None,
    known_at: KnownAt = None,
    posting_key: Annotated[str | None, text_query("Entries whose posting key starts with this.")] = None,
    order_key: Annotated[str | None, text_query("Entries of this order.")] = None,
    kind: Annotated[str | None, text_query("Entries of this kind (completion, settlement, distribution...).")] = None,
    account: Annotated[str | None, text_query("Entries with a line on this account.")] = None,
    cursor: Cursor = None,
    limit: Limit = 100,
) -> dict[str, Any]:
    """Entries in sequence order, filtered; ``next_cursor`` continues the list."""
    start, end = period(start, end)
    where = journal.EntryFilter(start, end, posting_key, order_key, kind, account)
    entries, after = await journal.entries_page(reads, where, moment(as_of, known_at), sequence_cursor(cursor), limit)
    return {"entries": entries, "next_cursor": None if after is None else str(after)}


@router.get("/entries/{sequence}", response_model=EntryDetail, responses=NOT_FOUND)
async def get_entry(reads: Reads, sequence: Annotated[int, Path(ge=1, le=2**63 - 1)]) -> dict[str, Any]:
    """One entry: its lines, its link in the hash chain, its source event and its order's webhook deliveries
    (redacted)."""
    found = await journal.entry_detail(reads, sequence)
    if found is None:
        not_found("entry")
    return found


@router.get("/orders/{order_key}", response_model=Order, responses=NOT_FOUND)
async def get_order(
    reads: Reads, order_key: Annotated[str, Path(max_length=300, pattern=NO_NUL, description="marketplace:shop:order")]
) -> dict[str, Any]:
    """What the ledger knows of an order, its entries and its webhook deliveries (redacted, without bodies)."""
    found = await journal.order_detail(reads, order_key)
    if found is None:
        not_found("order")
    return found
