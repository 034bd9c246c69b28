"""What an allocation's rerun refuses is dead-lettered with its rule, on the real database (issue 15): a restock of
a batch the order was not allocated waits parked for the distribution; when a person's allocation (``karya ledger
allocate``) or a filled backorder's ``order_allocated`` distributes the order, the rerun refuses it
(``batch_allocated``) and it becomes a dead letter — the event, an error naming the rule — instead of
waiting parked for ever; the valid restock parked beside it posts, and nothing stays parked."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from typer.testing import CliRunner

from infra.db.engine import make_engine
from infra.db.roles import RoleUrls
from infra.messaging.envelope import Envelope, make_envelope
from services.contracts.orders import UNITS_RESTOCKED
from services.ledger.cli import ledger_app
from tests.integration.ledger.scenario_support import T, add_batch, completed_without_allocation, journal_of
from tests.integration.ledger.test_person_allocation_announced import announced
from tests.integration.ledger_support import (
    inbound,
    ledger_cli_root,
    new_inmate,
    new_order_key,
    new_processor,
    post,
    settled,
    uid,
)

pytestmark = pytest.mark.integration
ORIGIN = "orders.events"


@pytest.fixture
async def engine(ledger_db: RoleUrls) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(ledger_db.service, pool_size=2)
    yield engine
    await engine.dispose()


def restocked(key: str, batch: str, restock_id: int) -> Envelope:
    """The orders service's ``units_restocked`` of 1 unit of ``key`` from ``batch``."""
    data = {"order_key": key, "restock_id": restock_id, "batch_id": batch, "quantity": 1, "restocked_at": T}
    return make_envelope(type=UNITS_RESTOCKED, source="karya/orders", subject=key, data=data)


async def _held_with_two_restocks_parked(engine: AsyncEngine, batch: str) -> tuple[str, Envelope, Envelope]:
    """An order completed without allocation and settled (held), with a restock of ``batch`` and one of a batch
    it will never be allocated both parked for the distribution: its key, the good and the wrong restock."""
    key = new_order_key()
    good, wrong = restocked(key, batch, 1), restocked(key, f"B-WRONG-{uid()}", 2)
    envelopes = [completed_without_allocation(key, "sukamiskin", 200_000), settled(key, 200_000, T)]
    processor = new_processor()
    assert await post(engine, processor, envelopes) == []
    assert await post(engine, processor, [good, wrong]) == []
    async with engine.begin() as conn:  # where the consumer claimed them (the processor alone writes no inbox row)
        claim = 'INSERT INTO ledger.inbox (consumer, event_id, topic, "partition", "offset") VALUES (:c, :e, :t, 0, :o)'
        rows = [{"c": "ledger", "e": e.event_id, "t": ORIGIN, "o": n} for n, e in enumerate((good, wrong))]
        await conn.execute(text(claim), rows)
    assert await _parked(engine, key) == {("distribution", good.event_id), ("distribution", wrong.event_id)}
    return key, good, wrong


async def test_a_filled_backorder_dead_letters_what_its_rerun_refuses(engine: AsyncEngine) -> None:
    batch = f"B-RR-{uid()}"
    key, good, wrong = await _held_with_two_restocks_parked(engine, batch)

    async with engine.begin() as conn:
        rejected = await new_processor()(conn, [inbound(announced(key, batch, 2))])
    (rejection,) = rejected
    assert rejection.event.envelope.event_id == wrong.event_id
    assert "restock refused (batch_allocated)" in rejection.reason
    # dead-lettered from where it first arrived (the inbox), carrying the event (re-encoded from the parked copy)
    delivery = rejection.event.delivery
    assert (delivery.topic, delivery.partition, delivery.offset) == (ORIGIN, 0, 1)
    assert Envelope.from_bytes(delivery.value) == Envelope.from_bytes(wrong.to_bytes())
    journal = await journal_of(engine, key)
    assert f"distribution:{batch}" in journal and f"restock:{good.data['restock_id']}" in journal
    assert f"restock:{wrong.data['restock_id']}" not in journal
    assert await _parked(engine, key) == set()


async def test_a_persons_allocation_dead_letters_what_its_rerun_refuses(
    engine: AsyncEngine, ledger_db: RoleUrls
) -> None:
    batch = f"B-RP-{uid()}"
    await add_batch(engine, batch, "sukamiskin", f"SMK-T{uid()}", produced=2, unit_price=100_000,
                    unit_material_cost=30_000, supplier="sup-kain", work_group=[(new_inmate(), 1)])  # fmt: skip
    key, good, wrong = await _held_with_two_restocks_parked(engine, batch)

    argv = ["allocate", key, "--batch", f"{batch}:2", "--as", "siti"]
    result = await asyncio.to_thread(CliRunner().invoke, ledger_app, argv, obj=ledger_cli_root(ledger_db))
    assert result.exit_code == 0, result.output
    assert "dead-lettered" in result.output and "batch_allocated" in result.output

    journal = await journal_of(engine, key)
    assert f"distribution:{batch}" in journal and f"restock:{good.data['restock_id']}" in journal
    assert await _parked(engine, key) == set()
    async with engine.connect() as conn:
        query = text(
            'SELECT consumer, topic, "partition", "offset", payload, error FROM ledger.dead_letters WHERE event_id = :e'
        )
        (dead,) = (await conn.execute(query, {"e": wrong.event_id})).all()
        inbox = await conn.execute(text("SELECT status FROM ledger.inbox WHERE event_id = :e"), {"e": wrong.event_id})
        outbox = await conn.execute(
            text("SELECT count(*) FROM ledger.outbox WHERE topic = :t AND payload = :p"),
            {"t": f"{ORIGIN}.dlq", "p": dead.payload},
        )
        assert (inbox.scalar_one(), outbox.scalar_one()) == ("dead_lettered", 1)
    assert (dead.consumer, dead.topic, dead.offset) == ("ledger", ORIGIN, 1)
    assert Envelope.from_bytes(bytes(dead.payload)) == Envelope.from_bytes(wrong.to_bytes())
    assert dead.error.startswith("rejected: RestockRefused: restock refused (batch_allocated)")


async def _parked(engine: AsyncEngine, key: str) -> set[tuple[str, object]]:
    async with engine.connect() as conn:
        query = text("SELECT waiting_for, event_id FROM ledger.pending_events WHERE order_key = :k")
        return {(r.waiting_for, r.event_id) for r in await conn.execute(query, {"k": key})}
