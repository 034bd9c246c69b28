"""Bukalapak export: parsing, validation naming file/row/column, and the historical events it yields."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from services.gateway.bukalapak_csv import BukalapakCsvError, parse_export, parse_rupiah
from services.gateway.bukalapak_import import export_emissions
from services.gateway.emit import SettlementEmission, StatusEmission

HEADER = (
    "Invoice,Tanggal,Status,ID Produk,Nama Produk,SKU,Jumlah,Harga Satuan,Total,Ongkir,Potongan/Biaya,"
    "Pajak,Dana Diterima"
)
GOOD = "\n".join(
    [
        HEADER,
        "BL2411030001,2024-11-03 14:22:05,remitted,a49b568,Sarung tangan,CPN-GLV-001,2,25000,75000,9000,3000,375,71625",
        "BL2411030001,2024-11-03 14:22:05,remitted,8bbw9gy,Batok kelapa,CPN-CCN-001,1,25000,75000,9000,3000,375,71625",
        'BL2411040002,04/11/2024 09:00,Dibatalkan,,Meja,CPN-WDW-002,1,"Rp 150.000",150000,0,0,0,',
    ]
)


def test_a_valid_export_groups_lines_by_invoice() -> None:
    first, second = parse_export(GOOD, "export.csv")
    assert (first.invoice, first.status, first.total, first.fees, first.tax, first.payout) == (
        "BL2411030001",
        "remitted",
        75000,
        3000,
        375,
        71625,
    )
    assert first.at == datetime(2024, 11, 3, 14, 22, 5, tzinfo=timezone(timedelta(hours=7)))
    assert [(ln.channel_product_id, ln.quantity, ln.unit_price) for ln in first.lines] == [
        ("a49b568", 2, 25000),
        ("8bbw9gy", 1, 25000),
    ]
    assert (second.status, second.payout, second.lines[0].channel_product_id) == (
        "cancelled",
        None,
        "CPN-WDW-002",
    )
    assert second.lines[0].unit_price == 150000  # "Rp 150.000" in Indonesian grouping


def test_semicolon_separated_with_bom_is_accepted() -> None:
    text = "\ufeff" + GOOD.replace(",", ";").replace('"Rp 150.000"', "Rp 150.000")
    assert len(parse_export(text, "export.csv")) == 2


def test_events_are_historical_with_a_settlement_for_remitted_invoices() -> None:
    emissions = export_emissions(parse_export(GOOD, "export.csv"), "69352317")
    assert [type(e) for e in emissions] == [StatusEmission, SettlementEmission, StatusEmission]
    status, settlement, cancelled = emissions
    assert isinstance(status, StatusEmission) and isinstance(settlement, SettlementEmission)
    assert status.event.order_key == "bukalapak:69352317:BL2411030001"
    assert status.event.historical and status.event.gross_amount == 75000 and status.completion
    assert status.emission_key == "status|bukalapak:69352317:BL2411030001|REMITTED"
    s = settlement.event
    assert (s.historical, s.gross_amount, s.pph22_withheld, s.net_payout) == (True, 75000, 375, 71625)
    assert [(f.fee_type, f.amount) for f in s.fees] == [("marketplace_fee", 3000)]
    assert s.invoice_number == "BL2411030001"  # the PPh 22 withholding slip reference
    assert isinstance(cancelled, StatusEmission) and cancelled.state == "cancelled"
    # Deterministic keys: importing the same file again maps to the same emission keys.
    again = export_emissions(parse_export(GOOD, "export.csv"), "69352317")
    assert [e.emission_key for e in again] == [e.emission_key for e in emissions]


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("25000", 25000),
        ("25.000", 25000),
        ("Rp 25.000", 25000),
        ("25000,00", 25000),
        ("25000.0", 25000),
        ("1.250.000", 1250000),
        ("0", 0),
    ],
)
def test_rupiah_formats(raw: str, value: int) -> None:
    assert parse_rupiah(raw) == value


@pytest.mark.parametrize("raw", ["25000,5", "150000.5", "-100", "abc", "", "1.5"])
def test_rupiah_refusals(raw: str) -> None:
    with pytest.raises(ValueError):
        parse_rupiah(raw)


def issues_of(text: str) -> list[str]:
    with pytest.raises(BukalapakCsvError) as info:
        parse_export(text, "hist.csv")
    return [str(i) for i in info.value.issues]


def test_missing_columns_are_named() -> None:
    issues = issues_of("Invoice,Tanggal,Status\nBL1,2024-11-03,paid")
    assert "hist.csv, row 1, column Total: column missing from the header" in issues
    assert any("column Harga Satuan" in i for i in issues)


def test_every_problem_is_reported_with_file_row_and_column() -> None:
    rows = [
        HEADER,
        "BL1,2024-11-03,remitted,p1,X,S1,2,25000.5,50000,0,0,0,50000",  # half rupiah price
        "BL2,2024-13-45,paid,p1,X,S1,1,1000,1000,0,0,0,",  # bad date
        "BL3,2024-11-03,teleported,p1,X,S1,1,1000,1000,0,0,0,",  # unknown status
        "BL4,2024-11-03,paid,p1,X,S1,0,1000,1000,0,0,0,",  # zero quantity
        "BL5,2024-11-03,paid,p1,X,S1,2,1000,3000,0,0,0,",  # total is not the lines' sum
        "BL6,2024-11-03,remitted,p1,X,S1,1,1000,1000,0,100,5,900",  # payout is not total - fees - tax
        "BL7,2024-11-03,paid,p1,X,S1,1,1000,1000,0,0,0,",
        "BL7,2024-11-04,paid,p2,Y,S2,1,1000,1000,0,0,0,",  # invoice-level column disagrees
        "BL8,2024-11-03,remitted,p1,X,S1,1,1000,1000,0,0,0,",  # remitted without payout
        "BL:9,2024-11-03,paid,p1,X,S1,1,1000,1000,0,0,0,",  # colon in invoice
        "BL10,2024-11-03,paid,,X,,1,1000,1000,0,0,0,",  # no product id and no SKU
    ]
    issues = issues_of("\n".join(rows))
    expected = [
        ("row 2, column Harga Satuan", "not a whole number of rupiah"),
        ("row 3, column Tanggal", "is not a date"),
        ("row 4, column Status", "unknown Bukalapak status 'teleported'"),
        ("row 5, column Jumlah", "not a positive quantity"),
        ("row 6, column Total", "not the sum"),
        ("row 7, column Dana Diterima", "= 895"),
        ("row 9, column Tanggal", "differs from '2024-11-03' on row 8"),
        ("row 10, column Dana Diterima", "needs the payout"),
        ("row 11, column Invoice", "invalid invoice number"),
        ("row 12, column SKU", "needs an ID Produk or a SKU"),
    ]
    for where, what in expected:
        assert any(i.startswith(f"hist.csv, {where}") and what in i for i in issues), (where, what, issues)


def test_an_empty_export_is_refused() -> None:
    assert issues_of(HEADER + "\n") == ["hist.csv, row 1, column Invoice: the export has no order rows"]
