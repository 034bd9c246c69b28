"""The pages that finish the savings drill-down (issue 16): a production batch (``/batches/{batch_id}``: the
catalogue's batch, its work group linking each inmate's statement, the journal entries that name it) and one
webhook delivery of an order as the redacted view shows it (``/orders/{order_key}/deliveries/{delivery_id}``: no
buyer personal data, no headers). A batch, order or delivery of another lapas is a 404 like one that does not
exist."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from services.finance.api.params import NO_NUL, sequence_cursor, text_query
from services.finance.auth import CurrentUser
from services.finance.queries import batches, journal
from services.finance.scope import Reads
from services.finance.web.common import page, resolve_zone

router = APIRouter(include_in_schema=False, dependencies=[Depends(resolve_zone)])  # the lapas' own zone
PAGE_SIZE = 100
BATCH_ID = Path(max_length=200, pattern=NO_NUL)


async def _missing(request: Request, user: CurrentUser, what: str) -> Response:
    """The workspace's 404 page (the id is not echoed)."""
    return await page(request, user, "missing", {"what": what}, status_code=404)


@router.get("/batches/{batch_id}")
async def batch_page(
    request: Request,
    user: CurrentUser,
    reads: Reads,
    batch_id: Annotated[str, BATCH_ID],
    cursor: Annotated[str | None, text_query("cursor")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = PAGE_SIZE,
) -> Response:
    """One production batch: workshop, product, quantity, date, material cost and supplier; its work group (each
    inmate linking to their statement, with the premi the batch earned them); its entries, a page at a time."""
    found = await batches.batch_detail(reads, batch_id, sequence_cursor(cursor), limit)
    if found is None:
        return await _missing(request, user, "batch")
    after = found["next_cursor"]
    next_url = None if after is None else str(request.url.include_query_params(cursor=after))
    return await page(request, user, "batch", {"batch": found, "next_url": next_url})


@router.get("/orders/{order_key}/deliveries/{delivery_id}")
async def delivery_page(
    request: Request,
    user: CurrentUser,
    reads: Reads,
    order_key: Annotated[str, Path(max_length=300, pattern=NO_NUL)],
    delivery_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
) -> Response:
    """One webhook delivery of an order, its body redacted (``finance.deliveries_redacted``)."""
    found = next(
        (d for d in await journal.deliveries_of(reads, order_key, bodies=True) if d["delivery_id"] == delivery_id),
        None,
    )
    if found is None:
        return await _missing(request, user, "delivery")
    return await page(request, user, "delivery", {"delivery": found, "order_key": order_key})
