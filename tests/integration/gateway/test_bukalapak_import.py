"""Bukalapak history import against the real database: historical events, once, however often it is run."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from typer.testing import CliRunner

from infra.cli_root import CliRoot
from infra.db.engine import make_engine
from infra.db.roles import RoleUrls
from infra.db.unit_of_work import Database
from infra.settings import KafkaSettings
from services.gateway.app import SCHEMA
from services.gateway.bukalapak_csv import BukalapakCsvError
from services.gateway.bukalapak_import import import_export
from services.gateway.cli import import_app
from services.gateway.emit import GatewayTopics
from tests.contract_validation import validate_published
from tests.integration.gateway_support import outbox_events, scalar, uid
from tests.naming import topic_prefix

pytestmark = pytest.mark.integration
TOPICS = GatewayTopics.with_prefix(topic_prefix("gb"))
HEADER = (
    "Invoice;Tanggal;Status;ID Produk;Nama Produk;SKU;Jumlah;Harga Satuan;Total;Ongkir;Potongan/Biaya;"
    "Pajak;Dana Diterima"
)


@pytest.fixture
async def engine(database: RoleUrls) -> AsyncIterator[AsyncEngine]:
    e = make_engine(database.gateway, pool_size=2)
    yield e
    await e.dispose()


def _export(tmp_path: Path, invoice: str) -> Path:
    rows = [
        HEADER,
        f"{invoice}-1;03/11/2024 14:22;Dana Dicairkan;a49b568;Sarung tangan;CPN-GLV-001;2;Rp 25.000;"
        "50.000;9.000;2.500;250;47.250",
        f"{invoice}-1;03/11/2024 14:22;Dana Dicairkan;8bbw9gy;Batok kelapa;CPN-CCN-001;0;0;"
        "50.000;9.000;2.500;250;47.250",
        f"{invoice}-2;04/11/2024 09:00;Dibatalkan;bcgzj7t;Meja;CPN-WDW-002;1;150000;150000;0;0;0;",
    ]
    path = tmp_path / "bukalapak.csv"
    path.write_text("\n".join(rows), encoding="utf-8")
    return path


async def test_import_publishes_historical_events_once(engine: AsyncEngine, tmp_path: Path) -> None:
    invoice = f"BL{uid().upper()}"
    path = _export(tmp_path, invoice)
    with pytest.raises(BukalapakCsvError) as info:  # the zero-quantity line is refused, nothing written
        await import_export(Database(engine, SCHEMA), path, "69352317", TOPICS)
    assert "row 3, column Jumlah" in str(info.value)
    assert (
        await scalar(
            engine,
            "SELECT count(*) FROM gateway.emitted_events WHERE order_key LIKE :k",
            k=f"bukalapak:69352317:{invoice}%",
        )
        == 0
    )
    path.write_text("\n".join(line for i, line in enumerate(path.read_text().splitlines()) if i != 2))
    report = await import_export(Database(engine, SCHEMA), path, "69352317", TOPICS)
    assert (report.invoices, report.events, report.published) == (2, 3, 3)
    again = await import_export(Database(engine, SCHEMA), path, "69352317", TOPICS)
    assert (again.published, again.already_imported) == (0, 3)
    key = f"bukalapak:69352317:{invoice}-1"
    (status,) = await outbox_events(engine, TOPICS.order_events, key)
    (settlement,) = await outbox_events(engine, TOPICS.settlements, key)
    for envelope in (status, settlement):
        validate_published(json.dumps(envelope).encode())
        assert envelope["data"]["historical"] is True
    assert status["data"]["raw_status"] == "remitted" and status["data"]["gross_amount"] == 50000
    assert status["data"]["update_time"] == "2024-11-03T07:22:00Z"  # 14:22 WIB
    assert (settlement["data"]["net_payout"], settlement["data"]["pph22_withheld"]) == (47250, 250)
    cancelled = await outbox_events(engine, TOPICS.order_events, f"bukalapak:69352317:{invoice}-2")
    assert [e["data"]["raw_status"] for e in cancelled] == ["cancelled"]
    assert await outbox_events(engine, TOPICS.settlements, f"bukalapak:69352317:{invoice}-2") == []


def test_cli_names_file_row_and_column_and_dry_runs(tmp_path: Path, database: RoleUrls) -> None:
    root = CliRoot(KafkaSettings(), {"gateway": database.gateway})  # the command's root, built by the test
    path = _export(tmp_path, f"BL{uid().upper()}")
    runner = CliRunner()
    bad = runner.invoke(import_app, ["bukalapak", str(path), "--shop-id", "69352317", "--dry-run"], obj=root)
    assert bad.exit_code == 1
    assert f"{path}, row 3, column Jumlah" in bad.output
    path.write_text("\n".join(line for i, line in enumerate(path.read_text().splitlines()) if i != 2))
    ok = runner.invoke(import_app, ["bukalapak", str(path), "--shop-id", "69352317", "--dry-run"], obj=root)
    assert ok.exit_code == 0, ok.output
    assert "2 invoices, 3 events; would publish 3" in ok.output
