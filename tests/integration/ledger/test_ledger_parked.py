"""Parked events are visible: a settlement or refund for an order the ledger has not seen completed is counted by
the ``karya_ledger_parked_*`` gauges with its age, and listed by ``karya ledger pending``."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import text

from infra.db.engine import make_engine
from infra.settings import KafkaSettings
from services.ledger.app import SCHEMA, build_runtime
from services.ledger.outbound import LedgerTopics
from services.ledger.parked import ParkedGauges
from tests.integration.ledger_support import (
    Batch,
    LedgerDatabase,
    completed,
    new_inmate,
    new_order_key,
    new_processor,
    post,
    refunded,
    run_karya,
    settled,
)

pytestmark = pytest.mark.integration

T = datetime(2026, 5, 4, 9, tzinfo=UTC)
TWO_DAYS = 2 * 86_400


def _sample(registry: CollectorRegistry, name: str, waiting_for: str) -> float:
    value = registry.get_sample_value(name, {"waiting_for": waiting_for})
    assert value is not None, f"{name}{{waiting_for={waiting_for}}} is not exported"
    return value


async def test_settlements_for_unknown_orders_are_counted_and_listed_with_their_age(
    own_database: LedgerDatabase,
) -> None:
    db = own_database
    engine = make_engine(db.urls.service, pool_size=2)
    owner = make_engine(db.urls.migrator, pool_size=1)
    registry = CollectorRegistry()
    gauges = ParkedGauges(registry)
    key, other = new_order_key(), new_order_key("tokopedia")
    old_settlement, refund, fresh_settlement = (
        settled(key, 120_000, T),
        refunded(key, "R1", 10_000, T),
        settled(other, 50_000, T),
    )
    try:
        for waiting_for in ("completion", "settlement", "allocation", "distribution"):  # exported before any refresh
            assert _sample(registry, "karya_ledger_parked_events", waiting_for) == 0
        processor = new_processor()
        for envelope in (old_settlement, refund, fresh_settlement):  # one batch each: parked in this order
            assert await post(engine, processor, [envelope]) == []
        async with owner.begin() as conn:  # the first settlement has waited two days
            await conn.execute(
                text("UPDATE ledger.pending_events SET received_at = now() - interval '2 days' WHERE event_id = :e"),
                {"e": old_settlement.event_id},
            )

        await gauges.refresh(engine, SCHEMA)
        assert _sample(registry, "karya_ledger_parked_events", "completion") == 3
        assert _sample(registry, "karya_ledger_parked_events", "settlement") == 0
        assert _sample(registry, "karya_ledger_parked_oldest_age_seconds", "completion") >= TWO_DAYS
        assert _sample(registry, "karya_ledger_parked_oldest_age_seconds", "settlement") == 0
        # nothing waits for a distribution: the series exists at 0 (restocks park under it)
        assert _sample(registry, "karya_ledger_parked_events", "distribution") == 0
        assert _sample(registry, "karya_ledger_parked_oldest_age_seconds", "distribution") == 0

        listed = await run_karya(db.urls, "ledger", "pending", "--json")
        assert listed.returncode == 0, listed.stderr
        rows = json.loads(listed.stdout)
        assert [(r["event_id"], r["order_key"], r["waiting_for"]) for r in rows] == [
            (str(old_settlement.event_id), key, "completion"),
            (str(refund.event_id), key, "completion"),
            (str(fresh_settlement.event_id), other, "completion"),
        ]
        assert rows[0]["age_seconds"] >= TWO_DAYS and rows[2]["age_seconds"] < TWO_DAYS
        assert rows[0]["type"] == old_settlement.type and rows[1]["type"] == refund.type

        old = await run_karya(db.urls, "ledger", "pending", "--older-than", "1d")
        assert old.returncode == 0, old.stderr
        assert key in old.stdout and other not in old.stdout
        assert "2d" in old.stdout and "1 parked for longer than 1d" in old.stdout
        bad = await run_karya(db.urls, "ledger", "pending", "--older-than", "yesterday")
        assert bad.returncode == 2 and "not a duration" in bad.stderr

        # The order completes: its settlement posts, its refund now waits for nothing (posted too).
        batch = Batch(f"B-{key[-8:]}", "CPN-WDW-001", "cipinang", 3, 40_000, 10_000, "sup-kayu", ((new_inmate(), 1),))
        assert await post(engine, processor, [completed(key, [batch], T)]) == []
        await gauges.refresh(engine, SCHEMA)
        assert _sample(registry, "karya_ledger_parked_events", "completion") == 1
        assert _sample(registry, "karya_ledger_parked_oldest_age_seconds", "completion") < TWO_DAYS
        left = json.loads((await run_karya(db.urls, "ledger", "pending", "--json")).stdout)
        assert [r["event_id"] for r in left] == [str(fresh_settlement.event_id)]
    finally:
        await owner.dispose()
        await engine.dispose()


def test_the_ledger_service_exports_the_parked_gauges() -> None:
    runtime = build_runtime(
        make_engine("postgresql+asyncpg://nobody@127.0.0.1:1/none"),  # never connected
        KafkaSettings(bootstrap_servers="x:1"),
        topics=LedgerTopics(),
    )
    names = {m.name for m in runtime.metrics.registry.collect()}
    assert {"karya_ledger_parked_events", "karya_ledger_parked_oldest_age_seconds"} <= names
    assert "parked-gauges" in runtime.supervisor.names
