"""The page routes: dashboard (``/dashboard``), trial balance (``/trial-balance``, ``?format=csv|xlsx``), journal
(``/journal``, ``/journal/{sequence}``), order (``/orders/{order_key}``), account register
(``/accounts/{account}``) and inmate savings statement (``/inmates/{inmate_id}``), all in the viewer's scope."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from services.finance.api.accounts import INMATE_ID
from services.finance.api.params import NO_NUL, sequence_cursor, text_query
from services.finance.auth import CurrentUser, audit
from services.finance.presentation.exports import Column, download_headers, to_csv, to_xlsx
from services.finance.queries import balances, chain, items, journal
from services.finance.queries.balances import Moment
from services.finance.queries.register import account_register
from services.finance.scope import Reads
from services.finance.templating import page_lang
from services.finance.web.common import day_start, end_of_day, page, parse_day, resolve_zone, zone_of

router = APIRouter(include_in_schema=False, dependencies=[Depends(resolve_zone)])  # the lapas' own zone
PAGE_SIZE = 50
Text = Annotated[str | None, text_query("filter")]
DASHBOARD_PREFIXES = {
    "pnbp": "liability:pnbp_payable:",
    "premi": "liability:inmate_savings:",
    "suppliers": "liability:supplier_payable:",
    "unallocated": "clearing:unallocated_proceeds:",
    "suspense": "clearing:suspense",
}
SALES = "revenue:sales:"
TB_COLUMNS = (
    Column("account", "account"),
    Column("type", "kind"),
    Column("debit", "debit", "rupiah"),
    Column("credit", "credit", "rupiah"),
    Column("balance", "balance", "rupiah"),
)


async def _missing(request: Request, user: CurrentUser, what: str) -> Response:
    """The 404 page: the same for what does not exist and for what another lapas holds (the id is not echoed)."""
    return await page(request, user, "missing", {"what": what}, status_code=404)


def _sum(rows: list[dict[str, Any]], prefix: str) -> int:
    return sum(r["balance"] for r in rows if r["account"].startswith(prefix))


@router.get("/dashboard")
async def dashboard(request: Request, user: CurrentUser, reads: Reads) -> Response:
    """Sales today and this month, what is owed (PNBP, premi savings, suppliers), the open work items."""
    zone = zone_of(request, user)
    now = datetime.now(UTC)
    today = day_start(now.astimezone(zone).date(), zone)
    month = today.replace(day=1)
    every = await balances.account_totals(reads, Moment())
    before_today = await balances.account_totals(reads, Moment(as_of=today - timedelta(microseconds=1)), SALES)
    before_month = await balances.account_totals(reads, Moment(as_of=month - timedelta(microseconds=1)), SALES)
    sales = _sum(every, SALES)
    figures = {key: _sum(every, prefix) for key, prefix in DASHBOARD_PREFIXES.items()}
    figures["sales_today"] = sales - _sum(before_today, SALES)
    figures["sales_month"] = sales - _sum(before_month, SALES)
    parked, more = await items.parked(reads, None, PAGE_SIZE)
    inmates = [r for r in every if r["account"].startswith(DASHBOARD_PREFIXES["premi"])]
    context = {"figures": figures, "parked": parked, "parked_more": more is not None, "inmates": inmates}
    context["chain"] = await chain.chain_status(reads)
    context["report_month"] = f"{month:%Y-%m}"
    return await page(request, user, "dashboard", context)


@router.get("/trial-balance", response_model=None)
async def trial_balance(
    request: Request,
    user: CurrentUser,
    reads: Reads,
    as_of: Annotated[str | None, Query(max_length=10)] = None,
    format: Literal["html", "csv", "xlsx"] = "html",
) -> Response:
    """Every visible account's totals as of the end of a day (in the viewer's zone); CSV or XLSX to download."""
    zone = zone_of(request, user)
    day = parse_day(as_of, "as_of")
    tb = await balances.trial_balance(reads, Moment(as_of=None if day is None else end_of_day(day, zone)))
    if format == "html":
        return await page(request, user, "trial_balance", {"tb": tb, "as_of": as_of or ""})
    stem = f"trial_balance_{as_of or 'all'}"
    body = (
        to_csv(TB_COLUMNS, tb["accounts"], lang=page_lang(request), zone=zone)
        if format == "csv"
        else to_xlsx(TB_COLUMNS, tb["accounts"], title="Trial balance", lang=page_lang(request), zone=zone)
    )
    async with request.app.state.db.begin() as uow:
        await audit.record(uow, user, "export", f"{stem}.{format}")
    return Response(body, headers=download_headers(stem, format))


@router.get("/journal")
async def journal_page(
    request: Request,
    user: CurrentUser,
    reads: Reads,
    start: Annotated[str | None, Query(alias="from", max_length=10)] = None,
    end: Annotated[str | None, Query(alias="to", max_length=10)] = None,
    posting_key: Text = None,
    order_key: Text = None,
    kind: Text = None,
    account: Text = None,
    cursor: Text = None,
    limit: Annotated[int, Query(ge=1, le=500)] = PAGE_SIZE,
) -> Response:
    """A page of entries, filtered by period (days in the viewer's zone), key, order, kind or account."""
    zone = zone_of(request, user)
    first, last = parse_day(start, "from"), parse_day(end, "to")
    where = journal.EntryFilter(
        None if first is None else day_start(first, zone),
        None if last is None else day_start(last + timedelta(days=1), zone),
        posting_key or None,
        order_key or None,
        kind or None,
        account or None,
    )
    entries, after = await journal.entries_page(reads, where, Moment(), sequence_cursor(cursor), limit)
    next_url = None if after is None else str(request.url.include_query_params(cursor=after))
    filters = {"from": start, "to": end, "posting_key": posting_key, "order_key": order_key, "kind": kind}
    context = {"entries": entries, "next_url": next_url, "filters": filters | {"account": account}}
    return await page(request, user, "journal", context)


@router.get("/journal/{sequence}")
async def entry_page(
    request: Request, user: CurrentUser, reads: Reads, sequence: Annotated[int, Path(ge=1, le=2**63 - 1)]
) -> Response:
    """One entry: its lines, its link in the hash chain, its source event and its order's deliveries
    (redacted)."""
    found = await journal.entry_detail(reads, sequence)
    if found is None:
        return await _missing(request, user, "entry")
    return await page(request, user, "entry", {"entry": found})


@router.get("/orders/{order_key}")
async def order_page(
    request: Request,
    user: CurrentUser,
    reads: Reads,
    order_key: Annotated[str, Path(max_length=300, pattern=NO_NUL)],
) -> Response:
    """One order: its lapas, its entries (completion, settlement, distribution…) and its deliveries."""
    found = await journal.order_detail(reads, order_key)
    if found is None:
        return await _missing(request, user, "order")
    return await page(request, user, "order", {"order": found})


@router.get("/accounts/{account}")
async def register_page(
    request: Request, user: CurrentUser, reads: Reads, account: Annotated[str, Path(max_length=200, pattern=NO_NUL)]
) -> Response:
    """An account's lines with the running balance on its normal side."""
    try:
        found = await account_register(reads, account, Moment())
    except ValueError:  # not an account code the ledger can make
        found = None
    if found is None:
        return await _missing(request, user, "account")
    return await page(request, user, "register", {"register": found})


@router.get("/inmates/{inmate_id}")
async def statement_page(
    request: Request, user: CurrentUser, reads: Reads, inmate_id: Annotated[str, Path(pattern=INMATE_ID)]
) -> Response:
    """An inmate's savings: each line links to its entry and its order."""
    found = await balances.inmate_statement(reads, inmate_id, None, None, Moment())
    if found is None:
        return await _missing(request, user, "inmate")
    return await page(request, user, "statement", {"statement": found})
