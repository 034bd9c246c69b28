"""``/api/v1/chain/verifications``: the history of the hash chain's verifications started from the workspace (who,
when, the head hash reached, the first broken link) — global, as the chain spans every lapas
(:class:`services.finance.jobs.ChainJobs`, what the chain page shows)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from services.finance.api.models import VerificationHistory
from services.finance.auth import CurrentUser
from services.finance.web.chain import Jobs

router = APIRouter(prefix="/api/v1/chain", tags=["chain"])


@router.get("/verifications", response_model=VerificationHistory)
async def verifications(
    _: CurrentUser, jobs: Jobs, limit: Annotated[int, Query(ge=1, le=500, description="Most runs.")] = 50
) -> dict[str, Any]:
    """The latest runs, newest first, with their state (``ok``, ``broken``, ``running``, ``interrupted``)."""
    return {"runs": await jobs.history(limit)}
