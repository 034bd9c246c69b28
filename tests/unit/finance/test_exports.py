"""Exports read back: the CSV through the csv module, the XLSX through openpyxl (integer cells, no floats), the PDF
through pypdf (its text has the numbers and the stamp)."""

from __future__ import annotations

import csv
import importlib
import io
import pkgutil
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jinja2 import Environment
from openpyxl import load_workbook
from pypdf import PdfReader

from services.finance import web
from services.finance.presentation import FILTERS
from services.finance.presentation.pdf import LapasMonthReport, Stamp, inmate_statement_pdf, lapas_report_pdf
from services.presentation.exports import (
    MEDIA_TYPES,
    RUPIAH_FORMAT,
    Column,
    download_headers,
    to_csv,
    to_xlsx,
)
from services.presentation.messages import CATALOGUE

WITA = ZoneInfo("Asia/Makassar")
COLUMNS = [
    Column("sequence", "sequence", "int"),
    Column("effective_at", "time", "datetime"),
    Column("account", "account"),
    Column("amount", "amount", "rupiah"),
]
ROWS: list[dict[str, Any]] = [
    {"sequence": 1, "effective_at": datetime(2026, 12, 1, 16, 30, tzinfo=UTC), "account": "asset:bank:main",
     "amount": 1_234_567},
    {"sequence": 2, "effective_at": datetime(2026, 12, 2, 1, 0, tzinfo=UTC), "account": "liability:savings:WBP-A1",
     "amount": -25},
]  # fmt: skip
STAMP = Stamp("bendahara.cipinang", datetime(2026, 12, 2, 9, 0, tzinfo=UTC), "f" * 64)


def test_csv_has_a_header_in_the_language_and_exact_integers() -> None:
    data = to_csv(COLUMNS, ROWS, zone=WITA)
    assert data.startswith(b"\xef\xbb\xbf")
    table = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert table[0] == ["No. jurnal", "Waktu (WITA)", "Akun", "Jumlah"]
    assert table[1] == ["1", "2026-12-02T00:30:00+08:00", "asset:bank:main", "1234567"]
    assert table[2][3] == "-25"
    english = list(csv.reader(io.StringIO(to_csv(COLUMNS, [], lang="en").decode("utf-8-sig"))))
    assert english == [["Entry no.", "Time (UTC)", "Account", "Amount"]]


def test_xlsx_keeps_rupiah_as_integer_cells_with_a_number_format() -> None:
    book = load_workbook(io.BytesIO(to_xlsx(COLUMNS, ROWS, title="Jurnal", zone=WITA)))
    sheet = book["Jurnal"]
    assert [c.value for c in sheet[1]] == ["No. jurnal", "Waktu (WITA)", "Akun", "Jumlah"]
    amount = sheet["D2"]
    assert amount.value == 1_234_567 and type(amount.value) is int
    assert amount.number_format == RUPIAH_FORMAT
    assert sheet["D3"].value == -25
    assert sheet["B2"].value == datetime(2026, 12, 2, 0, 30)  # local WITA time; the header names the zone


def test_floats_and_naive_times_are_refused() -> None:
    with pytest.raises(TypeError, match="whole numbers"):
        to_csv(COLUMNS, [{**ROWS[0], "amount": 1.5}])
    with pytest.raises(TypeError, match="aware"):
        to_xlsx(COLUMNS, [{**ROWS[0], "effective_at": datetime(2026, 1, 1)}])


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(min_value=-(10**15), max_value=10**15), max_size=8))
def test_any_amounts_read_back_equal_from_csv_and_xlsx(amounts: list[int]) -> None:
    columns = [Column("amount", "amount", "rupiah")]
    rows = [{"amount": a} for a in amounts]
    from_csv = [int(r[0]) for r in list(csv.reader(io.StringIO(to_csv(columns, rows).decode("utf-8-sig"))))[1:]]
    sheet = load_workbook(io.BytesIO(to_xlsx(columns, rows))).active
    assert sheet is not None
    from_xlsx = [row[0] for row in sheet.iter_rows(min_row=2, values_only=True)]
    assert from_csv == amounts
    assert from_xlsx == amounts
    assert all(type(v) is int for v in from_xlsx)


def _text(pdf: bytes) -> str:
    assert pdf.startswith(b"%PDF-")
    return " ".join((page.extract_text() or "") for page in PdfReader(io.BytesIO(pdf)).pages).replace("\n", " ")


def test_inmate_statement_pdf_has_every_posting_the_balances_and_the_stamp() -> None:
    statement = {
        "inmate_id": "WBP-A1B2C3",
        "savings_balance": 1_500_250,
        "receivable_balance": 0,
        "postings": [
            {"sequence": 7, "effective_at": datetime(2026, 11, 30, 17, 0, tzinfo=UTC), "kind": "distribution",
             "order_key": "shopee:1:ORD-9", "batch_id": "B-1", "policy_ref": "cipinang@3", "amount": 1_500_250},
        ],
    }  # fmt: skip
    text = _text(inmate_statement_pdf(statement, STAMP, ZoneInfo("Asia/Jakarta")))
    assert "WBP-A1B2C3" in text
    assert "shopee:1:ORD-9" in text.replace(" ", "")  # a narrow cell may wrap the key
    assert "1 Desember 2026 00.00 WIB" in text
    assert text.count("Rp 1.500.250") == 2  # the posting and the balance
    assert "Dicetak oleh bendahara.cipinang pada 2 Desember 2026 16.00.00 WIB" in text
    assert "f" * 64 in text.replace(" ", "")


def test_lapas_report_pdf_in_english() -> None:
    report = LapasMonthReport(
        "kerobokan", "Lapas Kerobokan", date(2026, 11, 1), [("sales", 10_000_000), ("fees", -350_000), ("pnbp", 0)]
    )
    text = _text(lapas_report_pdf(report, STAMP, WITA, "en"))
    assert "Monthly Lapas Report" in text and "November 2026" in text
    assert "Sales Rp 10.000.000" in text and "Marketplace fees -Rp 350.000" in text and "PNBP Rp 0" in text
    assert "Made by bendahara.cipinang at 2 December 2026 17:00:00 WITA" in text


def test_download_headers_name_the_file_and_keep_the_header_clean() -> None:
    headers = download_headers('laporan "cipinang"\r\nSet-Cookie: x=1', "xlsx")
    assert headers["Content-Type"] == MEDIA_TYPES["xlsx"]
    assert headers["Content-Disposition"] == 'attachment; filename="laporan__cipinang___Set-Cookie__x_1.xlsx"'
    assert download_headers("", "pdf")["Content-Disposition"] == 'attachment; filename="export.pdf"'


def test_page_filters_format_in_a_template() -> None:
    env = Environment(autoescape=True)
    env.filters.update(FILTERS)
    page = env.from_string(
        "{{ 'balance' | t(lang) }}: {{ b | rupiah_side('C', lang) }} · "
        "{{ at | in_zone(zone, lang) }} · {{ n | rupiah }}"
    )
    rendered = page.render(lang="en", b=-1_500, at=datetime(2026, 12, 1, 16, 0, tzinfo=UTC), zone=WITA, n=7_000)
    assert rendered == "Balance: Rp 1.500 Dr · 2 December 2026 00:00 WITA · Rp 7.000"


def _columns(value: object) -> list[Column]:
    if isinstance(value, Column):
        return [value]
    if isinstance(value, tuple | list):
        return [c for v in value for c in _columns(v)]
    if isinstance(value, dict):
        return [c for v in value.values() for c in _columns(v)]
    return []


def test_every_export_header_is_a_word_in_both_languages_not_a_raw_key() -> None:
    """The columns the pages export (module-level tables of services.finance.web) have headers in the catalogue,
    different in Indonesian and English where the words differ: ``posting_key`` never reaches a spreadsheet."""
    found = {
        c.header: f"{module.name}.{name}"
        for module in pkgutil.iter_modules(web.__path__)
        for name, value in vars(importlib.import_module(f"{web.__name__}.{module.name}")).items()
        for c in _columns(value)
    }
    assert {"posting_key", "memo", "recorded_at", "head_hash", "proposed_by"} <= set(found), found
    zone = ZoneInfo("Asia/Jakarta")
    for header, where in found.items():
        assert header in CATALOGUE["id"] and header in CATALOGUE["en"], f"{header!r} of {where}"
        assert "_" not in Column("x", header).title("id", zone), where
    assert Column("posting_key", "posting_key").title("en", zone) == "Posting key"
