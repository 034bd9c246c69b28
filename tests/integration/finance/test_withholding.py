"""PPh 22 withholding slips and tax settings in the finance workspace, on the real database (finance_0009, the read
API ``/api/v1/withholding`` and ``/api/v1/tax-settings``, the ``/withholding`` page, its CSV and XLSX, the dashboard).

Two lapas of this module's own get tax settings through ``karya policy load`` and sales through the ledger's posting
path, so the shared session database's other lapas are unaffected: lapas A is PKP with PPh 22 creditable and a
tolerance of 50 rupiah — a settlement withholding 901 (0.5% of 180,180, the price of 200,000 without its PPN) is not
flagged, one withholding 1,000 (on the price with PPN) is; lapas B is non-PKP with PPh 22 borne as a cost and no
tolerance — 2,000 withheld where 1,000 is due is flagged. An auditor of A sees A's slips and setting only, raw
(row-level security, no filter of ours), through the API, on the page, on the dashboard and in the exports.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from infra.db.engine import make_engine
from infra.db.roles import RoleUrls
from services.finance.scope import StaticViewer, enter_scope
from services.finance.web.withholding import COLUMNS
from tests.integration.finance_auth_support import Workspace, workspace
from tests.integration.finance_export_support import all_text, download, every_page, number, ok_json, rows_of, signed_in
from tests.integration.ledger_support import (
    Batch,
    completed,
    new_inmate,
    new_order_key,
    new_processor,
    post,
    run_karya,
    settled,
    uid,
)

pytestmark = pytest.mark.integration

EARLY, LATE = datetime(2026, 6, 1, 9, tzinfo=UTC), datetime(2026, 6, 10, 9, tzinfo=UTC)
SINCE = "2025-01-01T00:00:00+07:00"
FEES = {"commission_fee": 12_000, "service_fee": 4_000}  # on a sale of 200,000


@dataclass(frozen=True)
class Slips:
    """The module's two lapas and their orders: A's unflagged (invoice ``invoice``) and flagged ones, B's
    flagged one."""

    lapas_a: str
    lapas_b: str
    a_ok: str
    a_flagged: str
    b_flagged: str
    invoice: str


def _policy_file(path: Path, a: str, b: str) -> Path:
    """A 25/15/60 policy per lapas; A PKP creditable with a tolerance of 50, B non-PKP expense."""
    policies = "".join(
        f"""  - {{policy_id: {lapas}-standard, version: 1, lapas_id: {lapas}, effective_from: "{SINCE}",
      rules: [{{target: pnbp, share: "25%"}}, {{target: inmate_premi, share: "15%"}},
              {{target: production_capital, share: "60%"}}]}}
"""
        for lapas in (a, b)
    )
    taxes = f"""  - {{lapas_id: {a}, version: 1, effective_from: "{SINCE}", pkp: true, pph22: creditable,
      pph22_tolerance: 50}}
  - {{lapas_id: {b}, version: 1, effective_from: "{SINCE}", pkp: false, pph22: expense}}
"""
    path.write_text(f"policies:\n{policies}tax_settings:\n{taxes}")
    return path


@pytest.fixture(scope="module")
async def slips(database: RoleUrls, tmp_path_factory: pytest.TempPathFactory) -> Slips:
    """The settings loaded and three settlements posted (once for this module)."""
    a, b = f"wha-{uid()}", f"whb-{uid()}"
    path = _policy_file(tmp_path_factory.mktemp("withholding") / "tax.yaml", a, b)
    loaded = await run_karya(database, "policy", "load", str(path))
    assert loaded.returncode == 0 and "2 new tax settings" in loaded.stdout, loaded.stderr
    made = Slips(a, b, new_order_key(), new_order_key(), new_order_key(), f"INV/{uid()}")
    engine = make_engine(database.service, pool_size=1)
    try:
        for key, lapas, withheld, at in (
            (made.a_ok, a, 901, EARLY),
            (made.a_flagged, a, 1_000, LATE),
            (made.b_flagged, b, 2_000, EARLY),
        ):
            batch = Batch(f"B-WH-{uid()}", f"WH-{uid()}", lapas, 2, 100_000, 20_000, "sup-kain", ((new_inmate(), 1),))
            settlement = settled(key, 200_000, at, fees=FEES)
            settlement.data.update(pph22_withheld=withheld, net_payout=200_000 - 16_000 - withheld)
            if key == made.a_ok:
                settlement.data["invoice_number"] = made.invoice
            assert await post(engine, new_processor(), [completed(key, [batch], at), settlement]) == []
    finally:
        await engine.dispose()
    return made


@pytest.fixture
async def ws(database: RoleUrls) -> AsyncIterator[Workspace]:
    """The workspace connected as the finance role."""
    async with workspace(database.finance) as made:
        yield made


async def _raw(database: RoleUrls, lapas_scope: str | None, *, unscoped: bool = False) -> dict[str, set[str]]:
    """The lapas of the slips and settings a raw query returns as the finance role in a lapas' scope (``'*'``-like
    with ``lapas_scope`` None), or with no scope set at all (``unscoped``)."""
    engine = make_engine(database.finance, pool_size=1)
    try:
        async with engine.connect() as conn, conn.begin():
            if not unscoped:
                await enter_scope(conn, StaticViewer("t", "auditor_lapas", lapas_scope))
            return {
                table: set((await conn.execute(text(f"SELECT lapas_id FROM ledger.{table}"))).scalars())
                for table in ("withholding_slips", "tax_settings")
            }
    finally:
        await engine.dispose()


async def test_row_level_security_shows_a_lapas_its_own_slips_and_settings_only(
    database: RoleUrls, slips: Slips
) -> None:
    own = await _raw(database, slips.lapas_a)
    assert own == {"withholding_slips": {slips.lapas_a}, "tax_settings": {slips.lapas_a}}
    every = await _raw(database, None)
    assert {slips.lapas_a, slips.lapas_b} <= every["withholding_slips"] & every["tax_settings"]
    assert await _raw(database, None, unscoped=True) == {"withholding_slips": set(), "tax_settings": set()}


async def test_the_api_lists_the_viewers_slips_newest_first_with_the_flag_and_filters(
    slips: Slips, ws: Workspace
) -> None:
    client, _ = await signed_in(ws, "auditor_lapas", slips.lapas_a)
    listed = await every_page(client, "/api/v1/withholding", "slips", limit=1)
    assert [s["order_key"] for s in listed] == [slips.a_flagged, slips.a_ok], "newest first, A's only, page by page"
    flagged, ok = listed
    assert (ok["withheld"], ok["expected"], ok["difference"], ok["tolerance"], ok["flagged"]) == (
        901,
        901,
        0,
        50,
        False,
    )
    assert (ok["slip_ref"], ok["tax_ref"]) == (slips.invoice, f"tax:{slips.lapas_a}@v1")
    assert (flagged["withheld"], flagged["expected"], flagged["difference"], flagged["flagged"]) == (
        1_000,
        901,
        99,
        True,
    )
    assert flagged["slip_ref"] == "ESC-1" and flagged["posting_key"].startswith(slips.a_flagged)

    def keys(page: dict[str, list[dict[str, str]]]) -> list[str]:
        return [s["order_key"] for s in page["slips"]]

    assert keys(await ok_json(client, "/api/v1/withholding", flagged="true")) == [slips.a_flagged]
    assert keys(await ok_json(client, "/api/v1/withholding", flagged="false")) == [slips.a_ok]
    assert keys(await ok_json(client, "/api/v1/withholding", lapas=slips.lapas_b)) == [], "B is not in A's scope"
    late = await ok_json(client, "/api/v1/withholding", **{"from": "2026-06-05T00:00:00+07:00"})
    early = await ok_json(client, "/api/v1/withholding", to="2026-06-05T00:00:00+07:00", lapas=slips.lapas_a)
    assert (keys(late), keys(early)) == ([slips.a_flagged], [slips.a_ok])
    for bad in (
        {"flagged": "maybe"},
        {"from": "2026-06-05T00:00:00"},  # no zone
        {"from": "2026-06-05T00:00:00+07:00", "to": "2026-06-01T00:00:00+07:00"},
        {"cursor": "not-a-cursor"},
        {"cursor": "2026-06-05T00:00:00 key"},  # a naive time is no cursor of ours
        {"limit": "0"},
        {"lapas": "a\x00b"},
    ):
        response = await client.get("/api/v1/withholding", params=bad)
        assert response.status_code == 422, (bad, response.text)

    settings = (await ok_json(client, "/api/v1/tax-settings"))["settings"]
    assert [
        (s["lapas_id"], s["version"], s["pkp"], s["pph22"], s["pph22_tolerance"], s["in_force"]) for s in settings
    ] == [(slips.lapas_a, 1, True, "creditable", 50, True)]
    assert settings[0]["ref"] == f"tax:{slips.lapas_a}@v1" and settings[0]["ppn_base"] == "11/12"

    pusat, _ = await signed_in(ws, "auditor_pusat")
    assert keys(await ok_json(pusat, "/api/v1/withholding", lapas=slips.lapas_b)) == [slips.b_flagged]
    every = {s["lapas_id"]: s for s in (await ok_json(pusat, "/api/v1/tax-settings"))["settings"]}
    assert (every[slips.lapas_b]["pkp"], every[slips.lapas_b]["pph22"]) == (False, "expense")


async def test_the_page_marks_the_flagged_rows_links_their_orders_and_filters_them(slips: Slips, ws: Workspace) -> None:
    client, _ = await signed_in(ws, "auditor_lapas", slips.lapas_a)
    page = await client.get("/withholding")
    assert page.status_code == 200, page.text
    table = page.text.split('id="slips"', 1)[1].split("</table>", 1)[0]
    rows = {key: row for row in table.split("<tr")[2:] for key in (slips.a_ok, slips.a_flagged) if key in row}
    assert 'class="flagged"' in rows[slips.a_flagged] and "PERLU DIPERIKSA" in rows[slips.a_flagged]
    assert 'class="ok"' in rows[slips.a_ok] and "PERLU DIPERIKSA" not in rows[slips.a_ok]
    assert f'href="/orders/{slips.a_flagged}"' in rows[slips.a_flagged]
    assert (
        "Rp 1.000" in rows[slips.a_flagged] and "Rp 901" in rows[slips.a_flagged] and "Rp 99" in rows[slips.a_flagged]
    )
    assert slips.b_flagged not in page.text and slips.lapas_b not in page.text
    only = (await client.get("/withholding", params={"flagged": "true", "lang": "en"})).text
    assert slips.a_flagged in only and slips.a_ok not in only and "TO REVIEW" in only and "PPh 22 withholding" in only
    assert (await client.get("/withholding", params={"from": "2026-06-10", "to": "2026-06-01"})).status_code == 422
    assert (await client.get("/withholding", params={"cursor": "x"})).status_code == 422

    dashboard = (await client.get("/dashboard", params={"lang": "id"})).text  # the page above chose English
    assert '<div class="num" id="fig-withholding-flagged">1</div>' in dashboard
    settings = dashboard.split('id="tax-settings"', 1)[1].split("</table>", 1)[0]
    assert f'id="tax-{slips.lapas_a}"' in settings and slips.lapas_b not in settings
    row = settings.split(f'id="tax-{slips.lapas_a}"', 1)[1].split("</tr>", 1)[0]
    assert "Ya" in row and "Dikreditkan" in row and f"tax:{slips.lapas_a}@v1" in row
    assert 'href="/withholding"' in dashboard, "the navigation links the page"


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
async def test_the_exports_hold_every_slip_of_the_filters_and_no_other_lapas(
    slips: Slips, ws: Workspace, fmt: str
) -> None:
    client, _ = await signed_in(ws, "auditor_lapas", slips.lapas_a)
    rows = rows_of((await download(client, "/withholding", fmt)).content, fmt, COLUMNS)
    by_order = {r["order_key"]: r for r in rows}
    assert set(by_order) == {slips.a_ok, slips.a_flagged}
    flagged = by_order[slips.a_flagged]
    figures = ("withheld", "expected", "difference", "tolerance", "flagged")
    assert tuple(number(flagged[k], fmt) for k in figures) == (1_000, 901, 99, 50, 1)
    assert by_order[slips.a_ok]["slip_ref"] == slips.invoice and number(by_order[slips.a_ok]["flagged"], fmt) == 0
    only = await download(client, "/withholding", fmt, flagged="true")
    assert [r["order_key"] for r in rows_of(only.content, fmt, COLUMNS)] == [slips.a_flagged]
    assert slips.lapas_b not in all_text(only.content, fmt)
