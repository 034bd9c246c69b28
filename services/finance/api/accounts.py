"""``/api/v1/accounts``, ``/api/v1/trial-balance``, ``/api/v1/inmates/{inmate_id}/statement``: balances as of a
time (effective) and as known at a time (recorded), in the viewer's lapas."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path

from services.finance.api.models import AccountList, InmateStatement, TrialBalance
from services.finance.api.params import NOT_FOUND, AsOf, End, KnownAt, Start, moment, not_found, period, text_query
from services.finance.queries import balances
from services.finance.scope import Reads

router = APIRouter(prefix="/api/v1", tags=["balances"])

INMATE_ID = r"^WBP-[0-9A-Z]{6}$"


@router.get("/accounts", response_model=AccountList)
async def list_accounts(
    reads: Reads,
    as_of: AsOf = None,
    known_at: KnownAt = None,
    prefix: Annotated[str | None, text_query("Only accounts whose code starts with this.", 200)] = None,
) -> dict[str, Any]:
    """Accounts with lines in the viewer's lapas: debit and credit totals and the balance on the normal side."""
    rows = await balances.account_totals(reads, moment(as_of, known_at), prefix)
    return {"as_of": as_of, "known_at": known_at, "accounts": rows}


@router.get("/trial-balance", response_model=TrialBalance)
async def trial_balance(reads: Reads, as_of: AsOf = None, known_at: KnownAt = None) -> dict[str, Any]:
    """Every account in the viewer's lapas with the grand totals; debits equal credits whatever the scope, since
    a lapas sees whole entries."""
    return await balances.trial_balance(reads, moment(as_of, known_at))


@router.get("/inmates/{inmate_id}/statement", response_model=InmateStatement, responses=NOT_FOUND)
async def inmate_statement(
    reads: Reads,
    inmate_id: Annotated[str, Path(pattern=INMATE_ID, description="Pseudonymous inmate id (WBP-XXXXXX).")],
    start: Start = None,
    end: End = None,
    known_at: KnownAt = None,
) -> dict[str, Any]:
    """The inmate's savings between ``from`` and ``to``: opening balance, each posting with the balance after it,
    closing balance. 404 when the inmate earned nothing in the viewer's lapas."""
    start, end = period(start, end)
    found = await balances.inmate_statement(reads, inmate_id, start, end, moment(None, known_at))
    if found is None:
        not_found("inmate")
    return found
