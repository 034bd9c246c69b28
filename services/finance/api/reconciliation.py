"""``/api/v1/reconciliation``: marketplace receivables booked against settlements received, per channel and month
(in the viewer's lapas' own zone), with the unmatched items — the reconciliation page's numbers
(:mod:`services.finance.queries.reconciliation`)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query

from services.finance.api.models import Reconciliation
from services.finance.api.params import Limit, invalid
from services.finance.queries import reconciliation
from services.finance.queries.lapas import viewer_zone
from services.finance.scope import Reads
from services.finance.time_range import OUTSIDE, accepted_day
from services.finance.web.reconciliation import CHANNEL, MONTH

router = APIRouter(prefix="/api/v1", tags=["reconciliation"])


def accepted_month(month: str, location: str) -> str:
    """``month`` (``YYYY-MM``) when its days lie within :mod:`services.finance.time_range`; 422 naming it."""
    try:
        accepted_day(date.fromisoformat(f"{month}-01"))
    except ValueError:
        invalid("month", OUTSIDE, location)
    return month


@router.get("/reconciliation", response_model=Reconciliation)
async def reconciliation_view(
    reads: Reads,
    month: Annotated[str | None, Query(pattern=MONTH, description="YYYY-MM (completions of that month).")] = None,
    channel: Annotated[str | None, Query(pattern=CHANNEL, description="One marketplace channel.")] = None,
    days: Annotated[int, Query(ge=0, le=365, description="An order unsettled this many days is late.")] = 14,
    limit: Limit = 500,
) -> dict[str, Any]:
    """Per channel and month: orders, receivable booked, settled, still open, matched and unmatched; the
    unmatched orders and the settlements waiting for their completion (each list: ``limit`` items, oldest
    first)."""
    if month is not None:
        accepted_month(month, "query")
    zone = await viewer_zone(reads)
    period = reconciliation.Period(month, channel, zone.key, datetime.now(UTC), days)
    return {
        "month": month,
        "channel": channel,
        "zone": zone.key,
        "overdue_days": days,
        "summary": await reconciliation.summary(reads, period),
        "unmatched": await reconciliation.orders(reads, period, limit=limit),
        "settlements_without_completion": await reconciliation.settlements_without_completion(reads, period, limit),
    }
