"""Regression tests for what the state machine found in ``LedgerProcessor``: refunds repeated or changed
within one batch, refund conflicts recorded like settlement conflicts, settlements that cannot be
distributed (posted half, or lost when they had been parked)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client import Counter as PromCounter
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from infra.db.engine import make_engine
from infra.db.roles import RoleUrls
from infra.messaging.envelope import make_envelope
from services.ledger.adapters.policy_repo import store_policies
from services.ledger.domain.policy_file import parse_policies
from tests.integration.ledger_support import (
    Batch,
    completed,
    ledger_uow,
    new_inmate,
    new_order_key,
    new_processor,
    post,
    refunded,
    reissued,
    settled,
    uid,
)

pytestmark = pytest.mark.integration

T = datetime(2026, 5, 20, 8, tzinfo=UTC)


@pytest.fixture
async def engine(ledger_db: RoleUrls) -> AsyncIterator[AsyncEngine]:
    """The service role on the session database."""
    engine = make_engine(ledger_db.service, pool_size=1)
    yield engine
    await engine.dispose()


def _order(lapas: str = "sukamiskin", sku: str = "SMK-BTK-001") -> tuple[str, list[Batch]]:
    key = new_order_key()
    return key, [Batch(f"B-{key[-8:]}", sku, lapas, 3, 70_000, 15_000, "sup-kain", ((new_inmate(), 1),))]


async def _facts(engine: AsyncEngine, key: str) -> tuple[int, list[str]]:
    """(refunded gross in the order's facts, its posting keys)."""
    async with engine.connect() as conn:
        refunded_gross = (
            await conn.execute(text("SELECT refunded_gross FROM ledger.order_facts WHERE order_key = :k"), {"k": key})
        ).scalar_one()
        keys = (
            await conn.execute(
                text("SELECT posting_key FROM ledger.journal_entries WHERE order_key = :k ORDER BY sequence"),
                {"k": key},
            )
        ).scalars()
        return int(refunded_gross), [k.removeprefix(f"{key}:") for k in keys]


async def test_refund_twice_in_one_batch_counts_once(engine: AsyncEngine) -> None:
    key, batches = _order()
    processor = new_processor()
    assert await post(engine, processor, [completed(key, batches, T), settled(key, 210_000, T)]) == []
    first = refunded(key, "R1", 60_000, T)
    assert await post(engine, processor, [first, reissued(first), reissued(first)]) == []
    assert await _facts(engine, key) == (
        60_000,
        [
            "completed",
            "settlement:ESC-1",
            f"distribution:{batches[0].batch_id}",
            "refund:R1",
            f"refund:R1:B-{key[-8:]}",
        ],
    )
    # the rest of the order can still be refunded: the facts did not count the copies
    assert await post(engine, processor, [refunded(key, "R2", 150_000, T)]) == []
    assert (await _facts(engine, key))[0] == 210_000


async def test_changed_refund_is_a_recorded_conflict_before_and_after_posting(engine: AsyncEngine) -> None:
    key, batches = _order()
    alerts = PromCounter("karya_ledger_posting_conflicts_total", "conflicts", registry=CollectorRegistry())
    processor = new_processor(alerts)
    assert await post(engine, processor, [completed(key, batches, T), settled(key, 210_000, T)]) == []
    original = refunded(key, "R1", 60_000, T)
    in_same_batch = make_envelope(
        type=original.type, source="karya/gateway", subject=key, data={**original.data, "amount": 61_000}
    )
    later = make_envelope(
        type=original.type, source="karya/gateway", subject=key, data={**original.data, "amount": 59_000}
    )
    assert await post(engine, processor, [original, in_same_batch]) == [
        f"posting conflict on {key}:refund:R1: same key, different request"
    ]
    assert await post(engine, processor, [later]) == [
        f"posting conflict on {key}:refund:R1: same key, different request"
    ]
    assert alerts._value.get() == 2
    async with engine.connect() as conn:
        recorded = (
            await conn.execute(
                text("SELECT source_event FROM ledger.posting_conflicts WHERE posting_key = :k ORDER BY id"),
                {"k": f"{key}:refund:R1"},
            )
        ).scalars()
        assert list(recorded) == [str(in_same_batch.event_id), str(later.event_id)]
    refunded_gross, keys = await _facts(engine, key)
    assert refunded_gross == 60_000
    assert keys.count("refund:R1") == 1


async def test_parked_settlement_that_cannot_be_distributed_posts_its_cash_and_holds_the_proceeds(
    engine: AsyncEngine,
) -> None:
    key, batches = _order(lapas="lapas-without-policy", sku="XYZ-001")
    processor = new_processor()
    settlement = settled(key, 210_000, T)
    assert await post(engine, processor, [settlement]) == []  # parked: waits for the completion
    assert await post(engine, processor, [completed(key, batches, T)]) == [], "money that arrived is no dead letter"
    async with engine.connect() as conn:
        waiting = (
            await conn.execute(text("SELECT count(*) FROM ledger.pending_events WHERE order_key = :k"), {"k": key})
        ).scalar_one()
        hold = (
            await conn.execute(
                text("SELECT settlement->>'hold' FROM ledger.order_facts WHERE order_key = :k"), {"k": key}
            )
        ).scalar_one()
    assert waiting == 0
    assert hold.startswith("NoPolicyError: no split policy in force for lapas")
    assert (await _facts(engine, key))[1] == ["completed", "settlement:ESC-1"]


async def test_settlement_held_for_want_of_a_policy_is_distributed_when_replayed_after_the_policy_load(
    engine: AsyncEngine,
) -> None:
    lapas = f"lapas-{uid()}"
    key, batches = _order(lapas=lapas, sku="ABC-001")
    processor = new_processor()
    settlement = settled(key, 210_000, T)
    assert await post(engine, processor, [completed(key, batches, T), settlement]) == []
    assert (await _facts(engine, key))[1] == ["completed", "settlement:ESC-1"], "cash posted, distribution held"
    # a person loads the lapas' policy, then replays the settlement
    policy = {
        "policy_id": lapas, "version": 1, "lapas_id": lapas, "effective_from": "2026-01-01T00:00:00+07:00",
        "rules": [{"target": "pnbp", "share": "1/2"}, {"target": "inmate_premi", "share": "1/4"},
                  {"target": "production_capital", "share": "1/4"}],
    }  # fmt: skip
    async with engine.begin() as conn:
        await store_policies(ledger_uow(conn), parse_policies([policy], "test"))
    assert await post(engine, processor, [reissued(settlement)]) == []
    assert (await _facts(engine, key))[1] == [
        "completed",
        "settlement:ESC-1",
        "release:s1",
        f"distribution:{batches[0].batch_id}",
    ]
    assert await post(engine, processor, [reissued(settlement)]) == []  # distributed: nothing more
    assert len((await _facts(engine, key))[1]) == 4
