"""The savings drill-down's batch and settlement steps (issue 16, migration finance_0005) on the real database:
``finance.batches`` and ``finance.batch_work_group`` show the catalogue's batches of the scope's lapas only (and no
inmate's registry data); ``/batches/{id}`` and ``/api/v1/batches/{id}`` show a batch, its work group and its
entries, a batch of lapas B being a 404 for an auditor of lapas A like one that does not exist; the order page
links its batches, lists its settlements (the marketplace's settlement id, amounts as posted) and links each
webhook delivery to its redacted body."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import ProgrammingError

from infra.db.engine import make_engine
from infra.db.roles import RoleUrls
from infra.messaging.envelope import make_envelope
from services.contracts.marketplace import SETTLEMENT_REPORTED
from services.finance.scope import ReadSchemas, StaticViewer, scoped_read
from tests.integration.finance_auth_support import Workspace, workspace
from tests.integration.finance_batch_support import BATCH_A, BATCH_B, catalogue_batches
from tests.integration.finance_read_support import BUYER, LAPAS_A, LAPAS_B, TwoLapas, two_lapas
from tests.integration.ledger_support import (
    Batch,
    completed,
    new_order_key,
    new_processor,
    post,
    settlement_payload,
)

pytestmark = pytest.mark.integration
_CSRF = re.compile(r'(name="csrf_token" value=|"csrf_token": ?)"[^"]*"')


@pytest.fixture(scope="module")
async def posted(database: RoleUrls, admin_db_url: str) -> TwoLapas:
    """Orders of two lapas on the session database, their batches in the catalogue."""
    made = await two_lapas(database, admin_db_url)
    await catalogue_batches(admin_db_url, made)
    return made


@pytest.fixture
async def ws(database: RoleUrls) -> AsyncIterator[Workspace]:
    """The workspace connected as the finance role, as ``karya serve finance`` runs it."""
    async with workspace(database.finance) as made:
        yield made


async def _client(ws: Workspace, role: str, lapas: str | None = None) -> httpx.AsyncClient:
    user, password = await ws.account(role, lapas)
    return await ws.signed_in(user, password)


async def _ok(client: httpx.AsyncClient, url: str, **params: Any) -> httpx.Response:
    response = await client.get(url, params=params)
    assert response.status_code == 200, (url, response.text)
    return response


async def _seen(url: str, viewer: StaticViewer, sql: str) -> list[tuple[Any, ...]]:
    engine = make_engine(url, pool_size=1)
    try:
        async for reads in scoped_read(engine, viewer, ReadSchemas()):
            return [tuple(r) for r in await reads.conn.execute(text(sql))]
    finally:
        await engine.dispose()
    raise AssertionError("no read")


async def test_the_views_show_the_scopes_batches_and_pseudonyms_only(posted: TwoLapas, database: RoleUrls) -> None:
    ids = f"('{BATCH_A.batch_id}', '{BATCH_B.batch_id}')"
    batches = f"SELECT batch_id, lapas_id, workshop_id, sku FROM finance.batches WHERE batch_id IN {ids} ORDER BY 1"
    group = f"SELECT batch_id, inmate_id FROM finance.batch_work_group WHERE batch_id IN {ids}"
    auditor_a = StaticViewer("auditor-a", "auditor_lapas", LAPAS_A)

    assert await _seen(database.finance, auditor_a, batches) == [
        (BATCH_A.batch_id, LAPAS_A, BATCH_A.workshop_id, BATCH_A.sku)
    ]
    members = await _seen(database.finance, auditor_a, group)
    assert (BATCH_A.batch_id, posted.inmate_a) in members
    assert {b for b, _ in members} == {BATCH_A.batch_id} and posted.inmate_b not in {i for _, i in members}
    pusat = StaticViewer("pusat", "auditor_pusat", None)
    assert [r[0] for r in await _seen(database.finance, pusat, batches)] == [BATCH_A.batch_id, BATCH_B.batch_id]
    columns = (
        "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'finance' "
        "AND table_name IN ('batches', 'batch_work_group')"
    )
    shown = await _seen(database.finance, pusat, columns)
    assert {c for t, c in shown if t == "batch_work_group"} == {"batch_id", "inmate_id", "work_share"}
    assert not {c for _, c in shown} & {"full_name", "registration_no", "released_on"}
    engine = make_engine(database.finance, pool_size=1)
    try:
        for table in ("production_batches", "batch_work_group", "inmate_registry"):
            async with engine.connect() as conn:  # the catalogue itself stays closed to the finance role
                with pytest.raises(ProgrammingError, match="permission denied"):
                    await conn.execute(text(f"SELECT 1 FROM orders.{table}"))
    finally:
        await engine.dispose()


async def test_the_batch_api_and_page_of_the_viewers_lapas(posted: TwoLapas, ws: Workspace) -> None:
    client = await _client(ws, "auditor_lapas", LAPAS_A)

    batch = (await _ok(client, f"/api/v1/batches/{BATCH_A.batch_id}")).json()
    assert (batch["lapas_id"], batch["workshop_id"], batch["sku"]) == (LAPAS_A, BATCH_A.workshop_id, BATCH_A.sku)
    assert (batch["produced_qty"], batch["unit_material_cost_idr"]) == (BATCH_A.produced_qty, 40_000)
    assert (batch["supplier_id"], batch["production_date"]) == ("sup-kayu", "2026-05-01")
    member = {m["inmate_id"]: m for m in batch["work_group"]}[posted.inmate_a]
    assert member["work_share"] == 1 and member["premi"] > 0
    # other test modules post distributions of this batch too: this module's order is among them, nothing of B's
    mine = [e for e in batch["entries"] if e["order_key"] == posted.order_a]
    assert mine and {e["sequence"] for e in mine} <= set(posted.entries_a)
    assert {e["kind"] for e in mine} == {"distribution"} and all(e["amount"] > 0 for e in mine)
    walked: list[int] = []
    cursor = None
    while True:
        more: dict[str, str] = {"cursor": cursor} if cursor else {}
        page = (await _ok(client, f"/api/v1/batches/{BATCH_A.batch_id}", limit=1, **more)).json()
        walked += [e["sequence"] for e in page["entries"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert walked == [e["sequence"] for e in batch["entries"]]

    shown = (await _ok(client, f"/batches/{BATCH_A.batch_id}")).text
    assert f'href="/inmates/{posted.inmate_a}"' in shown and "Kelompok kerja" in shown
    assert all(f'href="/journal/{e["sequence"]}"' in shown for e in mine)
    assert f'href="/orders/{posted.order_a}"' in shown and "Rp 40.000" in shown
    assert "Work group" in (await _ok(client, f"/batches/{BATCH_A.batch_id}", lang="en")).text


async def test_a_batch_of_lapas_b_is_a_404_like_a_missing_one(posted: TwoLapas, ws: Workspace) -> None:
    lapas_a = await _client(ws, "auditor_lapas", LAPAS_A)

    for prefix in ("/api/v1/batches/", "/batches/"):
        other = await lapas_a.get(f"{prefix}{BATCH_B.batch_id}")
        missing = await lapas_a.get(f"{prefix}B-NO-SUCH-BATCH")
        assert other.status_code == missing.status_code == 404
        # the same page but for the id the viewer typed (the language switch links this URL)
        shown = _CSRF.sub("", other.text).replace(BATCH_B.batch_id, "ID")
        assert shown == _CSRF.sub("", missing.text).replace("B-NO-SUCH-BATCH", "ID"), "nothing tells B's exists"
        assert LAPAS_B not in shown
    pusat = await _client(ws, "auditor_pusat")
    batch = (await _ok(pusat, f"/api/v1/batches/{BATCH_B.batch_id}")).json()
    assert batch["lapas_id"] == LAPAS_B and posted.inmate_b in {m["inmate_id"] for m in batch["work_group"]}
    assert (await pusat.get("/api/v1/batches/x", params={"cursor": "abc"})).status_code == 422


async def test_the_order_page_links_batches_settlements_and_redacted_deliveries(
    posted: TwoLapas, ws: Workspace
) -> None:
    client = await _client(ws, "auditor_lapas", LAPAS_A)

    order = (await _ok(client, f"/api/v1/orders/{posted.order_a}")).json()
    settlement = next(e for e in order["entries"] if e["kind"] == "settlement")
    delivery = order["deliveries"][0]["delivery_id"]
    shown = (await _ok(client, f"/orders/{posted.order_a}")).text
    assert f'href="/batches/{BATCH_A.batch_id}"' in shown
    assert "Dikembalikan ke pembeli: Rp 0" in shown and "refund:" not in shown  # Bahasa Indonesia by default
    settlements = shown.split('id="settlements"', 1)[1].split("</table>", 1)[0]
    assert f'href="/journal/{settlement["sequence"]}"' in settlements and "ESC-1" in settlements
    assert "Rp 240.000" in settlements, "the gross settled: 2 units at Rp 120.000"
    assert f'href="/orders/{posted.order_a}/deliveries/{delivery}"' in shown

    body = (await _ok(client, f"/orders/{posted.order_a}/deliveries/{delivery}")).text
    assert "[redacted]" in body and BUYER not in body and "x-buyer" not in body
    assert posted.order_a.rsplit(":", 1)[1] in body, "what is not personal stays readable"
    order_b = (await _ok(await _client(ws, "auditor_pusat"), f"/api/v1/orders/{posted.order_b}")).json()
    delivery_b = order_b["deliveries"][0]["delivery_id"]
    assert (await client.get(f"/orders/{posted.order_b}/deliveries/{delivery_b}")).status_code == 404
    assert (await client.get(f"/orders/{posted.order_a}/deliveries/{delivery_b}")).status_code == 404


async def test_settlements_name_the_marketplaces_id_and_what_each_posted(
    posted: TwoLapas, ws: Workspace, database: RoleUrls
) -> None:
    key, at = new_order_key(), datetime(2026, 5, 7, 9, tzinfo=UTC)
    batches = [Batch(BATCH_A.batch_id, BATCH_A.sku, LAPAS_A, 1, 100_000, 40_000, "sup-kayu", ((posted.inmate_a, 1),))]
    # the marketplace first reports part of the order, then the whole under the same id of its own
    first = settlement_payload(key, 60_000, at) | {"marketplace_settlement_id": "MS-77"}
    whole = settlement_payload(key, 100_000, at + timedelta(days=1), settlement_id="ESC-2")
    reread = whole | {"marketplace_settlement_id": "MS-77"}
    envelopes = [
        make_envelope(type=SETTLEMENT_REPORTED, source="karya/gateway", subject=key, data=data)
        for data in (first, reread)
    ]
    engine = make_engine(database.service, pool_size=1)
    try:
        processor = new_processor()
        assert await post(engine, processor, [completed(key, batches, at), envelopes[0]]) == []
        assert await post(engine, processor, [envelopes[1]]) == []
    finally:
        await engine.dispose()
    client = await _client(ws, "auditor_lapas", LAPAS_A)

    shown = (await _ok(client, f"/orders/{key}", lang="en")).text
    table = shown.split('id="settlements"', 1)[1].split("</table>", 1)[0]
    rows = [
        [re.sub(r"<[^>]+>", "", c).strip() for c in row.split("</td>")]
        for row in re.findall(r"<tr><td>(.*?)</tr>", table, re.S)
    ]
    assert [r[:2] for r in rows] == [["MS-77", "ESC-1"], ["MS-77", "ESC-2"]]
    assert rows[0][3:5] == ["Rp 60.000", "Rp 54.900"]
    assert rows[1][3:5] == ["Rp 40.000", "Rp 36.600"], "the re-read posts its difference to the totals posted"


async def test_the_batch_pages_entries_have_an_index(database: RoleUrls) -> None:
    """ledger_0012: the batch page's ``batch_id = :b AND sequence > :after ORDER BY sequence`` has its index (the
    measurement that justifies it is in the migration: a big journal is not built here)."""
    engine = make_engine(database.finance, pool_size=1)
    try:
        async with engine.connect() as conn:
            found = await conn.scalar(
                text("SELECT indexdef FROM pg_indexes WHERE schemaname = 'ledger' AND indexname = :n"),
                {"n": "journal_entries_batch_idx"},
            )
    finally:
        await engine.dispose()
    assert found is not None and "(batch_id, sequence) WHERE (batch_id IS NOT NULL)" in found, found
