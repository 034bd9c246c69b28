"""Importing a Bukalapak seller-centre export: canonical events marked historical, through the gateway outbox.

Each invoice (in each status) becomes an ``order_status_changed`` with ``historical=true``, its lines and the
product total; a ``remitted`` invoice also becomes a ``settlement_reported`` (fees = Potongan/Biaya, PPh 22 =
Pajak, payout = Dana Diterima, settled at Tanggal, the invoice number as the PPh 22 withholding slip reference).
Emission keys are (invoice, status) and (invoice, settlement), so importing the same file again publishes nothing
new. Everything is written in one transaction; the running gateway's outbox relay publishes it. The format is in
:mod:`services.gateway.bukalapak_csv`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from infra.db.unit_of_work import Database
from services.contracts.base import order_key
from services.contracts.marketplace import OrderStatusChanged, SettlementFee, SettlementReported
from services.gateway.bukalapak_csv import Invoice, parse_export
from services.gateway.canonical import polled_status_key
from services.gateway.emit import Emission, GatewayTopics, SettlementEmission, StatusEmission, emit

CHANNEL = "bukalapak"


@dataclass(frozen=True, slots=True)
class ImportReport:
    """What an import did."""

    file: str
    invoices: int
    events: int
    published: int

    @property
    def already_imported(self) -> int:
        """Events skipped because an earlier import published them."""
        return self.events - self.published


def invoice_emissions(invoice: Invoice, shop_id: str) -> list[Emission]:
    """The canonical events of one invoice (pure)."""
    key = order_key(CHANNEL, shop_id, invoice.invoice)
    status = OrderStatusChanged(
        order_key=key,
        channel=CHANNEL,
        shop_id=shop_id,
        order_id=invoice.invoice,
        raw_status=invoice.status,
        update_time=invoice.at,
        lines=list(invoice.lines),
        gross_amount=invoice.total,
        historical=True,
    )
    emissions: list[Emission] = [
        StatusEmission(
            status,
            invoice.state,
            invoice.completion,
            key=polled_status_key(CHANNEL, shop_id, invoice.invoice, invoice.status),
        )
    ]
    if invoice.completion and invoice.payout is not None:
        fees = [SettlementFee(fee_type="marketplace_fee", amount=invoice.fees)] if invoice.fees else []
        emissions.append(
            SettlementEmission(
                SettlementReported(
                    order_key=key,
                    channel=CHANNEL,
                    settlement_id=f"{CHANNEL}:{invoice.invoice}",
                    gross_amount=invoice.total,
                    fees=fees,
                    pph22_withheld=invoice.tax,
                    net_payout=invoice.payout,
                    settled_at=invoice.at,
                    historical=True,
                    invoice_number=invoice.invoice,  # the marketplace invoice is the PPh 22 withholding slip
                )
            )
        )
    return emissions


def export_emissions(invoices: list[Invoice], shop_id: str) -> list[Emission]:
    """Every event of an export, in file order."""
    if not shop_id or ":" in shop_id:
        raise ValueError(f"invalid Bukalapak shop id {shop_id!r}")
    return [e for invoice in invoices for e in invoice_emissions(invoice, shop_id)]


async def import_export(
    db: Database,
    path: Path,
    shop_id: str,
    topics: GatewayTopics,
    *,
    dry_run: bool = False,
) -> ImportReport:
    """Validate ``path`` and publish its events through the outbox of ``db`` (the gateway's) (nothing when ``dry_run``).

    Raises:
        BukalapakCsvError: the file is invalid (each problem named by file, row and column); nothing written.
    """
    content = await asyncio.to_thread(path.read_text, encoding="utf-8-sig")
    invoices = parse_export(content, str(path))
    emissions = export_emissions(invoices, shop_id)
    if dry_run:
        return ImportReport(str(path), len(invoices), len(emissions), 0)
    async with db.begin() as uow:
        published = await emit(uow, emissions, topics)
    return ImportReport(str(path), len(invoices), len(emissions), len(published))
