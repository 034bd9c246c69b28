"""Chain verifications started from the workspace's chain page (``services/finance/jobs.py``), on a database of
the test's own: the page shows the segment heads and the latest anchor; an auditor's run completes intact with the
root of the heads the ledger holds and the latest anchor; after an entry or an anchor is altered behind the ledger's
back (as superuser, triggers off, as in test_chain_watch) a run names the first broken link or anchor;
a second start while one runs is refused; the start needs an auditor and the form's CSRF token."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from infra.db.engine import make_engine
from services.finance.jobs import ChainJobs, VerificationBusy
from services.finance.scope import StaticViewer
from services.ledger.chain_anchor import take_anchor
from services.ledger.domain.anchors import ChainAnchor
from tests.conftest import Services
from tests.integration import ledger_support as ledger
from tests.integration.finance_auth_support import Workspace, csrf_of, workspace
from tests.integration.finance_export_support import record_run

pytestmark = pytest.mark.integration

T = datetime(2026, 4, 1, 10, tzinfo=UTC)


@pytest.fixture
async def own(services: Services) -> AsyncIterator[ledger.LedgerDatabase]:
    """A database of the test's own (its chain gets broken), with one order completed and settled."""
    async with ledger.fresh_database(services.admin_url) as db:
        engine = make_engine(db.urls.service, pool_size=1)
        try:
            key = ledger.new_order_key()
            batch = ledger.Batch(
                "B-CPN-GLV-1", "CPN-GLV-001", "cipinang", 2, 30_000, 8_000, "sup-benang", ((ledger.new_inmate(), 2),)
            )
            processor = ledger.new_processor()
            assert (
                await ledger.post(
                    engine, processor, [ledger.completed(key, [batch], T), ledger.settled(key, 60_000, T)]
                )
                == []
            )
        finally:
            await engine.dispose()
        yield db


@pytest.fixture
async def ws(own: ledger.LedgerDatabase) -> AsyncIterator[Workspace]:
    """The workspace on that database, as ``karya serve finance`` runs it (the finance role)."""
    async with workspace(own.urls.finance) as made:
        yield made


async def _ledger_head(db: ledger.LedgerDatabase) -> tuple[int, str]:
    engine = make_engine(db.urls.service, pool_size=1)
    try:
        async with engine.connect() as conn:
            row = (await conn.execute(text("SELECT sequence, hash FROM ledger.chain_head"))).one()
            return int(row.sequence), str(row.hash)
    finally:
        await engine.dispose()


def _jobs(ws: Workspace) -> ChainJobs:
    jobs: ChainJobs = ws.app.state.chain_jobs
    return jobs


async def _take_anchor(db: ledger.LedgerDatabase) -> ChainAnchor:
    engine = make_engine(db.urls.service, pool_size=1)
    try:
        async with engine.begin() as conn:
            taken = await take_anchor(ledger.ledger_uow(conn), "manual", datetime.now(UTC))
            assert taken is not None
            return taken
    finally:
        await engine.dispose()


async def test_a_run_is_intact_with_the_ledgers_head_then_names_the_first_broken_link(
    own: ledger.LedgerDatabase, ws: Workspace
) -> None:
    user, password = await ws.account("auditor_lapas", "kerobokan")  # another lapas: the result is still global
    client = await ws.signed_in(user, password)
    page = await client.get("/chain")
    assert page.status_code == 200 and 'id="start"' in page.text
    assert 'id="latest-anchor"><em>' in page.text, "no anchor yet"
    anchor = await _take_anchor(own)
    page = await client.get("/chain")
    assert f'<span id="anchor-no">{anchor.anchor_no}</span> <code id="anchor-hash">{anchor.anchor_hash}</code>' in (
        page.text
    )
    for shown_head in anchor.heads:  # nothing posted since: the heads now are the anchor's
        assert f"<td>{shown_head.segment}</td>" in page.text and f"<code>{shown_head.hash}</code>" in page.text

    started = await client.post("/chain/verify", data={"csrf_token": csrf_of(page.text)})
    assert started.status_code == 303
    await _jobs(ws).wait()
    sequence, head = await _ledger_head(own)
    [run] = await _jobs(ws).history()
    assert (run["state"], run["entries"], run["head_hash"], run["first_broken"]) == ("ok", sequence, head, None)
    assert (run["anchors"], run["latest_anchor"], run["latest_anchor_hash"]) == (1, 1, anchor.anchor_hash)
    assert head == anchor.heads_root, "the root of the heads the run verified is the one the anchor pinned"
    assert run["started_by"] == user.name
    shown = (await client.get("/chain")).text
    assert head in shown and "run-ok" in shown

    # an entry altered behind the ledger's back: the next run names it
    await ledger.as_superuser(
        own.admin_url, "UPDATE ledger.journal_entries SET memo = memo || ' (x)' WHERE sequence = 2"
    )
    run_id = await _jobs(ws).start(StaticViewer(user.name, user.role, user.lapas_scope))
    with pytest.raises(VerificationBusy):  # one at a time: the first is still running or recording
        await _jobs(ws).start(StaticViewer(user.name, user.role, user.lapas_scope))
    await _jobs(ws).wait()
    latest = (await _jobs(ws).history())[0]
    assert (latest["id"], latest["state"], latest["first_broken"]) == (run_id, "broken", 2)
    assert "does not match its hash" in latest["problem"]
    assert "run-broken" in (await client.get("/chain")).text


async def test_a_run_names_a_broken_anchor(own: ledger.LedgerDatabase, ws: Workspace) -> None:
    user, password = await ws.account("auditor_pusat")
    client = await ws.signed_in(user, password)
    assert (await client.get("/chain")).status_code == 200  # the app's jobs are made on first use
    await _take_anchor(own)
    await _take_anchor(own)
    await ledger.as_superuser(own.admin_url, "UPDATE ledger.chain_anchors SET reason = 'interval' WHERE anchor_no = 2")
    await _jobs(ws).start(StaticViewer(user.name, user.role, user.lapas_scope))
    await _jobs(ws).wait()
    [run] = await _jobs(ws).history()
    assert (run["state"], run["first_broken"], run["first_broken_anchor"], run["latest_anchor"]) == (
        "broken",
        None,
        2,
        1,
    )
    assert run["problem"].startswith("anchor 2 does not match its hash")
    shown = (await client.get("/chain")).text
    assert "run-broken" in shown and "anchor 2 does not match its hash" in shown
    # no entry is broken, yet the dashboard's last verification is broken, naming the anchor
    verified = _dashboard_verification((await client.get("/dashboard")).text)
    assert "OK" not in verified and "✗" in verified and "anchor 2 does not match its hash" in verified


async def test_a_run_broken_at_link_0_names_its_anchor_not_an_entry(ws: Workspace) -> None:
    """A run broken by an anchor alone that went through finance_0010's downgrade and back: link 0 (no entry), the
    anchor named in its problem only."""
    await record_run(ws.app.state.db, first_broken=0, problem="anchor 3 does not match its hash")
    client = await ws.signed_in(*await ws.account("auditor_pusat"))
    shown = (await client.get("/chain")).text
    assert "run-broken" in shown and "anchor 3 does not match its hash" in shown
    assert 'href="/journal/0"' not in shown, "link 0 is no entry"
    verified = _dashboard_verification((await client.get("/dashboard")).text)
    assert "OK" not in verified and "✗" in verified and "anchor 3 does not match its hash" in verified


def _dashboard_verification(html: str) -> str:
    """The dashboard's line on the latest verification."""
    return html.split('<p id="chain-verified">', 1)[1].split("</p>", 1)[0]


async def test_starting_needs_an_auditor_and_the_csrf_token(ws: Workspace) -> None:
    auditor = await ws.signed_in(*await ws.account("auditor_pusat"))
    assert (await auditor.post("/chain/verify", data={})).status_code == 403
    treasurer = await ws.signed_in(*await ws.account("bendahara", "cipinang"))
    page = await treasurer.get("/chain")
    assert page.status_code == 200 and 'id="start"' not in page.text
    assert (await treasurer.post("/chain/verify", data={"csrf_token": csrf_of(page.text)})).status_code == 403
    assert await _jobs(ws).history() == [], "no run was recorded"
