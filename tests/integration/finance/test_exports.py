"""CSV and XLSX downloads of every table page on the real database, signed in as the workspace's users: each holds
every row its filters select (not one page), with the numbers of the read API and of the raw journal — rupiah as
plain integers in CSV and integer cells in XLSX, times ISO 8601 with the lapas' offset; every download is in the
audit log; an auditor of lapas A never finds a row of lapas B in any of them; bad input is a 422 and an export
beyond the bound a 413."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest

from infra.db.roles import RoleUrls
from services.finance.web import downloads, pages
from services.finance.web.chain import RUN_COLUMNS
from services.finance.web.pages import ENTRY_COLUMNS, REGISTER_COLUMNS, STATEMENT_COLUMNS, TB_COLUMNS
from services.finance.web.queues import COLUMNS as QUEUE_COLUMNS
from services.finance.web.reconciliation import TABLES, columns
from services.ledger.domain import accounts
from tests.integration.finance_auth_support import Workspace
from tests.integration.finance_export_support import (
    MAY,
    Posted,
    all_text,
    balance_of,
    download,
    every_page,
    exported,
    moment,
    number,
    ok_json,
    posted,
    rows_of,
    same_instant,
    signed_in,
    sums_by_sequence,
    ws,
    zone_of_a,
)
from tests.integration.finance_read_support import LAPAS_A

pytestmark = pytest.mark.integration
__all__ = ["posted", "ws"]  # the shared fixtures, used here by name
FORMATS = ("csv", "xlsx")
RW = {k: k for k in ("channel", "month", "orders", "booked", "settled", "open", "matched", "unmatched")} | {
    k: k for k in ("completed_at", "settled_at", "state", "received_at", "gross")
}
"""Column headers do not matter to :func:`rows_of` (it keys cells by position): any words will do."""


def _every_export(posted: Posted) -> list[tuple[str, dict[str, str]]]:
    """Every table download of the pages, for lapas A's viewer."""
    two = posted.two
    return [
        ("/trial-balance", {}),
        ("/journal", {}),
        (f"/orders/{two.order_a}", {}),
        (f"/accounts/{accounts.inmate_savings(two.inmate_a)}", {}),
        (f"/inmates/{two.inmate_a}", {}),
        *(("/reconciliation", {"table": str(t)}) for t in TABLES),
        *(("/queues", {"table": str(t)}) for t in QUEUE_COLUMNS),
        ("/chain", {}),
    ]


async def test_an_auditor_of_lapas_a_never_exports_a_row_of_lapas_b_and_every_export_is_audited(
    posted: Posted, ws: Workspace
) -> None:
    client, name = await signed_in(ws, "auditor_lapas", LAPAS_A)
    expected = []
    for url, params in _every_export(posted):
        for fmt in FORMATS:
            response = await download(client, url, fmt, **params)
            found = all_text(response.content, fmt)
            assert not [b for b in posted.of_b() if b in found], (url, params, fmt)
            expected.append(response.headers["content-disposition"].split('"')[1])
    for url in (f"/orders/{posted.two.order_b}", f"/inmates/{posted.two.inmate_b}"):
        for fmt in FORMATS:
            response = await client.get(url, params={"format": fmt})
            assert response.status_code == 404 and "content-disposition" not in response.headers, (url, fmt)
    subjects = await exported(ws, name)
    assert len(subjects) == len(expected) == 2 * len(_every_export(posted))
    assert sorted(re.sub(r"[^A-Za-z0-9._-]", "_", s) for s in subjects) == sorted(expected)


async def test_the_journal_export_is_every_entry_of_its_filters_with_the_apis_and_the_journals_amounts(
    posted: Posted, ws: Workspace, database: RoleUrls
) -> None:
    client, _ = await signed_in(ws, "auditor_lapas", LAPAS_A)
    zone = await zone_of_a(client)
    api = await every_page(client, "/api/v1/entries", "entries")
    assert len(api) > 3 and set(posted.two.entries_a) <= {e["sequence"] for e in api}
    raw = await sums_by_sequence(database, [e["sequence"] for e in api])
    page = await client.get("/journal", params={"limit": 2})
    assert len(re.findall(r'<a href="/journal/\d+">', page.text)) == 2, "the page shows one page"
    assert 'id="csv" href="/journal?limit=2&amp;format=csv"' in page.text
    for fmt in FORMATS:
        body = (await download(client, "/journal", fmt, limit=2, cursor=str(api[0]["sequence"]))).content
        rows = rows_of(body, fmt, ENTRY_COLUMNS)
        assert [number(r["sequence"], fmt) for r in rows] == [e["sequence"] for e in api], "every entry"
        assert (
            [number(r["amount"], fmt) for r in rows] == [e["amount"] for e in api] == [raw[e["sequence"]] for e in api]
        )
        for row, entry in zip(rows, api, strict=True):
            assert same_instant(moment(row["effective_at"], fmt, zone), entry["effective_at"]), (row, entry)
            assert same_instant(moment(row["recorded_at"], fmt, zone), entry["recorded_at"])
    filtered = await every_page(client, "/api/v1/entries", "entries", order_key=posted.two.order_a)
    rows = rows_of(
        (await download(client, "/journal", "csv", order_key=posted.two.order_a)).content, "csv", ENTRY_COLUMNS
    )
    assert [int(r["sequence"]) for r in rows] == [e["sequence"] for e in filtered] and rows
    order = await ok_json(client, f"/api/v1/orders/{posted.two.order_a}")
    order_page = (await client.get(f"/orders/{posted.two.order_a}")).text
    for fmt in FORMATS:
        link = re.search(f'id="entries-{fmt}" href="([^"]+)"', order_page)
        assert link, f"the order page links its {fmt}"
        linked = await client.get(html.unescape(link.group(1)))
        assert linked.status_code == 200
        body = (await download(client, f"/orders/{posted.two.order_a}", fmt)).content
        for content in (body, linked.content):
            got = [(number(r["sequence"], fmt), number(r["amount"], fmt)) for r in rows_of(content, fmt, ENTRY_COLUMNS)]
            assert got == [(e["sequence"], e["amount"]) for e in order["entries"]]


async def test_the_statement_and_register_exports_carry_the_apis_postings_and_balances(
    posted: Posted, ws: Workspace, database: RoleUrls, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pages, "REGISTER_LIMIT", 1)  # the register page shows the latest line; its export, every one
    client, _ = await signed_in(ws, "auditor_lapas", LAPAS_A)
    inmate = posted.two.inmate_a
    statement = await ok_json(client, f"/api/v1/inmates/{inmate}/statement")
    assert statement["postings"] and statement["closing_balance"] == await balance_of(database, statement["account"])
    page = await client.get(f"/inmates/{inmate}")
    assert f'id="xlsx" href="/inmates/{inmate}?format=xlsx"' in page.text
    for url, cols in (
        (f"/inmates/{inmate}", STATEMENT_COLUMNS),
        (f"/accounts/{statement['account']}", REGISTER_COLUMNS),
    ):
        for fmt in FORMATS:
            rows = rows_of((await download(client, url, fmt)).content, fmt, cols)
            opening, *lines, closing = rows
            assert number(opening["balance"], fmt) == statement["opening_balance"]
            assert number(closing["balance"], fmt) == statement["closing_balance"]
            got = [tuple(number(r[k], fmt) for k in ("sequence", "debit", "credit", "balance")) for r in lines]
            want = [(p["sequence"], p["debit"], p["credit"], p["balance"]) for p in statement["postings"]]
            assert got == want, (url, fmt)

    receivable = f"asset:marketplace_receivable:{LAPAS_A}:shopee"
    entries = await every_page(client, "/api/v1/entries", "entries", account=receivable)
    register = await client.get(f"/accounts/{receivable}")
    assert len(re.findall(r'<a href="/journal/\d+">', register.text)) == 1 < len(entries)
    rows = rows_of((await download(client, f"/accounts/{receivable}", "csv")).content, "csv", REGISTER_COLUMNS)[1:-1]
    assert sorted(int(r["sequence"]) for r in rows) == [e["sequence"] for e in entries]
    assert int(rows[-1]["balance"]) == sum(int(r["debit"]) - int(r["credit"]) for r in rows), "debit-normal"


async def test_the_trial_balance_export_uses_the_shared_download(posted: Posted, ws: Workspace) -> None:
    client, name = await signed_in(ws, "auditor_lapas", LAPAS_A)
    api = await ok_json(client, "/api/v1/trial-balance")
    for fmt in FORMATS:
        rows = rows_of((await download(client, "/trial-balance", fmt)).content, fmt, TB_COLUMNS)
        got = {r["account"]: (number(r["debit"], fmt), number(r["credit"], fmt)) for r in rows}
        assert got == {a["account"]: (a["debit"], a["credit"]) for a in api["accounts"]}
    assert sorted(await exported(ws, name)) == ["trial_balance_all.csv", "trial_balance_all.xlsx"]


async def test_the_reconciliation_exports_equal_the_api(posted: Posted, ws: Workspace) -> None:
    client, _ = await signed_in(ws, "auditor_lapas", LAPAS_A)
    api = await ok_json(client, "/api/v1/reconciliation", month=MAY)
    assert posted.unsettled_a in {o["order_key"] for o in api["unmatched"]}
    assert api["settlements_without_completion"] == [], "a parked settlement has no lapas yet"
    page = await client.get("/reconciliation", params={"month": MAY})
    assert f'id="unmatched-csv" href="/reconciliation?month={MAY}&amp;table=unmatched&amp;format=csv"' in page.text
    for fmt in FORMATS:
        summary = rows_of(
            (await download(client, "/reconciliation", fmt, month=MAY)).content, fmt, columns("summary", RW)
        )
        keys = ("orders", "booked", "settled", "open", "matched", "unmatched")
        got = [(r["channel"], r["month"], *(number(r[k], fmt) for k in keys)) for r in summary]
        assert got == [(s["channel"], s["month"], *(s[k] for k in keys)) for s in api["summary"]] and got
        body = (await download(client, "/reconciliation", fmt, month=MAY, table="unmatched")).content
        unmatched = rows_of(body, fmt, columns("unmatched", RW))
        got_items = [
            (r["order_key"], r["state"], *(number(r[k], fmt) for k in ("booked", "settled", "open"))) for r in unmatched
        ]
        assert got_items == [
            (o["order_key"], o["state"], o["booked"], o["settled"], o["open"]) for o in api["unmatched"]
        ]
    pusat, _ = await signed_in(ws, "auditor_pusat")
    body = (await download(pusat, "/reconciliation", "csv", month=MAY, table="orphans")).content
    assert posted.two.parked in {r["order_key"] for r in rows_of(body, "csv", columns("orphans", RW))}


async def test_the_queue_exports_equal_the_api_and_the_chain_history_export_equals_its_api(
    posted: Posted, ws: Workspace
) -> None:
    client, _ = await signed_in(ws, "auditor_lapas", LAPAS_A)
    zone = await zone_of_a(client)
    for queue in ("unallocated", "suspense", "parked"):
        api = await every_page(client, f"/api/v1/items/{queue}", "items")
        for fmt in FORMATS:
            rows = rows_of((await download(client, "/queues", fmt, table=queue)).content, fmt, QUEUE_COLUMNS[queue])
            # An adjustment of no order is an item without an order key: an empty CSV cell, an empty XLSX cell.
            assert [r["order_key"] or None for r in rows] == [i["order_key"] for i in api], (queue, fmt)
            if queue != "parked":
                assert [number(r["amount"], fmt) for r in rows] == [i["amount"] for i in api]
    assert posted.two.unallocated_a in {
        i["order_key"] for i in await every_page(client, "/api/v1/items/unallocated", "items")
    }
    pusat, _ = await signed_in(ws, "auditor_pusat")
    parked = rows_of((await download(pusat, "/queues", "csv", table="parked")).content, "csv", QUEUE_COLUMNS["parked"])
    assert posted.two.parked in {r["order_key"] for r in parked}
    assert 'id="parked-csv"' in (await client.get("/queues")).text

    runs = (await ok_json(client, "/api/v1/chain/verifications"))["runs"]
    assert posted.run_id in {r["id"] for r in runs}
    for fmt in FORMATS:
        rows = rows_of((await download(client, "/chain", fmt)).content, fmt, RUN_COLUMNS)
        assert [(number(r["id"], fmt), r["state"], number(r["entries"], fmt)) for r in rows] == [
            (r["id"], r["state"], r["entries"]) for r in runs
        ]
        for row, run in zip(rows, runs, strict=True):
            assert same_instant(moment(row["started_at"], fmt, zone), run["started_at"])


async def test_bad_input_is_a_422_and_an_export_beyond_the_bound_a_413(
    posted: Posted, ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, name = await signed_in(ws, "auditor_lapas", LAPAS_A)
    bad: list[tuple[str, dict[str, Any]]] = [
        ("/journal", {"format": "pdf"}),
        ("/journal", {"format": "csv", "from": "2026-02-30"}),
        ("/journal", {"format": "xlsx", "to": "0001-01-01"}),
        ("/reconciliation", {"format": "csv", "table": "everything"}),
        ("/reconciliation", {"format": "csv", "month": "2026-13"}),
        ("/queues", {"format": "csv", "table": "proposal"}),
        ("/chain", {"format": "ods"}),
        (f"/inmates/{posted.two.inmate_a}", {"format": "json"}),
    ]
    for url, params in bad:
        response = await client.get(url, params=params)
        assert response.status_code == 422, (url, params, response.status_code)
    monkeypatch.setattr(downloads, "MAX_ROWS", 0)  # A has entries, an unmatched order, an unallocated one
    for url, params in (
        ("/journal", {}),
        ("/reconciliation", {"table": "unmatched"}),
        ("/queues", {"table": "unallocated"}),
    ):
        response = await client.get(url, params={**params, "format": "csv"})
        assert response.status_code == 413 and "narrow the filters" in response.text, (url, response.text)
    assert await exported(ws, name) == [], "a refused export is not audited"
