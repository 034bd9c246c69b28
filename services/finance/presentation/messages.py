"""The workspace's words in Bahasa Indonesia (the default) and English: one dictionary per language, no build step.

A key missing from a language falls back to Bahasa Indonesia; a key missing from both is a programming error
(``KeyError``), caught by the test that every key exists in both.
"""

from __future__ import annotations

from typing import Literal

Lang = Literal["id", "en"]
LANGS: tuple[Lang, ...] = ("id", "en")
DEFAULT_LANG: Lang = "id"

MONTHS: dict[Lang, tuple[str, ...]] = {
    "id": (
        "Januari", "Februari", "Maret", "April", "Mei", "Juni",
        "Juli", "Agustus", "September", "Oktober", "November", "Desember",
    ),
    "en": (
        "January", "February", "March", "April", "May", "June",
        "July", "August", "September", "October", "November", "December",
    ),
}  # fmt: skip

CATALOGUE: dict[Lang, dict[str, str]] = {
    "id": {
        "debit_short": "D",
        "credit_short": "K",
        "debit": "Debet",
        "credit": "Kredit",
        "balance": "Saldo",
        "amount": "Jumlah",
        "date": "Tanggal",
        "time": "Waktu",
        "account": "Akun",
        "order": "Pesanan",
        "batch": "Batch produksi",
        "kind": "Jenis",
        "policy": "Kebijakan",
        "sequence": "No. jurnal",
        "inmate_statement": "Rekening Tabungan Premi WBP",
        "lapas_report": "Laporan Bulanan Lapas",
        "inmate": "WBP",
        "savings_balance": "Saldo tabungan",
        "receivable_balance": "Piutang WBP",
        "period": "Periode",
        "sales": "Penjualan",
        "fees": "Biaya marketplace",
        "tax_withheld": "PPh 22 dipotong",
        "pnbp": "PNBP",
        "premi": "Premi",
        "suppliers": "Pemasok",
        "capital": "Modal produksi",
        "total": "Jumlah total",
        "stamp": "Dicetak oleh {user} pada {time}; hash kepala rantai {head_hash}",
        "no_rows": "Tidak ada data",
        "workshop": "Bengkel kerja",
        "product": "Produk",
        "produced_qty": "Jumlah diproduksi",
        "production_date": "Tanggal produksi",
        "unit_material_cost": "Biaya bahan per unit",
        "supplier": "Pemasok",
        "work_group": "Kelompok kerja",
        "work_share": "Bagian kerja",
        "batch_entries": "Entri jurnal batch ini",
        "settlements": "Penyelesaian dana (settlement)",
        "settlement_id": "ID settlement",
        "marketplace_settlement_id": "ID settlement marketplace",
        "gross": "Bruto",
        "net_payout": "Dana diterima (neto)",
        "delivery": "Webhook",
        "received_at": "Diterima",
        "body_redacted": "Isi (data pribadi pembeli disamarkan)",
    },
    "en": {
        "debit_short": "Dr",
        "credit_short": "Cr",
        "debit": "Debit",
        "credit": "Credit",
        "balance": "Balance",
        "amount": "Amount",
        "date": "Date",
        "time": "Time",
        "account": "Account",
        "order": "Order",
        "batch": "Production batch",
        "kind": "Kind",
        "policy": "Policy",
        "sequence": "Entry no.",
        "inmate_statement": "Inmate Premi Savings Statement",
        "lapas_report": "Monthly Lapas Report",
        "inmate": "Inmate",
        "savings_balance": "Savings balance",
        "receivable_balance": "Inmate receivable",
        "period": "Period",
        "sales": "Sales",
        "fees": "Marketplace fees",
        "tax_withheld": "PPh 22 withheld",
        "pnbp": "PNBP",
        "premi": "Premi",
        "suppliers": "Suppliers",
        "capital": "Production capital",
        "total": "Total",
        "stamp": "Made by {user} at {time}; chain head hash {head_hash}",
        "no_rows": "No rows",
        "workshop": "Workshop",
        "product": "Product",
        "produced_qty": "Quantity produced",
        "production_date": "Production date",
        "unit_material_cost": "Material cost per unit",
        "supplier": "Supplier",
        "work_group": "Work group",
        "work_share": "Work share",
        "batch_entries": "Journal entries of this batch",
        "settlements": "Settlements",
        "settlement_id": "Settlement id",
        "marketplace_settlement_id": "Marketplace settlement id",
        "gross": "Gross",
        "net_payout": "Net payout",
        "delivery": "Webhook",
        "received_at": "Received",
        "body_redacted": "Body (buyer personal data redacted)",
    },
}


def lang_of(value: str | None) -> Lang:
    """A language from a query parameter, cookie or header value: ``en`` (or ``en-…``) is English, else Indonesian."""
    return "en" if value is not None and value.strip().lower()[:2] == "en" else DEFAULT_LANG


def message(key: str, lang: Lang = DEFAULT_LANG, **values: object) -> str:
    """The text of ``key`` in ``lang`` (Bahasa Indonesia when that language lacks it), ``values`` filled in."""
    text = CATALOGUE[lang].get(key) or CATALOGUE[DEFAULT_LANG][key]
    return text.format(**values) if values else text
