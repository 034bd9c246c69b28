"""Bad input gets a clear error and loses nothing (issue 15, the last acceptance bullet), on the real PostgreSQL:

1. a refund larger than what is left of the order, through the ledger's real consumer and broker: refused
   (``refund_within_gross``), dead-lettered with its original bytes and the reason, the journal unchanged; and
   one netted in the escrow, through the Kafka handler: refused before it grosses the distribution up;
2. ``karya ledger allocate`` of a batch made in another lapas: refused (``same_lapas``), nothing posted, the order
   still in unallocated proceeds;
3. an approval by the proposer: refused (``four_eyes``), the proposal still open for another person;
4. a revert of a revert: refused (``no_revert_of_revert``), nothing proposed.

The commands a person runs go through ``karya ledger`` in process (Typer's runner, the root passed as ``obj``)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from infra.db.engine import make_engine
from infra.db.roles import RoleUrls
from infra.messaging.topics import dead_letter_topic
from tests.integration.ledger.scenario_support import T, add_batch, completed_without_allocation, journal_of
from tests.integration.ledger.test_corrections import completed_order, entry, karya, kind_of, proposal_id
from tests.integration.ledger.test_ledger_broker import ledger_consumer
from tests.integration.ledger.test_scenario_refunds import line_refund
from tests.integration.ledger_support import (
    Batch,
    LedgerDatabase,
    completed,
    new_inmate,
    new_order_key,
    new_processor,
    post,
    publish,
    refunded,
    settled,
    uid,
)
from tests.integration.messaging_support import read_topic, wait_for

pytestmark = pytest.mark.integration


async def _count(engine: AsyncEngine, sql: str, **params: object) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text(sql), params)).scalar_one())


@pytest.fixture
async def engine(ledger_db: RoleUrls) -> AsyncIterator[AsyncEngine]:
    """The service role on the session database."""
    engine = make_engine(ledger_db.service, pool_size=2)
    yield engine
    await engine.dispose()


async def test_a_refund_larger_than_what_is_left_is_dead_lettered_whole_and_posts_nothing(
    own_database: LedgerDatabase, kafka_bootstrap: str
) -> None:
    engine = make_engine(own_database.urls.service, pool_size=2)
    key = new_order_key()
    batch = Batch(f"B-R-{uid()}", "SMK-BTK-001", "sukamiskin", 3, 100_000, 20_000, "sup-kain", ((new_inmate(), 1),))
    first, too_much = refunded(key, "RF-1", 200_000, T), refunded(key, "RF-2", 150_000, T)  # 100,000 left
    try:
        async with ledger_consumer(own_database, kafka_bootstrap) as ledger:
            await publish(kafka_bootstrap, ledger.orders_topic, [completed(key, [batch], T)])
            await publish(kafka_bootstrap, ledger.settlements_topic, [settled(key, 300_000, T), first])

            async def first_refund_posted() -> bool:
                return f"refund:RF-1:{batch.batch_id}" in await journal_of(engine, key)

            await wait_for(first_refund_posted, what="the first refund posted")
            before = await journal_of(engine, key)
            landed = await publish(kafka_bootstrap, ledger.settlements_topic, [too_much])
            (dead,) = await read_topic(kafka_bootstrap, dead_letter_topic(ledger.settlements_topic), expected=1)
        headers = dict(dead.headers)
        assert (dead.value, dead.key) == (too_much.to_bytes(), key.encode()), "the original bytes, under its key"
        assert headers["karya-dlq-origin"] == landed[0].encode()
        reason = headers["karya-dlq-error"].decode()
        assert "refund refused (refund_within_gross)" in reason, reason
        assert "refund RF-2 of 150000 brings refunds to 350000, more than the gross 300000 (100000 left)" in reason
        async with engine.connect() as conn:
            stored = (await conn.execute(text("SELECT event_id, error FROM ledger.dead_letters"))).one()
            refunded_gross = await conn.execute(
                text("SELECT refunded_gross FROM ledger.order_facts WHERE order_key = :k"), {"k": key}
            )
            assert refunded_gross.scalar_one() == 200_000
        assert stored.event_id == too_much.event_id and "(refund_within_gross)" in stored.error
        assert await journal_of(engine, key) == before, "the journal did not change"
        assert await _count(engine, "SELECT count(*) FROM ledger.pending_events") == 0, "nor does it wait"
    finally:
        await engine.dispose()


async def test_allocating_a_batch_of_another_lapas_is_refused_and_the_order_stays_unallocated(
    ledger_db: RoleUrls, engine: AsyncEngine
) -> None:
    key, elsewhere = new_order_key(), f"B-CPN-{uid()}"
    await add_batch(engine, elsewhere, "cipinang", f"CPN-T{uid()}", produced=5, unit_price=100_000,
                    unit_material_cost=30_000, supplier="sup-kain", work_group=[(new_inmate(), 1)])  # fmt: skip
    envelopes = [completed_without_allocation(key, "sukamiskin", 200_000), settled(key, 200_000, T)]
    assert await post(engine, new_processor(), envelopes) == []
    before = await journal_of(engine, key)
    assert set(before) == {"completed", "settlement:ESC-1"}

    refused = await karya(ledger_db, "ani", "allocate", key, "--batch", f"{elsewhere}:2")
    assert refused.exit_code == 1, refused.output
    assert (
        f"allocation refused (same_lapas): batch {elsewhere} was made in lapas cipinang, order {key} was sold for "
        "lapas sukamiskin"
    ) in refused.output
    assert await journal_of(engine, key) == before, "nothing posted"
    listed = await karya(ledger_db, "ani", "unallocated", "--json")
    assert listed.exit_code == 0, listed.output
    [row] = [r for r in json.loads(listed.output) if r["order_key"] == key]
    assert (row["lapas_id"], row["held"]) == ("sukamiskin", 200_000), "still in unallocated proceeds"


async def test_an_approval_by_the_proposer_is_refused_and_the_proposal_waits_for_another(
    ledger_db: RoleUrls, engine: AsyncEngine
) -> None:
    key = await completed_order(engine)
    async with engine.connect() as conn:
        original = await kind_of(conn, key, "sale_completed")
    proposed = await karya(ledger_db, "ani", "revert", original, "--reason", "posted in error")
    assert proposed.exit_code == 0, proposed.output
    pid = proposal_id(proposed.output)

    own = await karya(ledger_db, "ani", "approve", pid)
    assert own.exit_code == 1 and f"approval of proposal {pid} refused (four_eyes)" in own.output, own.output
    async with engine.connect() as conn:
        assert await entry(conn, f"revert:{original}") is None, "nothing posted"
    waiting = json.loads((await karya(ledger_db, "ani", "proposals", "--json")).output)
    assert pid in {str(p["proposal_id"]) for p in waiting}, "still open: not lost"
    approved = await karya(ledger_db, "budi", "approve", pid)
    assert approved.exit_code == 0 and f"posted revert:{original}" in approved.output, approved.output


async def test_a_revert_of_a_revert_is_refused_and_nothing_is_proposed(
    ledger_db: RoleUrls, engine: AsyncEngine
) -> None:
    key = await completed_order(engine)
    async with engine.connect() as conn:
        original = await kind_of(conn, key, "sale_completed")
    pid = proposal_id((await karya(ledger_db, "ani", "revert", original, "--reason", "wrong order")).output)
    assert (await karya(ledger_db, "budi", "approve", pid)).exit_code == 0
    before = await journal_of(engine, key)
    proposals = "SELECT count(*) FROM ledger.correction_proposals WHERE target LIKE :k"
    count = await _count(engine, proposals, k=f"%{key}%")

    undo = await karya(ledger_db, "citra", "revert", f"revert:{original}", "--reason", "undo the undo")
    assert undo.exit_code == 1 and "(no_revert_of_revert)" in undo.output, undo.output
    assert await _count(engine, proposals, k=f"%{key}%") == count == 1, "nothing proposed"
    assert await journal_of(engine, key) == before, "nothing posted"


async def _facts(engine: AsyncEngine, key: str) -> tuple[object, ...]:
    async with engine.connect() as conn:
        row = await conn.execute(
            text("SELECT refunded_gross, settlement FROM ledger.order_facts WHERE order_key = :k"), {"k": key}
        )
        return tuple(row.one())


async def test_a_netted_refund_larger_than_what_is_left_grosses_nothing_up(engine: AsyncEngine) -> None:
    """A refund netted in the escrow first grosses the distribution up by its cash; refused, it must not: the
    escrow paid 200,000 of the 274,500 it owed (74,500 in suspense), so a gross-up would distribute cash that never
    came. Through the Kafka handler as the consumer calls it."""
    key = new_order_key()
    batch = Batch(f"B-N-{uid()}", "SMK-BTK-001", "sukamiskin", 3, 100_000, 20_000, "sup-kain", ((new_inmate(), 1),))
    processor = new_processor()
    assert await post(engine, processor, [completed(key, [batch], T), settled(key, 300_000, T, net=200_000)]) == []
    assert await post(engine, processor, [refunded(key, "RF-1", 250_000, T)]) == []
    before, facts = await journal_of(engine, key), await _facts(engine, key)
    netted = line_refund(key, "RF-2", 100_000, [("SMK-BTK-001", 1, 100_000)], netted_in_settlement=True)
    (reason,) = await post(engine, processor, [netted])
    assert "refund refused (refund_within_gross)" in reason and "(50000 left)" in reason, reason
    assert await journal_of(engine, key) == before, "no distribution of the netted cash"
    assert await _facts(engine, key) == facts, "no settlement of the netted cash in the order's facts"
