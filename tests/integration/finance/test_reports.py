"""The monthly lapas report and the PDF documents on the real database, signed in as the workspace's users: the
report's figures equal sums of the journal computed here from the raw lines (the month in WIB: an order at 00:30
WIB on the 1st counts in that month, not the one before as in UTC); the CSV, XLSX and PDF carry the same numbers,
the PDFs the chain head hash; every download is in the audit log; an auditor of lapas A gets 404 for B's report
and B's inmate's statement; the dashboard shows the head hash."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import httpx
import pytest
from openpyxl import load_workbook
from pypdf import PdfReader
from sqlalchemy import text

from infra.db.engine import make_engine
from infra.db.roles import RoleUrls
from services.finance.auth import audit
from services.finance.web.reports import REPORT_COLUMNS
from services.ledger.adapters.journal_repo import post_entries
from services.ledger.domain import accounts
from services.ledger.domain.accounts import Side
from services.ledger.domain.journal import EntryKind, JournalEntry, Line
from services.presentation.money import rupiah
from tests.integration.finance_auth_support import Workspace, workspace
from tests.integration.finance_export_support import rows_of
from tests.integration.finance_read_support import LAPAS_A, LAPAS_B, TwoLapas, two_lapas
from tests.integration.ledger_support import (
    Batch,
    completed,
    ledger_uow,
    new_inmate,
    new_order_key,
    new_processor,
    post,
    settled,
)

pytestmark = pytest.mark.integration

WIB = ZoneInfo("Asia/Jakarta")
AUGUST = "2026-08"
FIRST_AUG = datetime(2026, 7, 31, 17, 30, tzinfo=UTC)
"""00:30 WIB on 1 August: July in UTC, August in the lapas' zone."""
FIRST_SEP = datetime(2026, 8, 31, 17, 30, tzinfo=UTC)
"""00:30 WIB on 1 September: August in UTC, not in the lapas' August."""
# What each report line sums, as the accounting documents them (docs/accounting.md), and its normal side.
EXPECTED_LINES = {
    "sales": (f"revenue:sales:{LAPAS_A}", "C"),
    "ppn_output": (f"liability:ppn_output:{LAPAS_A}", "C"),
    "fees": ("expense:marketplace_fee:", "D"),
    "ppn_input": (f"asset:ppn_input:{LAPAS_A}", "D"),
    "tax_withheld": ("asset:pph22_prepaid", "D"),
    "pph22_expense": (f"expense:pph22_withheld:{LAPAS_A}", "D"),
    "pph22_reclaimable": (f"asset:pph22_reclaimable:{LAPAS_A}", "D"),
    "pnbp": (f"liability:pnbp_payable:{LAPAS_A}", "C"),
    "premi": ("liability:inmate_savings:", "C"),
    "suppliers": ("liability:supplier_payable:", "C"),
    "capital": (f"equity:production_capital:{LAPAS_A}", "C"),
}


@dataclass(frozen=True)
class Posted:
    """Two lapas' orders in May and two orders of lapas A on the edges of August (WIB)."""

    two: TwoLapas
    inside: str
    outside: str


@pytest.fixture(scope="module")
async def posted(database: RoleUrls, admin_db_url: str) -> Posted:
    """The two lapas of the read tests, and an order of A at 00:30 WIB on 1 August and one on 1 September."""
    two = await two_lapas(database, admin_db_url)
    engine = make_engine(database.service, pool_size=1)
    inside, outside = new_order_key(), new_order_key()
    try:
        processor = new_processor()
        for key, at in ((inside, FIRST_AUG), (outside, FIRST_SEP)):
            batches = [
                Batch("B-CPN-WDW-1", "CPN-WDW-001", LAPAS_A, 1, 150_000, 30_000, "sup-kayu", ((new_inmate(), 1),))
            ]
            assert await post(engine, processor, [completed(key, batches, at), settled(key, 150_000, at)]) == []
        async with engine.begin() as conn:  # tax lines of the August order, as a PKP lapas' settlement carries them
            await post_entries(ledger_uow(conn), [(_tax_lines(inside), "test")])
    finally:
        await engine.dispose()
    return Posted(two, inside, outside)


def _tax_lines(order_key: str) -> JournalEntry:
    """Output PPN 1,500 of ``order_key``'s price, input PPN 1,000 inside its fees, PPh 22 300 borne as a cost and
    200 to claim back (not one treatment: every report line of a tax gets a figure)."""
    lines = (
        Line(accounts.ppn_input(LAPAS_A), Side.DEBIT, 1_000),
        Line(accounts.pph22_expense(LAPAS_A), Side.DEBIT, 300),
        Line(accounts.pph22_reclaimable(LAPAS_A), Side.DEBIT, 200),
        Line(accounts.ppn_output(LAPAS_A), Side.CREDIT, 1_500),
    )
    return JournalEntry(
        f"{order_key}:tax-lines", "f" * 64, EntryKind.ADJUSTMENT, "tax lines", FIRST_AUG, lines, order_key=order_key
    )


@pytest.fixture
async def ws(database: RoleUrls) -> AsyncIterator[Workspace]:
    """The workspace connected as the finance role."""
    async with workspace(database.finance) as made:
        yield made


async def _journal(database: RoleUrls, lapas: str, start: datetime, end: datetime) -> tuple[dict[str, int], set[str]]:
    """The report's figures summed here from the raw lines of ``lapas``' orders' entries effective in
    ``[start, end)`` (as the service role, unscoped), and the orders counted."""
    engine = make_engine(database.service, pool_size=1)
    try:
        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    text(
                        "SELECT e.order_key, e.effective_at, l.account, l.side, l.amount FROM ledger.journal_lines l "
                        "JOIN ledger.journal_entries e USING (sequence) "
                        "JOIN ledger.order_facts f ON f.order_key = e.order_key WHERE f.lapas_id = :l"
                    ),
                    {"l": lapas},
                )
            ).all()
    finally:
        await engine.dispose()
    figures = dict.fromkeys(EXPECTED_LINES, 0)
    orders = set()
    for r in rows:
        if not start <= r.effective_at < end:
            continue
        orders.add(r.order_key)
        for key, (prefix, side) in EXPECTED_LINES.items():
            if r.account.startswith(prefix):
                figures[key] += r.amount if r.side == side else -r.amount
    return figures, orders


async def _head_hash(database: RoleUrls) -> str:
    engine = make_engine(database.service, pool_size=1)
    try:
        async with engine.connect() as conn:
            return str((await conn.execute(text("SELECT hash FROM ledger.chain_head"))).scalar_one())
    finally:
        await engine.dispose()


async def _client(ws: Workspace, role: str, lapas: str | None = None) -> tuple[httpx.AsyncClient, str]:
    user, password = await ws.account(role, lapas)
    return await ws.signed_in(user, password), user.name


def _pdf_text(body: bytes) -> str:
    """The PDF's text without whitespace (the stamp wraps the 64-character hash)."""
    return "".join("".join(p.extract_text() for p in PdfReader(io.BytesIO(body)).pages).split())


async def test_the_monthly_report_equals_the_journal_in_every_format(
    posted: Posted, ws: Workspace, database: RoleUrls
) -> None:
    client, name = await _client(ws, "auditor_lapas", LAPAS_A)
    start, end = datetime(2026, 8, 1, tzinfo=WIB), datetime(2026, 9, 1, tzinfo=WIB)
    expected, orders = await _journal(database, LAPAS_A, start, end)
    assert posted.inside in orders and posted.outside not in orders, "the month is bounded in WIB"
    assert expected["sales"] >= 150_000 and expected["premi"] > 0 and expected["suppliers"] >= 30_000
    assert (expected["ppn_output"], expected["ppn_input"]) == (1_500, 1_000)
    assert (expected["pph22_expense"], expected["pph22_reclaimable"]) == (300, 200)
    url = f"/reports/lapas/{LAPAS_A}/{AUGUST}"
    base = f"http://localhost{url}"

    page = await client.get(url)
    assert page.status_code == 200, page.text
    for key, amount in expected.items():
        assert f'id="rep-{key}">{rupiah(amount)}<' in page.text

    csv_body = (await client.get(base, params={"format": "csv"})).content
    assert csv_body.decode("utf-8-sig").startswith("Pos laporan,Kode,Jumlah"), "headers are words, not keys"
    rows = rows_of(csv_body, "csv", REPORT_COLUMNS)
    assert {r["key"]: int(r["amount"]) for r in rows} == expected

    xlsx = await client.get(base, params={"format": "xlsx"})
    sheet = load_workbook(io.BytesIO(xlsx.content)).active
    assert sheet is not None
    assert {str(r[1]): r[2] for r in sheet.iter_rows(min_row=2, values_only=True)} == expected

    head = await _head_hash(database)
    pdf = await client.get(base, params={"format": "pdf"})
    assert pdf.headers["content-type"] == "application/pdf"
    found = _pdf_text(pdf.content)
    assert head in found and name in found
    assert all("".join(rupiah(amount).split()) in found for amount in expected.values())

    async with ws.db.begin() as uow:
        exported = {r.subject for r in await audit.recent(uow, actor=name) if r.action == "export"}
    assert exported == {f"lapas_report_{LAPAS_A}_{AUGUST}.{f}" for f in ("csv", "xlsx", "pdf")}


async def test_an_auditor_of_lapas_a_gets_404_for_lapas_bs_report_and_inmate(posted: Posted, ws: Workspace) -> None:
    client, name = await _client(ws, "auditor_lapas", LAPAS_A)

    for fmt in ("html", "csv", "xlsx", "pdf"):
        response = await client.get(f"/reports/lapas/{LAPAS_B}/2026-05", params={"format": fmt})
        assert response.status_code == 404 and 'id="missing"' in response.text, fmt
        assert 'id="report"' not in response.text and "content-disposition" not in response.headers
    assert (await client.get(f"/inmates/{posted.two.inmate_b}/statement.pdf")).status_code == 404
    for month in ("2026-13", "0000-01", "9999-12"):  # no such month; outside the years the ledger holds
        assert (await client.get(f"/reports/lapas/{LAPAS_A}/{month}")).status_code == 422, month
    async with ws.db.begin() as uow:
        assert [r for r in await audit.recent(uow, actor=name) if r.action == "export"] == []
    pusat, _ = await _client(ws, "auditor_pusat")
    assert (await pusat.get(f"/reports/lapas/{LAPAS_B}/2026-05")).status_code == 200


async def test_the_inmate_statement_pdf_and_the_dashboard_carry_the_head_hash(
    posted: Posted, ws: Workspace, database: RoleUrls
) -> None:
    client, name = await _client(ws, "auditor_lapas", LAPAS_A)
    inmate = posted.two.inmate_a
    statement = (await client.get(f"/api/v1/inmates/{inmate}/statement")).json()
    head = await _head_hash(database)

    pdf = await client.get(f"/inmates/{inmate}/statement.pdf")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    found = _pdf_text(pdf.content)
    assert head in found and inmate in found and name in found
    assert "".join(rupiah(statement["closing_balance"]).split()) in found
    assert f'href="/inmates/{inmate}/statement.pdf"' in (await client.get(f"/inmates/{inmate}")).text
    dashboard = await client.get("/dashboard")
    assert f'<code id="chain-head-hash">{head}</code>' in dashboard.text
    assert f'id="lapas-report" href="/reports/lapas/{LAPAS_A}/' in dashboard.text
    report = (await client.get(f"/reports/lapas/{LAPAS_A}/2026-01")).text
    assert f'href="/reports/lapas/{LAPAS_A}/2025-12"' in report and f'href="/reports/lapas/{LAPAS_A}/2026-02"' in report
