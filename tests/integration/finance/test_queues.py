"""The work queues over HTTP on the real database: a bendahara of lapas A allocates an order of A (the ledger's own
use case posts the distribution), gets 404 for an order of lapas B, proposes a revert that they cannot approve
themselves (the page names ``four_eyes``) and another bendahara approves; an auditor sees the queues and gets 403
on every action; a form without its CSRF token is a 403; each action is in the audit log, one that fails too. A
proposal touching lapas B (a revert of B's entry, an adjustment of B's account on an order of A) is neither listed
for A's treasurer nor decided by them (404)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from infra.db.engine import make_engine
from infra.db.roles import RoleUrls
from infra.db.unit_of_work import UnitOfWork
from services.finance.auth import audit
from services.finance.web import queues as queues_web
from services.finance.web.queues import install_ledger_writer
from services.ledger import corrections
from services.ledger.outbound import LedgerTopics
from tests.integration.finance_auth_support import Workspace, csrf_of, workspace
from tests.integration.ledger.scenario_support import T, add_batch, completed_without_allocation, journal_of
from tests.integration.ledger_support import (
    ledger_uow,
    load_demo_policies,
    new_inmate,
    new_order_key,
    new_processor,
    post,
    settled,
    uid,
)

pytestmark = pytest.mark.integration

LAPAS_A, LAPAS_B = "cipinang", "kerobokan"


@dataclass(frozen=True)
class Waiting:
    """An order of each lapas whose proceeds wait in unallocated, and a batch of lapas A to allocate to."""

    order_a: str
    order_b: str
    batch_a: str


async def waiting_orders(database: RoleUrls) -> Waiting:
    """Two settled orders without batches (lapas A and B) and a production batch of lapas A in the catalogue."""
    await load_demo_policies(database.service)
    engine, owner = make_engine(database.service, pool_size=1), make_engine(database.migrator, pool_size=1)
    order_a, order_b, batch = new_order_key(), new_order_key(), f"B-Q-{uid()}"
    try:
        await add_batch(owner, batch, LAPAS_A, f"Q-{uid()}", produced=2, unit_price=100_000,
                        unit_material_cost=30_000, supplier="sup-kain", work_group=[(new_inmate(), 1)])  # fmt: skip
        fees = {"commission_fee": 12_000, "service_fee": 4_000}
        for key, lapas in ((order_a, LAPAS_A), (order_b, LAPAS_B)):
            events = [completed_without_allocation(key, lapas, 200_000), settled(key, 200_000, T, fees=fees)]
            assert await post(engine, new_processor(), events) == []
    finally:
        await owner.dispose()
        await engine.dispose()
    return Waiting(order_a, order_b, batch)


@pytest.fixture(scope="module")
async def waiting(database: RoleUrls) -> Waiting:
    """The orders and batch of :func:`waiting_orders`, once for this module."""
    return await waiting_orders(database)


@pytest.fixture
async def service(database: RoleUrls) -> AsyncIterator[AsyncEngine]:
    """The service-role engine the queues write the ledger with (as the composition root installs it)."""
    engine = make_engine(database.service, pool_size=2)
    yield engine
    await engine.dispose()


@pytest.fixture
async def ws(database: RoleUrls, service: AsyncEngine) -> AsyncIterator[Workspace]:
    """The workspace as the finance role, with the ledger writer installed."""
    async with workspace(database.finance) as made:
        install_ledger_writer(made.app, service, LedgerTopics(), {"ledger": "ledger", "orders": "orders"})
        yield made


async def _client(ws: Workspace, role: str, lapas: str | None = LAPAS_A) -> tuple[httpx.AsyncClient, str, str]:
    """A signed-in client of a new ``role`` account, its name and the page's CSRF token."""
    user, password = await ws.account(role, lapas)
    client = await ws.signed_in(user, password)
    page = await client.get("/queues")
    assert page.status_code == 200, page.text
    return client, user.name, csrf_of(page.text)


def _refused(response: httpx.Response, rule: str) -> bool:
    """Whether the page shows the refusal naming ``rule`` as its error message (the page itself answers 200)."""
    found = re.search(r'<p id="message" class="error"[^>]*>([^<]*)</p>', response.text)
    return response.status_code == 200 and found is not None and rule in found.group(1)


async def _audited(ws: Workspace, actor: str) -> list[tuple[str, str]]:
    async with ws.db.read() as uow:
        return [(r.action, r.subject) for r in await audit.recent(uow, actor=actor)]


async def test_a_bendahara_allocates_an_order_of_their_lapas_only(
    waiting: Waiting, ws: Workspace, service: AsyncEngine
) -> None:
    client, name, token = await _client(ws, "bendahara")
    listed = (await client.get("/queues")).text
    assert waiting.order_a in listed and waiting.order_b not in listed

    outside = {"csrf_token": token, "order_key": waiting.order_b, "batches": f"{waiting.batch_a}:2"}
    assert (await client.post("/queues/allocate", data=outside)).status_code == 404
    too_many = {"csrf_token": token, "order_key": waiting.order_a, "batches": f"{waiting.batch_a}:3"}
    refused = await client.post("/queues/allocate", data=too_many)
    assert _refused(refused, "quantity_fits")
    done = await client.post("/queues/allocate", data=too_many | {"batches": f"{waiting.batch_a}:2"})

    assert done.status_code == 200 and f"allocated {waiting.order_a}: posted" in done.text, done.text
    journal = await journal_of(service, waiting.order_a)
    assert {"release:s1", f"distribution:{waiting.batch_a}"} <= set(journal)
    assert all(sum(a for _, s, a in lines if s == "D") == sum(a for _, s, a in lines if s == "C")
               for lines in journal.values())  # fmt: skip
    assert ("allocate", waiting.order_a) in await _audited(ws, name)
    assert not any(s == waiting.order_b for _, s in await _audited(ws, name)), "a 404 writes nothing"


async def test_a_revert_is_approved_by_another_bendahara_not_its_proposer(
    waiting: Waiting, ws: Workspace, service: AsyncEngine
) -> None:
    proposer, proposer_name, token = await _client(ws, "bendahara")
    key = f"{waiting.order_a}:distribution:{waiting.batch_a}"
    form = {"csrf_token": token, "order_key": waiting.order_a, "batches": f"{waiting.batch_a}:2"}
    await proposer.post("/queues/allocate", data=form)  # allocated already by the test above, or now
    proposed = await proposer.post("/queues/revert", data={"csrf_token": token, "posting_key": key, "reason": "x"})
    assert proposed.status_code == 200, proposed.text
    found = re.search(r"proposal (\d+): ", proposed.text)
    assert found is not None, proposed.text
    pid = found.group(1)
    assert f'id="proposal-{pid}"' in proposed.text

    own = await proposer.post(f"/queues/proposals/{pid}/approve", data={"csrf_token": token})
    assert _refused(own, "four_eyes")
    other, other_name, other_token = await _client(ws, "bendahara")
    outsider, _, outsider_token = await _client(ws, "bendahara", LAPAS_B)
    hidden = await outsider.post(f"/queues/proposals/{pid}/approve", data={"csrf_token": outsider_token})
    assert hidden.status_code == 404, "a proposal of lapas A is not there for B's treasurer"
    approved = await other.post(f"/queues/proposals/{pid}/approve", data={"csrf_token": other_token})

    assert approved.status_code == 200 and f"proposal {pid} approved by {other_name}" in approved.text
    assert f"revert:{key}" in await journal_of(service, waiting.order_a)
    assert ("propose_revert", key) in await _audited(ws, proposer_name)
    assert ("approve", pid) in await _audited(ws, other_name)
    assert ("approve_refused", pid) in await _audited(ws, proposer_name), "the attempt is on record"


async def test_auditors_read_the_queues_and_every_action_needs_a_treasurer_and_a_token(
    waiting: Waiting, ws: Workspace
) -> None:
    auditor, _, token = await _client(ws, "auditor_lapas")
    page = (await auditor.get("/queues")).text
    assert 'action="/queues/allocate"' not in page and waiting.order_b not in page
    form = {"csrf_token": token, "order_key": waiting.order_a, "batches": f"{waiting.batch_a}:2"}
    assert (await auditor.post("/queues/allocate", data=form)).status_code == 403
    assert (await auditor.post("/queues/proposals/1/approve", data={"csrf_token": token})).status_code == 403

    treasurer, _, _ = await _client(ws, "bendahara")
    no_token = {"order_key": waiting.order_a, "batches": f"{waiting.batch_a}:2"}
    assert (await treasurer.post("/queues/allocate", data=no_token)).status_code == 403
    assert (await treasurer.post("/queues/revert", data={"posting_key": "x", "reason": "y"})).status_code == 403


def _adjustment(order_key: str, debit: str, credit: str) -> str:
    return (
        f"order_key: {order_key}\nmemo: fee booked twice\nlines:\n"
        f"  - {{account: {debit}, debit: 1000}}\n  - {{account: {credit}, credit: 1000}}\n"
    )


async def test_an_adjustment_is_withdrawn_by_its_proposer_and_another_is_rejected_by_someone_else(
    waiting: Waiting, ws: Workspace, service: AsyncEngine
) -> None:
    lines = {a for entry in (await journal_of(service, waiting.order_a)).values() for a, _, _ in entry}
    fee = next(a for a in sorted(lines) if a.startswith("expense:marketplace_fee:"))
    receivable = next(a for a in sorted(lines) if a.startswith("asset:marketplace_receivable:"))
    proposer, _, token = await _client(ws, "bendahara")
    other, _, other_token = await _client(ws, "bendahara")

    def form(order_key: str, reason: str = "double fee") -> dict[str, str]:
        return {"csrf_token": token, "document": _adjustment(order_key, fee, receivable), "reason": reason}

    assert (await proposer.post("/queues/adjust", data=form(waiting.order_b))).status_code == 404
    ids = []
    for _ in range(2):
        proposed = await proposer.post("/queues/adjust", data=form(waiting.order_a))
        found = re.search(r"proposal (\d+): ", proposed.text)
        assert proposed.status_code == 200 and found is not None, proposed.text
        ids.append(found.group(1))

    withdrawn = await proposer.post(f"/queues/proposals/{ids[0]}/withdraw", data={"csrf_token": token, "reason": "no"})
    assert withdrawn.status_code == 200 and f"proposal {ids[0]} withdrawn" in withdrawn.text
    assert f'id="proposal-{ids[0]}"' not in withdrawn.text, "a closed proposal leaves the queue"
    own = await proposer.post(f"/queues/proposals/{ids[1]}/reject", data={"csrf_token": token, "reason": "no"})
    assert _refused(own, "four_eyes")
    no_reason = await other.post(f"/queues/proposals/{ids[1]}/reject", data={"csrf_token": other_token})
    assert _refused(no_reason, "reason is required")
    rejected = await other.post(
        f"/queues/proposals/{ids[1]}/reject", data={"csrf_token": other_token, "reason": "not a double fee"}
    )
    assert rejected.status_code == 200 and f"proposal {ids[1]} rejected" in rejected.text


async def test_a_queue_action_that_fails_in_the_ledger_is_on_the_audit_log(
    waiting: Waiting, ws: Workspace, service: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def crashing(*args: object, **kwargs: object) -> object:
        raise RuntimeError("the ledger's connection was lost")

    monkeypatch.setattr(queues_web, "allocate", crashing)
    client, name, token = await _client(ws, "bendahara")
    form = {"csrf_token": token, "order_key": waiting.order_a, "batches": f"{waiting.batch_a}:2"}

    with pytest.raises(RuntimeError, match="connection was lost"):
        await client.post("/queues/allocate", data=form)

    assert (await _audited(ws, name))[:2] == [
        ("allocate_failed", waiting.order_a),
        ("allocate_attempt", waiting.order_a),
    ]


async def _propose(service: AsyncEngine, propose: Callable[[UnitOfWork], Awaitable[corrections.Proposal]]) -> int:
    """A proposal made as ``karya ledger revert``/``adjust`` make it (the service role), its id."""
    async with service.begin() as conn:
        return (await propose(ledger_uow(conn))).proposal_id


async def test_a_bendahara_neither_sees_nor_decides_a_proposal_touching_another_lapas(
    waiting: Waiting, ws: Workspace, service: AsyncEngine
) -> None:
    at = datetime.now(UTC)
    settlement_b = next(k for k in await journal_of(service, waiting.order_b) if k.startswith("settlement"))
    revert_b = await _propose(service, lambda uow: corrections.propose_revert(
        uow, f"{waiting.order_b}:{settlement_b}", reason="B's", proposed_by="ani", at=at))  # fmt: skip
    into_b = {  # on an order of A, but moving lapas B's unallocated proceeds
        "order_key": waiting.order_a,
        "lines": [{"account": f"clearing:suspense:{LAPAS_A}", "debit": 500},
                  {"account": f"clearing:unallocated_proceeds:{LAPAS_B}", "credit": 500}],
    }  # fmt: skip
    adjust_b = await _propose(service, lambda uow: corrections.propose_adjustment(
        uow, into_b, "cli", reason="B's", proposed_by="ani", at=at))  # fmt: skip
    client, _, token = await _client(ws, "bendahara")
    everyone, _, _ = await _client(ws, "auditor_pusat", None)

    page = (await client.get("/queues")).text
    assert f'id="proposal-{revert_b}"' in (await everyone.get("/queues")).text, "they are open proposals"
    for pid in (revert_b, adjust_b):
        assert f'id="proposal-{pid}"' not in page
        for decision in ("approve", "reject", "withdraw"):
            form = {"csrf_token": token, "reason": "not mine"}
            response = await client.post(f"/queues/proposals/{pid}/{decision}", data=form)
            assert response.status_code == 404, (pid, decision, response.text)
    async with service.connect() as conn:
        still_open = {p.proposal_id for p in await corrections.list_open(ledger_uow(conn))}
    assert {revert_b, adjust_b} <= still_open
