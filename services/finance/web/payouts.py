"""Payouts (``/payouts``): the inmates of the viewer's lapas with a savings balance, and the treasurer's payout form.

The list is read through the scoped read model (:data:`services.finance.scope.Reads`): the database's lapas
policies decide which savings accounts a viewer sees. The form runs the SAME use case as ``karya ledger payout``
(:func:`services.ledger.payouts.pay_out`: never above the balance, once per payout id) in a transaction of the
ledger writer the work queues use (:mod:`services.finance.web.queues`, installed by
:func:`~services.finance.web.queues.install_ledger_writer`). Before any write the inmate's savings account is looked
up in the viewer's scope: an inmate of another lapas is a 404, like one that does not exist.

Only a ``bendahara`` pays out (others 403), the form carries the CSRF token (403 without). A refusal — above the
savings (rule ``savings_never_negative``), a malformed inmate id or amount — is the page's error message (200, never
a 500). Every attempt is in the audit log as ``payout_attempt`` before the ledger's transaction starts, then as
``payout``, ``payout_refused`` or ``payout_failed`` (the queues' audited action), subject the payout's posting key:
the signed-in user is also the payout's payer on the entry (a release payout; the form asks no registration number,
so the registry is not asked and the entry says so).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response
from sqlalchemy import text

from services.finance.auth import CurrentUser, User, form_fields
from services.finance.queries.balances import account_visible
from services.finance.scope import ReadModel, Reads
from services.finance.web.common import page
from services.finance.web.queues import CSRF, Refusal, Treasurer, _acting
from services.ledger.domain import accounts
from services.ledger.domain.errors import LedgerDomainError
from services.ledger.domain.postings import payout_key
from services.ledger.payouts import pay_out

router = APIRouter(include_in_schema=False)
LIST_SIZE = 200
SAVINGS_PREFIX = "liability:inmate_savings:"


async def savings_balances(reads: ReadModel, limit: int = LIST_SIZE) -> list[dict[str, Any]]:
    """The viewer's inmates with savings above zero (inmate id, balance in rupiah), by inmate id."""
    sql = (
        f"SELECT substr(account, :n) AS inmate_id, sum(credit_total - debit_total)::bigint AS balance "
        f"FROM {reads.ledger('account_balances')} WHERE starts_with(account, :p) GROUP BY account "
        "HAVING sum(credit_total) > sum(debit_total) ORDER BY account LIMIT :limit"
    )
    rows = await reads.conn.execute(text(sql), {"n": len(SAVINGS_PREFIX) + 1, "p": SAVINGS_PREFIX, "limit": limit})
    return [{"inmate_id": r.inmate_id, "balance": int(r.balance)} for r in rows]


async def _page(
    request: Request, user: User, reads: ReadModel, message: str | None = None, refused: bool = False
) -> Response:
    """The page, with ``message`` on it (an error when ``refused``); each render gets a fresh payout id, so a
    resubmitted form pays out once."""
    payout_id = f"WEB-{uuid.uuid4().hex[:12]}"
    can_act, inmates = user.role == "bendahara", await savings_balances(reads)
    context = {"inmates": inmates, "can_act": can_act, "payout_id": payout_id, "message": message, "refused": refused}
    return await page(request, user, "payouts", context)


@router.get("/payouts")
async def payouts_page(request: Request, user: CurrentUser, reads: Reads) -> Response:
    """The viewer's inmates with savings; a ``bendahara`` also gets the payout form."""
    return await _page(request, user, reads)


def _amount(value: str) -> int:
    """A whole-rupiah amount from the form (digits only; ``.`` as thousands separator allowed)."""
    digits = value.strip().replace(".", "")
    if not digits.isdigit():
        raise Refusal(f"amount must be whole rupiah, got {value!r}")
    return int(digits)


@router.post("/payouts", dependencies=CSRF, response_model=None)
async def payout_action(request: Request, user: Treasurer, reads: Reads) -> Response:
    """Pay out ``amount`` of an inmate's savings (``inmate_id`` of the user's lapas) under ``payout_id``."""
    fields = await form_fields(request)
    inmate_id, payout_id = fields.get("inmate_id", "").strip(), fields.get("payout_id", "").strip()
    try:
        account = accounts.inmate_savings(inmate_id)
    except LedgerDomainError as exc:  # a malformed id names no inmate of any lapas: nothing to hide
        return await _page(request, user, reads, f"unknown inmate {inmate_id!r}: {exc}", refused=True)
    if not await account_visible(reads, account):
        raise HTTPException(status_code=404, detail="no such inmate")
    subject = payout_key(inmate_id, payout_id)
    try:
        async with _acting(request, user, "payout", subject) as uow:
            amount = _amount(fields.get("amount", ""))
            topics = request.app.state.ledger_writer.topics
            outcome = await pay_out(uow, topics, inmate_id, amount, payout_id, datetime.now(UTC), paid_by=user.name)
    except (LedgerDomainError, Refusal) as exc:
        return await _page(request, user, reads, str(exc), refused=True)
    if not outcome.posted:
        return await _page(request, user, reads, f"payout {payout_id} was already posted")
    done = f"paid {amount:,} to {inmate_id} by {user.name}; savings now {outcome.savings_after:,}"
    return await _page(request, user, reads, done)
