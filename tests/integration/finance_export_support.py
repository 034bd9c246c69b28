"""What the export and report-API tests share: the two lapas of :mod:`tests.integration.finance_read_support`
plus an order of each completed in May and never settled (an unmatched reconciliation item), a verification run
on record (the fixtures ``posted`` and ``ws``, imported by name), signed-in clients, and downloads read back into
rows keyed by their columns."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from openpyxl import load_workbook
from sqlalchemy import text

from infra.db.engine import make_engine
from infra.db.roles import RoleUrls
from infra.db.unit_of_work import Database
from services.finance.auth import audit
from services.presentation.exports import Column
from services.presentation.zones import WIB
from tests.integration.finance_auth_support import Workspace, workspace
from tests.integration.finance_read_support import LAPAS_A, LAPAS_B, TwoLapas, two_lapas
from tests.integration.ledger_support import Batch, completed, new_inmate, new_order_key, new_processor, post

MAY = "2026-05"
COMPLETED_AT = datetime(2026, 5, 4, 10, tzinfo=UTC)


@dataclass(frozen=True)
class Posted:
    """The two lapas, an unsettled order of each, and the id of a verification run recorded with its result."""

    two: TwoLapas
    unsettled_a: str
    unsettled_b: str
    run_id: int

    def of_b(self) -> tuple[str, ...]:
        """What lapas A's viewer must never read: B's orders and inmate."""
        return (self.two.order_b, self.two.suspense_b, self.two.inmate_b, self.unsettled_b)


@pytest.fixture(scope="module")
async def posted(database: RoleUrls, admin_db_url: str) -> Posted:
    """The two lapas, an unsettled order of each, a verification run (once per test module)."""
    return await post_for_exports(database, admin_db_url)


@pytest.fixture
async def ws(database: RoleUrls) -> AsyncIterator[Workspace]:
    """The workspace connected as the finance role."""
    async with workspace(database.finance) as made:
        yield made


async def post_for_exports(database: RoleUrls, admin_url: str) -> Posted:
    """Post :func:`two_lapas`, an unsettled completion of each lapas, and record a verification run."""
    two = await two_lapas(database, admin_url)
    engine = make_engine(database.service, pool_size=1)
    keys = {LAPAS_A: new_order_key(), LAPAS_B: new_order_key()}
    try:
        for lapas, key in keys.items():
            batch = Batch(f"B-{lapas}-X", "CPN-WDW-001", lapas, 1, 80_000, 20_000, "sup-kayu", ((new_inmate(), 1),))
            assert await post(engine, new_processor(), [completed(key, [batch], COMPLETED_AT)]) == []
    finally:
        await engine.dispose()
    finance = make_engine(database.finance, pool_size=1)
    try:
        run_id = await record_run(Database(finance, "finance"))
    finally:
        await finance.dispose()
    return Posted(two, keys[LAPAS_A], keys[LAPAS_B], run_id)


async def record_run(db: Database, first_broken: int | None = None, problem: str | None = None) -> int:
    """A verification run with its result (42 entries; intact, or broken at ``first_broken`` with ``problem``), as a
    finished run leaves them."""
    async with db.begin() as uow:
        run_id = int(
            (
                await uow.conn.execute(
                    text(
                        f"INSERT INTO {uow.table('verification_runs')} (started_by, role) "
                        "VALUES ('auditor-x', 'auditor_pusat') RETURNING id"
                    )
                )
            ).scalar_one()
        )
        await uow.conn.execute(
            text(
                f"INSERT INTO {uow.table('verification_results')} (run_id, entries, head_hash, first_broken, problem) "
                "VALUES (:id, 42, :h, :b, :p)"
            ),
            {"id": run_id, "h": "ab" * 32, "b": first_broken, "p": problem},
        )
    return run_id


async def signed_in(ws: Workspace, role: str, lapas: str | None = None) -> tuple[httpx.AsyncClient, str]:
    """A client of a new ``role`` account and its name."""
    user, password = await ws.account(role, lapas)
    return await ws.signed_in(user, password), user.name


async def ok_json(client: httpx.AsyncClient, url: str, **params: Any) -> Any:
    """The JSON of a 200 answer."""
    response = await client.get(url, params=params)
    assert response.status_code == 200, (url, response.text)
    return response.json()


async def every_page(client: httpx.AsyncClient, url: str, key: str, **params: Any) -> list[dict[str, Any]]:
    """Every item of a paged API list (``key``: the list's field), page by page through ``next_cursor``."""
    found: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = await ok_json(client, url, **params, **({"cursor": cursor} if cursor else {}))
        found += page[key]
        cursor = page["next_cursor"]
        if cursor is None:
            return found


async def download(client: httpx.AsyncClient, url: str, fmt: str, **params: Any) -> httpx.Response:
    """A 200 attachment of ``url?format=fmt``."""
    response = await client.get(url, params={**params, "format": fmt})
    assert response.status_code == 200, (url, fmt, response.text[:300])
    assert response.headers["content-disposition"].startswith("attachment; filename="), response.headers
    return response


def rows_of(body: bytes, fmt: str, columns: Sequence[Column]) -> list[dict[str, Any]]:
    """A download's rows by column key: CSV cells as text, XLSX cells as typed."""
    keys = [c.key for c in columns]
    if fmt == "csv":
        table: list[list[Any]] = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    else:
        sheet = load_workbook(io.BytesIO(body)).active
        assert sheet is not None
        table = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert len(table[0]) == len(keys), table[0]
    return [dict(zip(keys, row, strict=True)) for row in table[1:]]


def all_text(body: bytes, fmt: str) -> str:
    """Every cell of a download as one text."""
    if fmt == "csv":
        return body.decode("utf-8-sig")
    sheet = load_workbook(io.BytesIO(body)).active
    assert sheet is not None
    return " ".join(str(v) for row in sheet.iter_rows(values_only=True) for v in row)


def number(value: Any, fmt: str) -> int | None:
    """An integer cell: plain digits in CSV (no ``Rp``, no separators), an integer in XLSX (None: empty)."""
    if fmt == "xlsx":
        assert value is None or (isinstance(value, int) and not isinstance(value, bool)), value
        return value
    assert isinstance(value, str) and (value == "" or value.lstrip("-").isdigit()), value
    return None if value == "" else int(value)


def moment(value: Any, fmt: str, zone: ZoneInfo) -> datetime | None:
    """A time cell as an instant: ISO 8601 with the zone's offset in CSV, a local time in XLSX (to the second)."""
    if value in ("", None):
        return None
    if fmt == "csv":
        parsed = datetime.fromisoformat(value)
        assert parsed.utcoffset() == parsed.astimezone(zone).utcoffset(), value
        return parsed
    assert isinstance(value, datetime) and value.tzinfo is None, value
    return value.replace(tzinfo=zone)


def same_instant(found: datetime | None, expected: str | datetime | None) -> bool:
    """Whether a cell's instant is the API's (a cell keeps whole seconds)."""
    if expected is None or found is None:
        return found is None and expected is None
    at = datetime.fromisoformat(expected) if isinstance(expected, str) else expected
    return abs((found - at).total_seconds()) < 1


async def zone_of_a(client: httpx.AsyncClient) -> ZoneInfo:
    """Lapas A's own zone as the API names it (WIB when none is configured, as the pages fall back)."""
    found = await ok_json(client, "/api/v1/lapas")
    zones = [x["zone"] for x in found["lapas"] if x["lapas_id"] == LAPAS_A]
    return ZoneInfo(zones[0] if zones and zones[0] else WIB)


async def exported(ws: Workspace, actor: str) -> list[str]:
    """What ``actor`` exported, as the audit log names it."""
    async with ws.db.begin() as uow:
        return [r.subject for r in await audit.recent(uow, actor=actor, limit=500) if r.action == "export"]


async def raw_rows(database: RoleUrls, sql: str, **params: Any) -> list[Any]:
    """Rows of the unscoped journal (as the service role): what the tests check the workspace's numbers by."""
    engine = make_engine(database.service, pool_size=1)
    try:
        async with engine.connect() as conn:
            return list((await conn.execute(text(sql), params)).all())
    finally:
        await engine.dispose()


async def sums_by_sequence(database: RoleUrls, sequences: Sequence[int]) -> dict[int, int]:
    """Each entry's debits summed from the raw lines."""
    sql = (
        "SELECT sequence, sum(amount)::bigint AS d FROM ledger.journal_lines "
        "WHERE side = 'D' AND sequence = ANY(:s) GROUP BY sequence"
    )
    return {int(r.sequence): int(r.d) for r in await raw_rows(database, sql, s=list(sequences))}


async def balance_of(database: RoleUrls, account: str) -> int:
    """An account's credits less debits from the raw lines."""
    sql = (
        "SELECT coalesce(sum(CASE side WHEN 'C' THEN amount ELSE -amount END), 0)::bigint AS b "
        "FROM ledger.journal_lines WHERE account = :a"
    )
    [row] = await raw_rows(database, sql, a=account)
    return int(row.b)
