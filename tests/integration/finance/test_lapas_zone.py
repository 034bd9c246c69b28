"""The lapas' own time zone (migration finance_0004, :mod:`services.finance.queries.lapas`), on the real database:
``karya_finance`` reads the catalogue's lapas only through ``finance.lapas``, in its scope, and the pages show a
lapas' times in its zone (kerobokan, Bali: WITA; cipinang, Jakarta: WIB)."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import ProgrammingError

from infra.db.engine import make_engine
from infra.db.roles import RoleUrls
from services.finance.queries.lapas import viewer_zone, visible_lapas, zone_of_lapas
from services.finance.scope import ReadSchemas, StaticViewer, scoped_read
from tests.integration.finance_auth_support import workspace
from tests.integration.finance_read_support import LAPAS_A, LAPAS_B, TwoLapas, two_lapas

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def catalogue_lapas(admin_db_url: str) -> None:
    """The two lapas in the catalogue with their provinces (as the demo catalogue has them), whatever an earlier
    test of the session database inserted for the same ids (the ledger scenarios' lapas have province
    'Provinsi', which has no zone)."""
    engine = make_engine(admin_db_url, pool_size=1)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO orders.lapas (lapas_id, name, city, province) VALUES "
                    "(:a, 'Lapas Cipinang', 'Jakarta Timur', 'DKI Jakarta'), "
                    "(:b, 'Lapas Kerobokan', 'Badung', 'Bali') "
                    "ON CONFLICT (lapas_id) DO UPDATE SET name = EXCLUDED.name, city = EXCLUDED.city, "
                    "province = EXCLUDED.province"
                ),
                {"a": LAPAS_A, "b": LAPAS_B},
            )
    finally:
        await engine.dispose()


async def test_the_finance_role_reads_its_own_lapas_with_its_zone(catalogue_lapas: None, database: RoleUrls) -> None:
    engine = make_engine(database.finance, pool_size=1)
    try:
        viewer_b = StaticViewer("auditor-b", "auditor_lapas", LAPAS_B)
        async for reads in scoped_read(engine, viewer_b, ReadSchemas()):
            seen = await visible_lapas(reads)
            assert [(x.lapas_id, x.province, x.zone and x.zone.key) for x in seen] == [
                (LAPAS_B, "Bali", "Asia/Makassar")
            ]
            assert (await viewer_zone(reads)).key == "Asia/Makassar"
            assert (await zone_of_lapas(reads, LAPAS_A)).key == "Asia/Jakarta"  # not visible: WIB, not its row
        everyone = StaticViewer("pusat", "auditor_pusat", None)
        async for reads in scoped_read(engine, everyone, ReadSchemas()):
            assert {LAPAS_A, LAPAS_B} <= {x.lapas_id for x in await visible_lapas(reads)}
            assert (await viewer_zone(reads)).key == "Asia/Jakarta"
        async with engine.connect() as conn:  # the catalogue itself stays closed to the finance role
            with pytest.raises(ProgrammingError, match="permission denied"):
                await conn.execute(text("SELECT province FROM orders.lapas"))
    finally:
        await engine.dispose()


async def test_pages_show_times_in_the_viewers_lapas_zone(catalogue_lapas: None, database: RoleUrls) -> None:
    async with workspace(database.finance) as ws:
        for lapas, label in ((LAPAS_B, "WITA"), (LAPAS_A, "WIB")):
            user, password = await ws.account("auditor_lapas", lapas)
            client = await ws.signed_in(user, password)
            for path in ("/dashboard", "/reconciliation", "/journal"):
                shown = await client.get(path)
                assert shown.status_code == 200 and f"{label}</small>" in shown.text, path
            api = (await client.get("/api/v1/lapas")).json()["lapas"]
            assert [(x["lapas_id"], x["zone_label"]) for x in api] == [(lapas, label)]
            assert (await client.get("/api/v1/lapas", params={"province": "papua"})).json() == {"lapas": []}
            home = await client.get("/")
            assert "Selamat datang" in home.text and 'href="/dashboard"' in home.text


async def test_a_lapas_report_counts_the_month_in_the_lapas_zone(
    catalogue_lapas: None, database: RoleUrls, admin_db_url: str
) -> None:
    posted: TwoLapas = await two_lapas(database, admin_db_url)
    assert posted.order_b
    async with workspace(database.finance) as ws:
        for lapas, zone in ((LAPAS_B, "Asia/Makassar"), (LAPAS_A, "Asia/Jakarta")):
            user, password = await ws.account("auditor_pusat")
            client = await ws.signed_in(user, password)
            report = await client.get(f"/reports/lapas/{lapas}/2026-05")
            assert report.status_code == 200 and f"{zone})" in report.text
