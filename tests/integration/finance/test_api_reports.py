"""The read API's reports on the real database, signed in as the workspace's users: the monthly lapas report
(``/api/v1/reports/lapas/{lapas}/{month}``) has the numbers of its page's download and of the raw journal, 404 for
a lapas outside the viewer's scope and 422 for a bad month; the reconciliation (``/api/v1/reconciliation``) shows
lapas A's viewer A's unmatched orders and never B's, with the journal's amounts; the verification history
(``/api/v1/chain/verifications``) lists the runs on record; bad input is a 422 naming the field."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from infra.db.roles import RoleUrls
from services.finance.queries.reports import REPORT_LINES
from services.finance.web.reports import REPORT_COLUMNS
from tests.integration.finance_auth_support import Workspace
from tests.integration.finance_export_support import (
    MAY,
    Posted,
    download,
    ok_json,
    posted,
    raw_rows,
    rows_of,
    signed_in,
    ws,
)
from tests.integration.finance_read_support import LAPAS_A, LAPAS_B

pytestmark = pytest.mark.integration
__all__ = ["posted", "ws"]  # the shared fixtures, used here by name


async def test_the_lapas_report_api_has_its_pages_numbers_and_the_journals(
    posted: Posted, ws: Workspace, database: RoleUrls
) -> None:
    client, _ = await signed_in(ws, "auditor_lapas", LAPAS_A)
    report = await ok_json(client, f"/api/v1/reports/lapas/{LAPAS_A}/{MAY}")
    figures = {f["key"]: f["amount"] for f in report["figures"]}
    assert list(figures) == [line.key for line in REPORT_LINES] and figures["sales"] > 0
    start, end = datetime.fromisoformat(report["start"]), datetime.fromisoformat(report["end"])
    assert (end - start).days == 31 and start.utcoffset() == end.utcoffset()
    lines = await raw_rows(
        database,
        "SELECT l.account, l.side, l.amount FROM ledger.journal_lines l JOIN ledger.journal_entries e USING (sequence) "
        "JOIN ledger.order_facts f ON f.order_key = e.order_key WHERE f.lapas_id = :l "
        "AND e.effective_at >= :s AND e.effective_at < :t AND e.sequence <= :h",
        l=LAPAS_A,
        s=start,
        t=end,
        h=report["head"]["sequence"],
    )
    expected = dict.fromkeys(figures, 0)
    for line in REPORT_LINES:
        prefix = line.prefix.format(lapas=LAPAS_A)
        for r in lines:
            if r.account.startswith(prefix):
                expected[line.key] += r.amount if r.side == line.normal_side else -r.amount
    assert figures == expected
    for fmt in ("csv", "xlsx"):
        body = (await download(client, f"/reports/lapas/{LAPAS_A}/{MAY}", fmt)).content
        rows = rows_of(body, fmt, REPORT_COLUMNS)
        assert {r["key"]: int(r["amount"]) for r in rows} == figures, fmt


async def test_a_lapas_outside_the_scope_is_404_and_a_bad_month_422(posted: Posted, ws: Workspace) -> None:
    client, _ = await signed_in(ws, "auditor_lapas", LAPAS_A)
    response = await client.get(f"/api/v1/reports/lapas/{LAPAS_B}/{MAY}")
    assert response.status_code == 404 and response.json() == {"detail": "no such report"}
    assert (await client.get(f"/api/v1/reports/lapas/no-such-lapas/{MAY}")).status_code == 404
    for month in ("2026-13", "2026-5", "0000-01", "9999-12", "1899-12"):
        response = await client.get(f"/api/v1/reports/lapas/{LAPAS_A}/{month}")
        assert response.status_code == 422, month
        assert response.json()["detail"][0]["loc"] == ["path", "month"], response.json()
    assert (await client.get(f"/api/v1/reports/lapas/{LAPAS_A.upper()}/{MAY}")).status_code == 422
    pusat, _ = await signed_in(ws, "auditor_pusat")
    assert (await ok_json(pusat, f"/api/v1/reports/lapas/{LAPAS_B}/{MAY}"))["lapas_id"] == LAPAS_B
    assert (await ws.client().get(f"/api/v1/reports/lapas/{LAPAS_A}/{MAY}")).status_code == 401


async def test_the_reconciliation_api_shows_a_only_as_orders_with_the_journals_amounts(
    posted: Posted, ws: Workspace, database: RoleUrls
) -> None:
    client, _ = await signed_in(ws, "auditor_lapas", LAPAS_A)
    found = await ok_json(client, "/api/v1/reconciliation", month=MAY, channel="shopee")
    assert not [b for b in posted.of_b() if b in json.dumps(found)], "nothing of lapas B"
    unmatched = {o["order_key"]: o for o in found["unmatched"]}
    assert unmatched[posted.unsettled_a]["state"] == "unsettled"
    [booked] = await raw_rows(
        database,
        "SELECT sum(l.amount)::bigint AS d FROM ledger.journal_lines l JOIN ledger.journal_entries e USING (sequence) "
        "WHERE e.order_key = :k AND l.side = 'D' AND l.account LIKE 'asset:marketplace_receivable:%'",
        k=posted.unsettled_a,
    )
    assert unmatched[posted.unsettled_a]["booked"] == unmatched[posted.unsettled_a]["open"] == booked.d > 0
    [row] = [r for r in found["summary"] if r["month"] == MAY and r["channel"] == "shopee"]
    assert row["unmatched"] == len(found["unmatched"]) and row["orders"] >= row["matched"] + row["unmatched"]
    assert found["settlements_without_completion"] == [] and found["zone"]

    pusat, _ = await signed_in(ws, "auditor_pusat")
    every = await ok_json(pusat, "/api/v1/reconciliation", month=MAY)
    assert {posted.unsettled_a, posted.unsettled_b} <= {o["order_key"] for o in every["unmatched"]}
    assert posted.two.parked in {s["order_key"] for s in every["settlements_without_completion"]}
    assert (await ok_json(client, "/api/v1/reconciliation", month="2026-06"))["unmatched"] == []


async def test_bad_reconciliation_and_history_queries_are_422_naming_the_field(posted: Posted, ws: Workspace) -> None:
    client, _ = await signed_in(ws, "auditor_lapas", LAPAS_A)
    bad = [
        ("/api/v1/reconciliation", {"month": "0000-01"}, "month"),
        ("/api/v1/reconciliation", {"month": "2026-00"}, "month"),
        ("/api/v1/reconciliation", {"channel": "Shopee!"}, "channel"),
        ("/api/v1/reconciliation", {"days": "-1"}, "days"),
        ("/api/v1/reconciliation", {"days": "366"}, "days"),
        ("/api/v1/reconciliation", {"limit": "0"}, "limit"),
        ("/api/v1/chain/verifications", {"limit": "501"}, "limit"),
    ]
    for url, params, field in bad:
        response = await client.get(url, params=params)
        assert response.status_code == 422, (url, params)
        assert response.json()["detail"][0]["loc"] == ["query", field], response.json()


async def test_the_verification_history_lists_the_runs_on_record(posted: Posted, ws: Workspace) -> None:
    client, _ = await signed_in(ws, "auditor_lapas", LAPAS_A)
    runs = (await ok_json(client, "/api/v1/chain/verifications"))["runs"]
    [run] = [r for r in runs if r["id"] == posted.run_id]
    assert run["state"] == "ok" and run["entries"] == 42 and run["head_hash"] == "ab" * 32
    assert run["started_by"] == "auditor-x" and run["first_broken"] is None and run["ended_at"]
    assert [r["id"] for r in runs] == sorted((r["id"] for r in runs), reverse=True), "newest first"
    assert len((await ok_json(client, "/api/v1/chain/verifications", limit=1))["runs"]) == 1
    assert (await ws.client().get("/api/v1/chain/verifications")).status_code == 401
