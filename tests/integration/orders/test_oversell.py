"""The race for the last units: two orders-service processes, 200 one-unit orders, 37 units.

Outcomes are read from what the services published on Kafka: their own relay deletes outbox rows once Kafka
acknowledged them, so the outbox holds them only while no relay has got to them yet.
"""

from __future__ import annotations

from collections import Counter
from datetime import date
from pathlib import Path

import orjson
import pytest
from aiokafka import ConsumerRecord
from sqlalchemy import text

from infra.db.engine import make_engine
from infra.db.roles import RoleUrls
from infra.db.unit_of_work import UnitOfWork
from infra.messaging.admin import ensure_topics, read_to_end
from infra.messaging.topics import topic_name
from services.orders.adapters.stock_repo import counter_drift
from services.orders.app import SCHEMA
from tests.contract_validation import validate_published
from tests.integration.messaging_support import wait_for
from tests.integration.orders_support import (
    load,
    negative_counter_rows,
    publish,
    service_processes,
    small_catalogue,
    status_event,
    uid,
)
from tests.naming import topic_prefix

pytestmark = pytest.mark.integration


async def test_oversell_race_two_processes_exactly_37_confirmed(
    kafka_bootstrap: str, database: RoleUrls, tmp_path: Path
) -> None:
    u = uid()
    prefix = topic_prefix()
    topic = topic_name("marketplace.order-events", prefix)
    outputs = [topic_name("orders.events", prefix), topic_name("orders.stock-availability", prefix)]
    await ensure_topics(kafka_bootstrap, [topic, *outputs], partitions=6)
    engine = make_engine(database.service)
    await load(engine, small_catalogue(u, [("w1", 20, date(2026, 3, 1)), ("w2", 17, date(2026, 2, 1))]))
    events = [status_event(u, f"o{i:03d}", "220", minutes=i % 5) for i in range(200)]  # Tokopedia 220: paid
    assert len({hash(e.subject) % 6 for e in events}) > 1
    await publish(kafka_bootstrap, topic, events)
    keys = [e.subject for e in events]

    ours = {k.encode() for k in keys} | {f"SKU-{u}".encode()}
    confirmed, failed = "karya.orders.reservation_confirmed.v1", "karya.orders.reservation_failed.v1"

    async def published() -> list[ConsumerRecord[bytes, bytes]]:
        """What the services published about this test's orders and SKU so far."""
        return [r for t in outputs for r in await read_to_end(kafka_bootstrap, t) if r.key in ours]

    async def outcomes() -> Counter[tuple[bytes | None, str]]:
        """Reservation outcomes published, counted per (order key, type)."""
        types = ((r.key, orjson.loads(r.value or b"")["type"]) for r in await published())
        return Counter(kt for kt in types if kt[1] in (confirmed, failed))

    async def all_decided() -> bool:
        return len(await outcomes()) >= 200

    with service_processes("orders", 2, database, kafka_bootstrap, prefix, tmp_path) as procs:
        await wait_for(all_decided, timeout=120, what="200 reservation outcomes")
        assert all(p.poll() is None for p in procs), "both consumer processes stayed up"
    try:
        decided = await outcomes()
        assert set(decided.values()) == {1}, "one outcome per order, published once"
        assert {k for k, _ in decided} == {k.encode() for k in keys}
        assert Counter(t for _, t in decided) == {confirmed: 37, failed: 163}
        async with engine.connect() as conn:
            held = (
                await conn.execute(
                    text(
                        "SELECT coalesce(sum(a.quantity), 0) FROM orders.allocations a "
                        "JOIN orders.reservations r USING (reservation_id) WHERE r.order_key = ANY(:keys) "
                        "AND r.state = 'hard'"
                    ),
                    {"keys": keys},
                )
            ).scalar_one()
            stock = (
                await conn.execute(
                    text(
                        "SELECT sum(on_hand), sum(allocated), sum(on_hand - soft_reserved - allocated) "
                        "FROM orders.batch_stock WHERE sku = :sku"
                    ),
                    {"sku": f"SKU-{u}"},
                )
            ).one()
            assert held == 37
            assert tuple(stock) == (37, 37, 0)
            assert await negative_counter_rows(conn) == 0
            assert await counter_drift(UnitOfWork(conn, SCHEMA)) == []
            # Both batches of the lapas are used up: the listing's workshop first, then the other workshop.
            per_batch: dict[str, int] = dict(
                (
                    await conn.execute(
                        text("SELECT batch_id, allocated FROM orders.batch_stock WHERE sku = :sku"), {"sku": f"SKU-{u}"}
                    )
                ).all()
            )
            assert per_batch == {f"B-{u}-1": 20, f"B-{u}-2": 17}
        out = await published()
        assert len(out) > 200
        for record in out:
            validate_published(record.value or b"")  # every event out fits its committed JSON Schema
    finally:
        await engine.dispose()
