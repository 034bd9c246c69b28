"""Every download of the workspace's pages, one way: :func:`table_download` turns a table (its columns and rows)
into a CSV or XLSX answer and :func:`audited_download` writes any document (a PDF too) to the audit log before it
answers; :func:`every_row` pages through a cursor query to the end, within :data:`MAX_ROWS`.

A page takes ``?format=csv|xlsx`` with the same filters as its HTML and exports every row the filters select, not
the page shown. Rupiah stay integers (plain digits in CSV, numeric cells in XLSX) and times are ISO 8601 with the
offset of the page's zone (:mod:`services.presentation.exports`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, Literal, TypeVar
from zoneinfo import ZoneInfo

from fastapi import HTTPException, Request, Response

from services.finance.auth import User, audit
from services.finance.templating import page_lang
from services.presentation.exports import Column, ExportFormat, download_headers, to_csv, to_xlsx

TableFormat = Literal["csv", "xlsx"]
PageFormat = Literal["html", "csv", "xlsx"]
"""A table page's ``format``: the page itself or one of its downloads."""
MAX_ROWS = 50_000
"""Most rows one export holds: a bigger one is refused (413) and the filters narrow it (a month, an order…)."""
FETCH_SIZE = 2_000
"""Rows read per query while an export pages through a cursor."""
Cursor = TypeVar("Cursor")


def too_many() -> HTTPException:
    """The answer to an export beyond :data:`MAX_ROWS`."""
    return HTTPException(status_code=413, detail=f"more than {MAX_ROWS} rows: narrow the filters to export them")


def bounded(rows: Sequence[Mapping[str, Any]]) -> Sequence[Mapping[str, Any]]:
    """``rows`` (read with a limit of ``MAX_ROWS + 1``), or 413 when there are more than :data:`MAX_ROWS`."""
    if len(rows) > MAX_ROWS:
        raise too_many()
    return rows


async def every_row(
    fetch: Callable[[Cursor | None, int], Awaitable[tuple[list[dict[str, Any]], Cursor | None]]],
) -> list[dict[str, Any]]:
    """Every row of a cursor query (``fetch(after, limit)`` → a page and the next cursor, None on the last),
    :data:`FETCH_SIZE` at a time; 413 past :data:`MAX_ROWS`."""
    rows: list[dict[str, Any]] = []
    after: Cursor | None = None
    while True:
        found, after = await fetch(after, FETCH_SIZE)
        rows += found
        if len(rows) > MAX_ROWS:
            raise too_many()
        if after is None:
            return rows


def export_links(request: Request, table: str | None = None) -> dict[str, str]:
    """The page's own address as its CSV and XLSX downloads (its filters kept, a page cursor dropped; ``table``:
    which of the page's tables): what ``pages/_exports.html`` shows as "CSV · XLSX" links."""
    url = request.url.remove_query_params(["cursor", "format", "table"])
    extra = {} if table is None else {"table": table}
    return {fmt: f"{url.path}?{url.include_query_params(**extra, format=fmt).query}" for fmt in ("csv", "xlsx")}


async def audited_download(request: Request, user: User, body: bytes, stem: str, fmt: ExportFormat) -> Response:
    """The document ``stem.fmt`` as an attachment, once its export is in the audit log."""
    async with request.app.state.db.begin() as uow:
        await audit.record(uow, user, "export", f"{stem}.{fmt}")
    return Response(body, headers=download_headers(stem, fmt))


async def table_download(
    request: Request,
    user: User,
    columns: Sequence[Column],
    rows: Iterable[Mapping[str, Any]],
    *,
    fmt: TableFormat,
    stem: str,
    zone: ZoneInfo,
    title: str = "Karya",
) -> Response:
    """``rows`` as CSV or XLSX (headers in the page's language, times in ``zone``), audited, as ``stem.fmt``."""
    lang = page_lang(request)
    if fmt == "csv":
        body = to_csv(columns, rows, lang=lang, zone=zone)
    else:
        body = to_xlsx(columns, rows, title=title, lang=lang, zone=zone)
    return await audited_download(request, user, body, stem, fmt)
