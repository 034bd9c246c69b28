"""The finance read API over HTTP on the real database, signed in as the workspace's users: an auditor of lapas A
gets 404 for an entry, order or inmate of lapas B however the id is crafted and never sees B's rows in a list;
the trial balance equals ``karya ledger trial-balance --json``; bad input is a 422 naming the field. An entry of no
order and no inmate is for every-lapas viewers only. The inmate statement is the register of the inmate's savings
account with a header (the same balances on both pages, whatever part of a period the API is asked for), and its
SQL holds only the bounds a request gives (an ``:x IS NULL OR …`` per optional bound made PostgreSQL evaluate the
lapas policies on every line)."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine
from typer.testing import CliRunner

from infra.db.roles import RoleUrls
from services.finance.auth import audit
from services.finance.scope import ScopeError
from services.ledger.cli import ledger_app
from services.ledger.domain import accounts
from tests.integration.finance_auth_support import Workspace, workspace
from tests.integration.finance_read_support import LAPAS_A, LAPAS_B, TwoLapas, orderless_adjustment, two_lapas
from tests.integration.ledger_support import cli_env

pytestmark = pytest.mark.integration

OPTIONAL_BOUND = re.compile(r"IS (NOT )?NULL (OR|AND)", re.IGNORECASE)
# A bind parameter tested for NULL: an optional filter in the SQL (a column's IS NULL is a real condition).
PARAMETER_IS_NULL = re.compile(r"(CAST\(\$\d+ AS \w+\)|\$\d+) IS (NOT )?NULL", re.IGNORECASE)


@pytest.fixture(scope="module")
async def posted(database: RoleUrls, admin_db_url: str) -> TwoLapas:
    """Orders of two lapas on the session database (lapas B's inmate earned on 4 May, was paid out on 6 May)."""
    return await two_lapas(database, admin_db_url)


@pytest.fixture(scope="module")
async def orderless(posted: TwoLapas, database: RoleUrls) -> tuple[str, int]:
    """An approved adjustment of no order: its posting key and sequence."""
    return await orderless_adjustment(database)


@pytest.fixture
async def ws(database: RoleUrls) -> AsyncIterator[Workspace]:
    """The workspace connected as the finance role, as ``karya serve finance`` runs it."""
    async with workspace(database.finance) as made:
        yield made


async def _client(ws: Workspace, role: str, lapas: str | None = None) -> httpx.AsyncClient:
    user, password = await ws.account(role, lapas)
    return await ws.signed_in(user, password)


async def _ok(client: httpx.AsyncClient, url: str, **params: Any) -> Any:
    response = await client.get(url, params=params)
    assert response.status_code == 200, (url, response.text)
    return response.json()


async def _all_entries(client: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    """Every entry of a filtered list, page by page through the cursor."""
    found: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = await _ok(client, "/api/v1/entries", **params, **({"cursor": cursor} if cursor else {}))
        found += page["entries"]
        cursor = page["next_cursor"]
        if cursor is None:
            return found


async def test_an_auditor_of_lapas_a_gets_404_for_everything_of_lapas_b(posted: TwoLapas, ws: Workspace) -> None:
    client = await _client(ws, "auditor_lapas", LAPAS_A)

    for sequence in posted.entries_b:
        assert (await client.get(f"/api/v1/entries/{sequence}")).status_code == 404
    assert (await client.get(f"/api/v1/orders/{posted.order_b}")).status_code == 404
    assert (await client.get(f"/api/v1/inmates/{posted.inmate_b}/statement")).status_code == 404
    assert (await client.get("/api/v1/entries/999999999")).status_code == 404, "the same as what does not exist"
    # A's own are there
    entry = await _ok(client, f"/api/v1/entries/{posted.entries_a[0]}")
    assert entry["order_key"] == posted.order_a and entry["lines"] and entry["chain"]["chain_hash"]
    assert [d["channel"] for d in entry["deliveries"]] == ["shopee"]
    assert "[redacted]" in json.dumps(entry["deliveries"][0]["body"])
    order = await _ok(client, f"/api/v1/orders/{posted.order_a}")
    sequences = [e["sequence"] for e in order["entries"]]
    assert order["lapas_id"] == LAPAS_A and sequences and set(sequences) <= set(posted.entries_a)
    assert all(e["order_key"] == posted.order_a for e in order["entries"])


async def test_lists_under_lapas_a_hold_none_of_lapas_bs_rows(posted: TwoLapas, ws: Workspace) -> None:
    client = await _client(ws, "auditor_lapas", LAPAS_A)

    entries = await _all_entries(client, limit=2)
    sequences = [e["sequence"] for e in entries]
    assert sequences == sorted(set(sequences)), "pages neither repeat nor skip"
    assert set(posted.entries_a) <= set(sequences) and not set(posted.entries_b) & set(sequences)
    by_order = await _all_entries(client, order_key=posted.order_b)
    assert by_order == []
    by_key = await _all_entries(client, posting_key=f"payout:{posted.inmate_b}")
    assert by_key == []
    on_sales = await _all_entries(client, account=f"revenue:sales:{LAPAS_A}", kind="settlement")
    # Other test modules post lapas A sales to this database too: this module's are among them, none of B's.
    assert {e["sequence"] for e in on_sales} & set(posted.entries_a)
    assert not {e["sequence"] for e in on_sales} & set(posted.entries_b)
    assert all(e["kind"] == "settlement" for e in on_sales)
    assert await _all_entries(client, account=f"revenue:sales:{LAPAS_B}") == []
    window = await _all_entries(client, **{"from": "2026-05-04T10:00:00Z", "to": "2026-05-04T10:00:01Z"})
    assert {e["sequence"] for e in window} >= {e["sequence"] for e in on_sales if e["order_key"] == posted.order_a}
    later = {"from": "2026-05-05T00:00:00Z", "to": "2026-05-06T00:00:00Z", "order_key": posted.order_a}
    assert await _all_entries(client, **later) == []
    listed = {a["account"] for a in (await _ok(client, "/api/v1/accounts"))["accounts"]}
    assert accounts.inmate_savings(posted.inmate_a) in listed
    assert not any(LAPAS_B in a or posted.inmate_b in a for a in listed)
    tb = await _ok(client, "/api/v1/trial-balance")
    assert tb["balanced"] and tb["total_debit"] > 0, "a lapas sees whole entries, so its trial balance balances"


async def test_an_inmate_statement_closes_at_the_account_balance(posted: TwoLapas, ws: Workspace) -> None:
    client = await _client(ws, "auditor_lapas", LAPAS_A)
    account = accounts.inmate_savings(posted.inmate_a)

    statement = await _ok(client, f"/api/v1/inmates/{posted.inmate_a}/statement")
    listed = await _ok(client, "/api/v1/accounts", prefix=account)

    assert statement["opening_balance"] == 0 and statement["postings"]
    assert statement["closing_balance"] == listed["accounts"][0]["balance"] > 0
    later = await _ok(client, f"/api/v1/inmates/{posted.inmate_a}/statement", **{"from": "2026-05-05T00:00:00Z"})
    assert later["opening_balance"] == statement["closing_balance"] and later["postings"] == []


async def _cli_trial_balance(urls: RoleUrls, *args: str) -> dict[str, Any]:
    argv = ["trial-balance", "--json", *args]
    result = await asyncio.to_thread(CliRunner().invoke, ledger_app, argv, env=cli_env(urls))
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def _comparable(tb: dict[str, Any]) -> tuple[Any, ...]:
    rows = [(a["account"], a["type"], a["debit"], a["credit"], a["balance"]) for a in tb["accounts"]]
    return rows, tb["total_debit"], tb["total_credit"], tb["balanced"]


async def test_the_trial_balance_equals_the_cli_s(posted: TwoLapas, ws: Workspace, database: RoleUrls) -> None:
    client = await _client(ws, "auditor_pusat")

    assert _comparable(await _ok(client, "/api/v1/trial-balance")) == _comparable(await _cli_trial_balance(database))
    as_of = "2026-05-05T00:00:00+00:00"
    api = await _ok(client, "/api/v1/trial-balance", as_of=as_of)
    assert _comparable(api) == _comparable(await _cli_trial_balance(database, "--as-of", as_of))


async def test_bad_input_is_a_422_naming_the_field(posted: TwoLapas, ws: Workspace) -> None:
    client = await _client(ws, "auditor_pusat")

    for url, params, field in (
        ("/api/v1/trial-balance", {"as_of": "yesterday"}, "as_of"),
        ("/api/v1/trial-balance", {"as_of": "2026-05-05T00:00:00"}, "as_of"),  # no zone
        ("/api/v1/accounts", {"known_at": "2026-13-01T00:00:00Z"}, "known_at"),
        # before year 1 in UTC (a database error before the range check) and past the years the ledger holds
        ("/api/v1/trial-balance", {"known_at": "0001-01-01T00:00:00+01:00"}, "known_at"),
        ("/api/v1/entries", {"from": "9999-12-31T23:00:00-05:00"}, "from"),
        ("/api/v1/entries", {"from": "2026-05-05T00:00:00Z", "to": "2026-05-01T00:00:00Z"}, "to"),
        ("/api/v1/entries", {"cursor": "abc"}, "cursor"),
        ("/api/v1/entries", {"limit": "0"}, "limit"),
        ("/api/v1/inmates/not-an-inmate/statement", {}, "inmate_id"),
        ("/api/v1/entries", {"posting_key": "a\x00b"}, "posting_key"),
        ("/api/v1/accounts", {"prefix": "\x00"}, "prefix"),
    ):
        response = await client.get(url, params=params)
        assert response.status_code == 422, (url, params, response.text)
        assert field in [e["loc"][-1] for e in response.json()["detail"]], response.text


async def test_the_api_needs_a_session(ws: Workspace) -> None:
    assert (await ws.client().get("/api/v1/trial-balance")).status_code == 401


async def test_a_workspace_wired_to_another_role_fails_closed(posted: TwoLapas, database: RoleUrls) -> None:
    async with workspace(database.service) as unscoped:
        client = await _client(unscoped, "auditor_lapas", LAPAS_A)
        with pytest.raises(ScopeError, match="karya_finance"):
            await client.get(f"/api/v1/orders/{posted.order_b}")


async def _items(client: httpx.AsyncClient, kind: str) -> list[dict[str, Any]]:
    """Every open item of a kind, page by page (one item a page, so the cursor is walked)."""
    found: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = await _ok(client, f"/api/v1/items/{kind}", limit=1, **({"cursor": cursor} if cursor else {}))
        found += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return found


async def test_work_items_are_those_of_the_viewers_lapas(posted: TwoLapas, ws: Workspace) -> None:
    lapas_a = await _client(ws, "auditor_lapas", LAPAS_A)
    pusat = await _client(ws, "auditor_pusat")

    unallocated = {i["order_key"]: i for i in await _items(lapas_a, "unallocated")}
    assert unallocated[posted.unallocated_a]["account"] == f"clearing:unallocated_proceeds:{LAPAS_A}"
    assert unallocated[posted.unallocated_a]["amount"] == 100_000
    assert posted.suspense_b not in {i["order_key"] for i in await _items(lapas_a, "suspense")}
    assert posted.parked not in {i["order_key"] for i in await _items(lapas_a, "parked")}, "no lapas known yet"

    suspense = {i["order_key"]: i for i in await _items(pusat, "suspense")}
    assert suspense[posted.suspense_b]["amount"] == 2_500
    parked = [i for i in await _items(pusat, "parked") if i["order_key"] == posted.parked]
    assert [(i["type"], i["waiting_for"]) for i in parked] == [
        ("karya.marketplace.settlement_reported.v1", "completion")
    ]


async def test_known_at_shows_what_the_ledger_knew_then(posted: TwoLapas, ws: Workspace) -> None:
    client = await _client(ws, "auditor_pusat")

    before = await _ok(client, "/api/v1/trial-balance", known_at="2000-01-01T00:00:00Z")
    now = await _ok(client, "/api/v1/trial-balance", known_at="2999-01-01T00:00:00Z")

    assert before["accounts"] == [] and before["total_debit"] == 0 and before["balanced"]
    assert _comparable(now) == _comparable(await _ok(client, "/api/v1/trial-balance"))
    entry = await _ok(client, f"/api/v1/entries/{posted.entries_a[0]}")
    recorded = entry["recorded_at"]
    known = await _all_entries(client, known_at=recorded, order_key=posted.order_a)
    assert posted.entries_a[0] in [e["sequence"] for e in known]
    assert all(e["recorded_at"] <= recorded for e in known)


async def test_an_auditor_of_one_lapas_cannot_see_an_entry_of_no_order(
    orderless: tuple[str, int], ws: Workspace
) -> None:
    key, sequence = orderless
    client = await _client(ws, "auditor_lapas", LAPAS_A)

    assert (await client.get(f"/api/v1/entries/{sequence}")).status_code == 404
    listed = await client.get("/api/v1/entries", params={"posting_key": key})
    assert listed.status_code == 200 and listed.json()["entries"] == []
    on_suspense = await client.get("/api/v1/entries", params={"account": "clearing:suspense", "limit": 500})
    assert sequence not in {e["sequence"] for e in on_suspense.json()["entries"]}
    assert (await client.get(f"/journal/{sequence}")).status_code == 404
    journal = await client.get("/journal", params={"posting_key": key})
    assert journal.status_code == 200 and f'href="/journal/{sequence}"' not in journal.text

    everyone = await _client(ws, "auditor_pusat")
    assert (await everyone.get(f"/api/v1/entries/{sequence}")).json()["posting_key"] == key
    assert f'href="/journal/{sequence}"' in (await everyone.get("/journal", params={"posting_key": key})).text


@contextmanager
def statements_of(engine: AsyncEngine) -> Iterator[list[str]]:
    """The SQL ``engine`` sends while the block runs."""
    sent: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        sent.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", seen)
    try:
        yield sent
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", seen)


async def _statement(client: httpx.AsyncClient, inmate: str, **bounds: str) -> dict[str, Any]:
    response = await client.get(f"/api/v1/inmates/{inmate}/statement", params=bounds)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def _rows(html: str, table: str) -> list[str]:
    """The text of each row of the page's table ``table`` (tags dropped)."""
    body = html.split(f'<table id="{table}">', 1)[1].split("</table>", 1)[0]
    return [re.sub(r"<[^>]+>", "|", row) for row in body.split("<tr>")[2:]]


async def test_the_statement_sends_only_the_bounds_given(posted: TwoLapas, ws: Workspace) -> None:
    client = await _client(ws, "auditor_pusat")
    with statements_of(ws.db.engine) as sent:
        await _statement(client, posted.inmate_b)
        await _statement(client, posted.inmate_b, **{"from": "2026-05-05T00:00:00Z"})
        await _statement(client, posted.inmate_b, to="2026-05-05T00:00:00Z")
    ledger = [s for s in sent if "journal_lines" in s]
    assert ledger and not [s for s in ledger if OPTIONAL_BOUND.search(s)], ledger


async def test_a_statement_over_part_of_its_time_opens_and_closes_at_the_running_balance(
    posted: TwoLapas, ws: Workspace
) -> None:
    client = await _client(ws, "auditor_pusat")
    whole = await _statement(client, posted.inmate_b)
    earned = [p for p in whole["postings"] if p["credit"]]
    assert earned and whole["postings"][-1]["debit"] == 1_000, "earned on 4 May, 1,000 paid out on 6 May"
    total = sum(p["credit"] for p in earned)

    before = await _statement(client, posted.inmate_b, to="2026-05-05T00:00:00Z")
    after = await _statement(client, posted.inmate_b, **{"from": "2026-05-05T00:00:00Z"})
    later = await _statement(client, posted.inmate_b, **{"from": "2026-05-07T00:00:00Z"})

    assert whole["opening_balance"] == 0 and whole["closing_balance"] == total - 1_000
    assert before["postings"] == whole["postings"][:-1] and before["closing_balance"] == total
    assert after["opening_balance"] == total and after["postings"] == whole["postings"][-1:]
    assert after["closing_balance"] == total - 1_000
    assert later["opening_balance"] == later["closing_balance"] == total - 1_000 and later["postings"] == []


async def test_the_statement_page_shows_the_lines_of_the_savings_register(posted: TwoLapas, ws: Workspace) -> None:
    client = await _client(ws, "auditor_pusat")
    statement = (await client.get(f"/inmates/{posted.inmate_b}")).text
    register = (await client.get(f"/accounts/{accounts.inmate_savings(posted.inmate_b)}")).text

    lines, registered = _rows(statement, "statement"), _rows(register, "register")
    assert len(lines) == len(registered) >= 3, "opening, each posting, closing"
    assert [_last_amount(r) for r in lines] == [_last_amount(r) for r in registered]


def _last_amount(row: str) -> str:
    """The digits of a row's last cell (the balance; the register adds its side, D or K)."""
    cells = [c for c in row.split("|") if c.strip()]
    return re.sub(r"\D", "", cells[-1])


async def test_optional_filters_and_cursors_reach_the_sql_only_when_given(posted: TwoLapas, ws: Workspace) -> None:
    """Journal, work items, reconciliation and the audit log send no ``:x IS NULL OR …`` (see the statement's
    test); each answers with and without its filters and cursor."""
    client = await _client(ws, "auditor_pusat")
    calls = [
        ("/api/v1/entries", {}),
        ("/api/v1/entries", {"order_key": posted.order_a, "kind": "settlement", "account": accounts.bank(LAPAS_A)}),
        ("/api/v1/reconciliation", {}),
        ("/api/v1/reconciliation", {"month": "2026-05", "channel": "shopee"}),
    ]
    with statements_of(ws.db.engine) as sent:
        for path, params in calls:
            assert (await client.get(path, params=params)).status_code == 200, path
        for items in ("unallocated", "suspense", "parked"):
            first = (await client.get(f"/api/v1/items/{items}", params={"limit": 1})).json()
            assert first["items"], items
            if first["next_cursor"] is not None:
                following = {"limit": 1, "cursor": first["next_cursor"]}
                assert (await client.get(f"/api/v1/items/{items}", params=following)).status_code == 200
        async with ws.db.engine.connect() as conn:
            assert await audit.recent(conn, actor="nobody-at-all") == []
            assert await audit.recent(conn, limit=1)
    read = [s for s in sent if "ledger." in s or "audit_log" in s]  # the session check's IS NULL is no filter
    assert len(read) > len(calls) and not [s for s in read if PARAMETER_IS_NULL.search(s)], read


async def test_a_lapas_work_items_include_its_adjustments_of_no_order_and_the_cursor_walks_them_once(
    posted: TwoLapas, ws: Workspace, database: RoleUrls
) -> None:
    """finance_0006 shows lapas A an adjustment of no order on A's unallocated clearing; its item has no order key,
    and one item a page walks the same items as one page of all (the cursor is the order key and the account)."""
    await orderless_adjustment(database, accounts.unallocated_proceeds(LAPAS_A))
    lapas_a = await _client(ws, "auditor_lapas", LAPAS_A)

    walked = await _items(lapas_a, "unallocated")
    whole = (await _ok(lapas_a, "/api/v1/items/unallocated", limit=500))["items"]
    assert walked == whole
    assert len({(i["order_key"], i["account"]) for i in walked}) == len(walked)
    orderless = [i for i in walked if i["order_key"] is None]
    assert [i["account"] for i in orderless] == [accounts.unallocated_proceeds(LAPAS_A)]
    assert posted.unallocated_a in {i["order_key"] for i in walked}
