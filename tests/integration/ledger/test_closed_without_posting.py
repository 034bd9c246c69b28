"""Refunds of orders that ended returned or cancelled before completion are closed without posting, through the
posting use case on the real database: they leave ``pending_events``, nothing is booked, and ``karya ledger closed``
lists them; a later refund is closed on arrival; a settlement of such an order stays parked; a completed order's
return changes nothing; redelivery changes nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from infra.db.engine import make_engine
from infra.db.roles import RoleUrls
from infra.messaging.envelope import Envelope, make_envelope
from services.contracts.orders import ORDER_CANCELLED, ORDER_RETURNED
from tests.integration import ledger_support as ls

pytestmark = pytest.mark.integration

T = datetime(2026, 5, 4, 9, tzinfo=UTC)


def ended(key: str, event_type: str = ORDER_RETURNED) -> Envelope:
    """An ``order_returned`` (or ``order_cancelled``) envelope as the orders service emits it."""
    data: dict[str, Any] = {
        "order_key": key,
        "channel": key.split(":", 1)[0],
        "lapas_id": "cipinang",
        "raw_status": "RETURNED" if event_type == ORDER_RETURNED else "CANCELLED",
        "update_time": T.isoformat(),
    }
    if event_type == ORDER_RETURNED:
        data["allocations"] = []
    else:
        data["state"] = "cancelled"
    return make_envelope(type=event_type, source="karya/orders", subject=key, data=data)


async def _pending(engine: AsyncEngine, key: str) -> list[tuple[str, str]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT event_id::text, waiting_for FROM ledger.pending_events WHERE order_key = :k ORDER BY 1"),
            {"k": key},
        )
        return [(r[0], r[1]) for r in rows]


async def _closed(urls: RoleUrls, key: str) -> list[tuple[str, str]]:
    listed = await ls.run_karya(urls, "ledger", "closed", "--json")
    assert listed.returncode == 0, listed.stderr
    return sorted((r["event_id"], r["event_type"]) for r in json.loads(listed.stdout) if r["order_key"] == key)


async def _entries(engine: AsyncEngine, key: str) -> int:
    async with engine.connect() as conn:
        return len(await ls.entries_of(conn, [key]))


async def test_a_parked_refund_is_closed_when_the_order_ends_without_completion(ledger_db: RoleUrls) -> None:
    engine = make_engine(ledger_db.service, pool_size=2)
    key = ls.new_order_key()
    refund, returned = ls.refunded(key, "R1", 40_000, T), ended(key)
    try:
        processor = ls.new_processor()
        assert await ls.post(engine, processor, [refund]) == []
        assert await _pending(engine, key) == [(str(refund.event_id), "completion")]

        assert await ls.post(engine, processor, [returned]) == []
        assert await _pending(engine, key) == []
        assert await _closed(ledger_db, key) == sorted(
            [(str(refund.event_id), refund.type), (str(returned.event_id), ORDER_RETURNED)]
        )
        assert await _entries(engine, key) == 0  # nothing booked, nothing reversed

        # Redelivered (both, in one batch): still nothing parked, posted or closed twice.
        assert await ls.post(engine, processor, [refund, returned]) == []
        assert await _pending(engine, key) == []
        assert len(await _closed(ledger_db, key)) == 2 and await _entries(engine, key) == 0

        # A refund that arrives after the end is closed on arrival; a settlement (money did arrive) stays parked.
        late, settlement = ls.refunded(key, "R2", 10_000, T), ls.settled(key, 40_000, T)
        assert await ls.post(engine, processor, [late, settlement]) == []
        assert await _pending(engine, key) == [(str(settlement.event_id), "completion")]
        assert (str(late.event_id), late.type) in await _closed(ledger_db, key)
        assert await _entries(engine, key) == 0
    finally:
        await engine.dispose()


async def test_a_cancellation_in_the_same_batch_closes_the_refund(ledger_db: RoleUrls) -> None:
    engine = make_engine(ledger_db.service, pool_size=2)
    key = ls.new_order_key("tokopedia")
    refund, cancelled = ls.refunded(key, "R1", 25_000, T), ended(key, ORDER_CANCELLED)
    try:
        assert await ls.post(engine, ls.new_processor(), [refund, cancelled]) == []
        assert await _pending(engine, key) == []
        assert await _closed(ledger_db, key) == sorted(
            [(str(refund.event_id), refund.type), (str(cancelled.event_id), ORDER_CANCELLED)]
        )
    finally:
        await engine.dispose()


async def test_a_completed_orders_return_changes_nothing(ledger_db: RoleUrls) -> None:
    engine = make_engine(ledger_db.service, pool_size=2)
    key = ls.new_order_key()
    batch = ls.Batch(f"B-{key[-8:]}", "CPN-WDW-001", "cipinang", 3, 40_000, 10_000, "sup-kayu", ((ls.new_inmate(), 1),))
    try:
        processor = ls.new_processor()
        assert await ls.post(engine, processor, [ls.completed(key, [batch], T), ls.settled(key, 120_000, T)]) == []
        before = await _entries(engine, key)
        assert await ls.post(engine, processor, [ended(key)]) == []
        assert await _closed(ledger_db, key) == [] and await _pending(engine, key) == []
        assert await _entries(engine, key) == before
        # Its refund is still posted the ordinary way (a reversal), not closed.
        assert await ls.post(engine, processor, [ls.refunded(key, "R1", 40_000, T)]) == []
        assert await _closed(ledger_db, key) == [] and await _entries(engine, key) > before
    finally:
        await engine.dispose()
