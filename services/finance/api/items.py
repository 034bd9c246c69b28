"""``/api/v1/items/…``: proceeds held in unallocated, suspense left per order, parked events — in the viewer's
lapas, a page at a time."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from services.finance.api.models import OpenItemPage, ParkedPage
from services.finance.api.params import Cursor, Limit
from services.finance.queries import items
from services.finance.scope import Reads

router = APIRouter(prefix="/api/v1/items", tags=["work items"])


@router.get("/unallocated", response_model=OpenItemPage)
async def unallocated(reads: Reads, cursor: Cursor = None, limit: Limit = 100) -> dict[str, Any]:
    """Orders whose proceeds wait in unallocated (no batch allocated, or no policy), by order key."""
    found, after = await items.unallocated(reads, cursor, limit)
    return {"items": found, "next_cursor": after}


@router.get("/suspense", response_model=OpenItemPage)
async def suspense(reads: Reads, cursor: Cursor = None, limit: Limit = 100) -> dict[str, Any]:
    """Orders with a balance left in suspense (a settlement that paid other than expected), by order key."""
    found, after = await items.suspense(reads, cursor, limit)
    return {"items": found, "next_cursor": after}


@router.get("/parked", response_model=ParkedPage)
async def parked(reads: Reads, cursor: Cursor = None, limit: Limit = 100) -> dict[str, Any]:
    """Events waiting for what they depend on, by order key."""
    found, after = await items.parked(reads, cursor, limit)
    return {"items": found, "next_cursor": after}
