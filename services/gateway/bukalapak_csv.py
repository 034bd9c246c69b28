"""Bukalapak seller-centre CSV export of past orders: format and validation (pure).

Bukalapak closed physical-goods sales in 2025; its history is imported so that old revenue stays auditable.
One row per order line; an invoice with three products has three rows. Columns (header names as exported,
matched ignoring case and surrounding spaces; ``,`` or ``;`` separated, UTF-8 with or without BOM):

==============  =========  ==================================================================================
column          level      meaning
==============  =========  ==================================================================================
Invoice         invoice    invoice number, e.g. ``BL24110312345`` (the order id; no ``:``)
Tanggal         invoice    date of the status, ``YYYY-MM-DD[ HH:MM[:SS]]`` or ``DD/MM/YYYY[ HH:MM[:SS]]``,
                           WIB (UTC+7) unless an offset is given
Status          invoice    transaction state: ``pending``, ``paid``, ``accepted``, ``delivered``,
                           ``received``, ``remitted``, ``rejected``, ``expired``, ``cancelled``,
                           ``refunded`` (or the labels ``Menunggu Pembayaran``, ``Dibayar``, ``Diproses``,
                           ``Dikirim``, ``Diterima``, ``Dana Dicairkan``/``Selesai``, ``Ditolak``,
                           ``Kedaluwarsa``, ``Dibatalkan``, ``Dikembalikan``)
ID Produk       line       Bukalapak product id = the listing's channel product id (optional column)
Nama Produk     line       product name (informational)
SKU             line       seller SKU; used as the channel product id when ID Produk is empty
Jumlah          line       quantity, a positive whole number
Harga Satuan    line       unit price, whole rupiah
Total           invoice    product total = sum of Jumlah × Harga Satuan
Ongkir          invoice    shipping paid by the buyer (passed to the courier; not revenue)
Potongan/Biaya  invoice    marketplace fees deducted
Pajak           invoice    PPh 22 withheld
Dana Diterima   invoice    payout to the seller = Total − Potongan/Biaya − Pajak (empty unless remitted)
==============  =========  ==================================================================================

Amounts are whole rupiah: ``25000``, ``25.000`` (Indonesian grouping), ``Rp 25.000``, ``25000,00`` or
``25000.0`` are 25000; ``25000,5`` is refused. Invoice-level columns repeat on every row of the invoice and
must agree. Every problem is reported with file, row (the line in the file) and column.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation

from services.contracts.marketplace import OrderLine
from services.gateway.canonical import UnmappableStatus, Verdict, classify

WIB = timezone(timedelta(hours=7), "WIB")
INVOICE_COLUMNS = ("Tanggal", "Status", "Total", "Ongkir", "Potongan/Biaya", "Pajak", "Dana Diterima")
LINE_COLUMNS = ("Nama Produk", "SKU", "Jumlah", "Harga Satuan")
REQUIRED_COLUMNS = ("Invoice", *INVOICE_COLUMNS, *LINE_COLUMNS)
OPTIONAL_COLUMNS = ("ID Produk",)
STATUS_LABELS: Mapping[str, str] = {
    "menunggu pembayaran": "pending",
    "dibayar": "paid",
    "diproses": "accepted",
    "dikirim": "delivered",
    "diterima": "received",
    "dana dicairkan": "remitted",
    "selesai": "remitted",
    "ditolak": "rejected",
    "kedaluwarsa": "expired",
    "dibatalkan": "cancelled",
    "dikembalikan": "refunded",
}
_GROUPED = re.compile(r"^-?\d{1,3}(\.\d{3})+(,\d+)?$")
_DECIMAL_COMMA = re.compile(r"^-?\d+,\d+$")
_DATE_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d", "%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M", "%d/%m/%Y")


@dataclass(frozen=True, slots=True)
class CsvIssue:
    """One problem in the file: where it is and what is wrong."""

    file: str
    row: int
    column: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}, row {self.row}, column {self.column}: {self.message}"


class BukalapakCsvError(ValueError):
    """The export is not valid; ``issues`` lists every problem found."""

    def __init__(self, issues: Sequence[CsvIssue]) -> None:
        self.issues = list(issues)
        shown = "\n".join(f"  {i}" for i in self.issues[:50])
        more = f"\n  … and {len(self.issues) - 50} more" if len(self.issues) > 50 else ""
        super().__init__(f"{len(self.issues)} problem(s) in the Bukalapak export:\n{shown}{more}")


@dataclass(frozen=True, slots=True)
class Invoice:
    """One invoice in one status, with its lines and money, validated."""

    invoice: str
    status: str
    at: datetime
    lines: tuple[OrderLine, ...]
    total: int
    shipping: int
    fees: int
    tax: int
    payout: int | None
    first_row: int
    completion: bool = False
    state: str = ""


def parse_rupiah(raw: str) -> int:
    """A whole-rupiah amount as written in the export (see the module docstring).

    Raises:
        ValueError: not a number, negative, or not a whole number of rupiah.
    """
    text = raw.strip().removeprefix("Rp").removeprefix("rp").strip().replace(" ", "")
    if _GROUPED.match(text):
        text = text.replace(".", "").replace(",", ".")
    elif _DECIMAL_COMMA.match(text):
        text = text.replace(",", ".")
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{raw!r} is not an amount") from None
    if not value.is_finite():
        raise ValueError(f"{raw!r} is not an amount")
    if value != value.to_integral_value():
        raise ValueError(f"{raw!r} is not a whole number of rupiah")
    if value < 0:
        raise ValueError(f"{raw!r} is negative")
    return int(value)


def parse_time(raw: str) -> datetime:
    """A ``Tanggal`` value in UTC (read as WIB when no offset is written)."""
    text = raw.strip()
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=WIB).astimezone(UTC)
        except ValueError:
            continue
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{raw!r} is not a date (YYYY-MM-DD HH:MM:SS or DD/MM/YYYY HH:MM)") from None
    return (parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=WIB)).astimezone(UTC)


def status_code(raw: str) -> str:
    """The transaction state code of a ``Status`` value (code or Indonesian label)."""
    text = " ".join(raw.strip().lower().split())
    return STATUS_LABELS.get(text, text.replace(" ", "_"))


@dataclass
class _Group:
    invoice: str
    first_row: int
    invoice_values: dict[str, str]
    lines: list[OrderLine] = field(default_factory=list)


def _reader(text: str) -> csv.DictReader[str]:
    header = text.split("\n", 1)[0]
    delimiter = ";" if header.count(";") > header.count(",") else ","
    return csv.DictReader(io.StringIO(text), delimiter=delimiter)


def parse_export(text: str, file: str) -> list[Invoice]:
    """Validate a whole export and return its invoices (one per invoice and status), in file order.

    Raises:
        BukalapakCsvError: listing every problem with file, row and column.
    """
    reader = _reader(text.removeprefix("\ufeff"))
    columns = {(name or "").strip().lower(): name for name in reader.fieldnames or []}
    missing = [c for c in REQUIRED_COLUMNS if c.lower() not in columns]
    if missing:
        raise BukalapakCsvError([CsvIssue(file, 1, c, "column missing from the header") for c in missing])
    issues: list[CsvIssue] = []
    groups: dict[tuple[str, str], _Group] = {}
    row_no = 1
    for record in reader:
        row_no = reader.line_num
        values = {c: (record.get(columns[c.lower()]) or "").strip() for c in REQUIRED_COLUMNS}
        for optional in OPTIONAL_COLUMNS:
            values[optional] = (record.get(columns.get(optional.lower(), "")) or "").strip()
        if not any(values.values()):
            continue
        _row(file, row_no, values, groups, issues)
    invoices = [inv for g in groups.values() if (inv := _invoice(file, g, issues)) is not None]
    if issues:
        raise BukalapakCsvError(issues)
    if not invoices:
        raise BukalapakCsvError([CsvIssue(file, row_no, "Invoice", "the export has no order rows")])
    return invoices


def _row(
    file: str, row: int, values: dict[str, str], groups: dict[tuple[str, str], _Group], issues: list[CsvIssue]
) -> None:
    def bad(column: str, message: str) -> None:
        issues.append(CsvIssue(file, row, column, message))

    invoice = values["Invoice"]
    if not invoice or ":" in invoice:
        bad("Invoice", f"invalid invoice number {invoice!r}")
        return
    key = (invoice, status_code(values["Status"]))
    group = groups.get(key)
    if group is None:
        group = groups[key] = _Group(invoice, row, {c: values[c] for c in INVOICE_COLUMNS})
    else:
        for column in INVOICE_COLUMNS:
            if values[column] != group.invoice_values[column]:
                bad(
                    column,
                    f"{values[column]!r} differs from {group.invoice_values[column]!r} "
                    f"on row {group.first_row} of invoice {invoice}",
                )
    product = values["ID Produk"] or values["SKU"]
    if not product:
        bad("SKU", "a line needs an ID Produk or a SKU")
    try:
        quantity = int(parse_rupiah(values["Jumlah"]))
        if quantity <= 0:
            raise ValueError(f"{values['Jumlah']!r} is not a positive quantity")
    except ValueError as exc:
        bad("Jumlah", str(exc))
        return
    try:
        price = parse_rupiah(values["Harga Satuan"])
    except ValueError as exc:
        bad("Harga Satuan", str(exc))
        return
    if product:
        group.lines.append(OrderLine(channel_product_id=product, quantity=quantity, unit_price=price))


def _invoice(file: str, group: _Group, issues: list[CsvIssue]) -> Invoice | None:
    row, v = group.first_row, group.invoice_values
    before = len(issues)

    def amount(column: str, *, optional: bool = False) -> int | None:
        if optional and not v[column]:
            return None
        try:
            return parse_rupiah(v[column] or "0")
        except ValueError as exc:
            issues.append(CsvIssue(file, row, column, str(exc)))
            return None

    at: datetime | None = None
    verdict: Verdict | None = None
    try:
        at = parse_time(v["Tanggal"])
    except ValueError as exc:
        issues.append(CsvIssue(file, row, "Tanggal", str(exc)))
    code = status_code(v["Status"])
    try:
        verdict = classify("bukalapak", code)
    except UnmappableStatus:
        issues.append(CsvIssue(file, row, "Status", f"unknown Bukalapak status {v['Status']!r}"))
    total, shipping, fees, tax = amount("Total"), amount("Ongkir"), amount("Potongan/Biaya"), amount("Pajak")
    payout = amount("Dana Diterima", optional=True)
    if at is None or verdict is None or total is None or fees is None or tax is None or shipping is None:
        return None
    lines_total = sum(line.quantity * line.unit_price for line in group.lines)
    if group.lines and total != lines_total:
        issues.append(
            CsvIssue(
                file,
                row,
                "Total",
                f"{total} is not the sum of Jumlah × Harga Satuan ({lines_total}) of invoice {group.invoice}",
            )
        )
    if verdict.completion and payout is None:
        issues.append(CsvIssue(file, row, "Dana Diterima", f"a {code} invoice needs the payout"))
    if payout is not None and payout != total - fees - tax:
        issues.append(
            CsvIssue(
                file, row, "Dana Diterima", f"{payout} is not Total − Potongan/Biaya − Pajak = {total - fees - tax}"
            )
        )
    if len(issues) > before:
        return None
    return Invoice(
        group.invoice,
        code,
        at,
        tuple(group.lines),
        total,
        shipping,
        fees,
        tax,
        payout,
        row,
        verdict.completion,
        verdict.state.value,
    )
