"""The page routes: dashboard (``/dashboard``), trial balance (``/trial-balance``), journal (``/journal``,
``/journal/{sequence}``), order (``/orders/{order_key}``), account register (``/accounts/{account}``) and inmate
savings statement (``/inmates/{inmate_id}``), all in the viewer's scope. Each table but the entry's takes
``?format=csv|xlsx`` (:mod:`services.finance.web.downloads`): every row its filters select, audited."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from services.finance.api.accounts import INMATE_ID
from services.finance.api.params import NO_NUL, sequence_cursor, text_query
from services.finance.auth import CurrentUser
from services.finance.queries import balances, chain, items, journal
from services.finance.queries.balances import Moment
from services.finance.queries.register import REGISTER_LIMIT, account_register
from services.finance.scope import Reads
from services.finance.templating import page_lang
from services.finance.web.common import WORDS, day_start, end_of_day, page, parse_day, resolve_zone, zone_of
from services.finance.web.downloads import MAX_ROWS, PageFormat, bounded, every_row, export_links, table_download
from services.finance.web.withholding import tax_overview
from services.finance.web.withholding import words as tax_words
from services.presentation.exports import Column

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
ENTRY_COLUMNS = (
    Column("sequence", "sequence", "int"),
    Column("effective_at", "time", "datetime"),
    Column("recorded_at", "recorded_at", "datetime"),
    Column("kind", "kind"),
    Column("posting_key", "posting_key"),
    Column("order_key", "order"),
    Column("batch_id", "batch"),
    Column("memo", "memo"),
    Column("amount", "amount", "rupiah"),
)
"""The journal's and an order's entries as exported."""
REGISTER_COLUMNS = (
    Column("sequence", "sequence", "int"),
    Column("effective_at", "time", "datetime"),
    Column("kind", "kind"),
    Column("order_key", "order"),
    Column("debit", "debit", "rupiah"),
    Column("credit", "credit", "rupiah"),
    Column("balance", "balance", "rupiah"),
)
"""An account register as exported: the opening balance first, the closing balance last (``kind`` names them);
the balance is signed towards the account's normal side."""
STATEMENT_COLUMNS = (
    *REGISTER_COLUMNS[:3],
    Column("posting_key", "posting_key"),
    Column("order_key", "order"),
    Column("batch_id", "batch"),
    *REGISTER_COLUMNS[4:],
)
"""An inmate's statement as exported: the opening and closing balances as in :data:`REGISTER_COLUMNS`."""


async def _missing(request: Request, user: CurrentUser, what: str) -> Response:
    """The 404 page: the same for what does not exist and for what another lapas holds (the id is not echoed)."""
    return await page(request, user, "missing", {"what": what}, status_code=404)


def _sum(rows: list[dict[str, Any]], prefix: str) -> int:
    return sum(r["balance"] for r in rows if r["account"].startswith(prefix))


@router.get("/dashboard")
async def dashboard(request: Request, user: CurrentUser, reads: Reads) -> Response:
    """Sales today and this month, what is owed (PNBP, premi savings, suppliers), the open work items, the PPh 22
    withholdings to review and each lapas' tax setting in force."""
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
    context |= {"tax": await tax_overview(reads), "tw": tax_words(request)}
    return await page(request, user, "dashboard", context)


@router.get("/trial-balance", response_model=None)
async def trial_balance(
    request: Request,
    user: CurrentUser,
    reads: Reads,
    as_of: Annotated[str | None, Query(max_length=10)] = None,
    format: PageFormat = "html",
) -> Response:
    """Every visible account's totals as of the end of a day (in the viewer's zone); CSV or XLSX to download."""
    zone = zone_of(request, user)
    day = parse_day(as_of, "as_of")
    tb = await balances.trial_balance(reads, Moment(as_of=None if day is None else end_of_day(day, zone)))
    if format == "html":
        context = {"tb": tb, "as_of": as_of or "", "exports": export_links(request)}
        return await page(request, user, "trial_balance", context)
    stem = f"trial_balance_{as_of or 'all'}"
    return await table_download(
        request, user, TB_COLUMNS, tb["accounts"], fmt=format, stem=stem, zone=zone, title="Trial balance"
    )


@router.get("/journal", response_model=None)
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
    format: PageFormat = "html",
) -> Response:
    """A page of entries, filtered by period (days in the viewer's zone), key, order, kind or account; as CSV or
    XLSX every entry the filters select (the cursor and the page size are the page's only)."""
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
    if format != "html":

        async def fetch(after: int | None, n: int) -> tuple[list[dict[str, Any]], int | None]:
            return await journal.entries_page(reads, where, Moment(), after or 0, n)

        rows = await every_row(fetch)
        stem = f"journal_{start or 'start'}_{end or 'now'}"
        return await table_download(request, user, ENTRY_COLUMNS, rows, fmt=format, stem=stem, zone=zone)
    entries, after = await journal.entries_page(reads, where, Moment(), sequence_cursor(cursor), limit)
    next_url = None if after is None else str(request.url.include_query_params(cursor=after))
    filters = {"from": start, "to": end, "posting_key": posting_key, "order_key": order_key, "kind": kind}
    context: dict[str, Any] = {"entries": entries, "next_url": next_url, "filters": filters | {"account": account}}
    context["exports"] = export_links(request)
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


@router.get("/orders/{order_key}", response_model=None)
async def order_page(
    request: Request,
    user: CurrentUser,
    reads: Reads,
    order_key: Annotated[str, Path(max_length=300, pattern=NO_NUL)],
    format: PageFormat = "html",
) -> Response:
    """One order: its lapas, its entries (completion, settlement, distribution…) and its deliveries; its
    entries as CSV or XLSX."""
    found = await journal.order_detail(reads, order_key)
    if found is None:
        return await _missing(request, user, "order")
    if format != "html":
        zone = zone_of(request, user)
        stem = f"order_{order_key}"
        return await table_download(request, user, ENTRY_COLUMNS, found["entries"], fmt=format, stem=stem, zone=zone)
    return await page(request, user, "order", {"order": found, "exports": export_links(request)})


def _with_balances(
    rows: Sequence[Mapping[str, Any]], words: dict[str, str], opening: int, closing: int
) -> list[Mapping[str, Any]]:
    """A register's or statement's rows between its opening and closing balances (as the page shows them)."""
    return [{"kind": words["opening"], "balance": opening}, *rows, {"kind": words["closing"], "balance": closing}]


@router.get("/accounts/{account}", response_model=None)
async def register_page(
    request: Request,
    user: CurrentUser,
    reads: Reads,
    account: Annotated[str, Path(max_length=200, pattern=NO_NUL)],
    format: PageFormat = "html",
) -> Response:
    """An account's lines with the running balance on its normal side: the latest :data:`REGISTER_LIMIT` on the
    page; every line as CSV or XLSX, between the opening and closing balances."""
    limit = REGISTER_LIMIT if format == "html" else MAX_ROWS + 1
    try:
        found = await account_register(reads, account, Moment(), limit=limit)
    except ValueError:  # not an account code the ledger can make
        found = None
    if found is None:
        return await _missing(request, user, "account")
    if format == "html":
        return await page(request, user, "register", {"register": found, "exports": export_links(request)})
    rows = _with_balances(bounded(found["lines"]), WORDS[page_lang(request)], found["opening"], found["closing"])
    zone = zone_of(request, user)
    return await table_download(
        request, user, REGISTER_COLUMNS, rows, fmt=format, stem=f"register_{account}", zone=zone
    )


@router.get("/inmates/{inmate_id}", response_model=None)
async def statement_page(
    request: Request,
    user: CurrentUser,
    reads: Reads,
    inmate_id: Annotated[str, Path(pattern=INMATE_ID)],
    format: PageFormat = "html",
) -> Response:
    """An inmate's savings: each line links to its entry and its order (as CSV or XLSX: between the opening and
    closing balances)."""
    found = await balances.inmate_statement(reads, inmate_id, None, None, Moment())
    if found is None:
        return await _missing(request, user, "inmate")
    if format == "html":
        return await page(request, user, "statement", {"statement": found, "exports": export_links(request)})
    words = WORDS[page_lang(request)]
    rows = _with_balances(bounded(found["postings"]), words, found["opening_balance"], found["closing_balance"])
    zone, stem = zone_of(request, user), f"inmate_statement_{inmate_id}"
    return await table_download(request, user, STATEMENT_COLUMNS, rows, fmt=format, stem=stem, zone=zone)
