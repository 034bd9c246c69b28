"""Group commit of webhook deliveries: concurrent deliveries share transactions, each caller still gets its own
durable answer, duplicates inside one group are caught, and one bad delivery does not fail its group."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from infra.db.engine import make_engine
from infra.db.roles import RoleUrls
from infra.db.unit_of_work import Database
from services.gateway.app import SCHEMA
from services.gateway.dedupe import DeliveryKeys
from services.gateway.deliveries import DeliveryStore, StoredDelivery
from tests.integration.gateway_support import scalar, uid
from tests.naming import topic_prefix

pytestmark = pytest.mark.integration


async def test_concurrent_deliveries_are_each_stored_once_and_visible_on_return(database: RoleUrls) -> None:
    engine = make_engine(database.gateway, pool_size=3)
    u, topic = uid(), f"{topic_prefix('gc')}raw"  # a relay on this database may publish these rows later
    commits: list[int] = []
    store = DeliveryStore(Database(engine, SCHEMA), topic=topic, after_commit=lambda: commits.append(1))

    async def deliver(n: int) -> tuple[int, StoredDelivery, int]:
        keys = DeliveryKeys(f"group:{u}:{n % 40}", f"tokopedia:1:{u}-{n % 40}")
        stored = await store.store("tokopedia", "order_status", keys, f'{{"n": {n}}}'.encode(), {"x-n": str(n)})
        # Durable on return: a fresh connection already sees the row.
        seen = await scalar(
            engine, "SELECT count(*) FROM gateway.raw_deliveries WHERE dedupe_key = :k", k=keys.dedupe_key
        )
        return n, stored, int(seen)

    try:
        results = await asyncio.gather(*(deliver(n) for n in range(120)))  # every key three times
        assert all(seen == 1 for _, _, seen in results)
        created = [(n, s) for n, s, _ in results if s.created]
        assert sorted(n % 40 for n, _ in created) == list(range(40)), "exactly one stored delivery per key"
        assert len({s.delivery_id for _, s in created}) == 40
        assert all(s.delivery_id is None for _, s, _ in results if not s.created)
        outbox = await scalar(engine, "SELECT count(*) FROM gateway.outbox WHERE topic = :t", t=topic)
        assert outbox == 40, "one delivery_received per stored delivery"
        assert 1 <= len(commits) < 40, "deliveries shared commits (one per delivery would be 40)"
    finally:
        await engine.dispose()


async def test_a_bad_delivery_fails_alone(database: RoleUrls) -> None:
    engine = make_engine(database.gateway, pool_size=3)
    u = uid()
    store = DeliveryStore(Database(engine, SCHEMA), topic=f"{topic_prefix('gc')}raw")
    good = [DeliveryKeys(f"good:{u}:{n}", None) for n in range(5)]
    bad = DeliveryKeys(f"bad:{u}", None)
    try:
        outcomes = await asyncio.gather(
            *(store.store("shopee", "order_status", k, b"{}", {}) for k in good[:2]),
            # PostgreSQL's jsonb refuses \\u0000: this delivery's headers cannot be stored.
            store.store("shopee", "order_status", bad, b"{}", {"x-bad": "a\x00b"}),
            *(store.store("shopee", "order_status", k, b"{}", {}) for k in good[2:]),
            return_exceptions=True,
        )
        assert isinstance(outcomes[2], Exception)
        assert all(isinstance(o, StoredDelivery) and o.created for i, o in enumerate(outcomes) if i != 2)
        async with engine.connect() as conn:
            keys = set(
                (
                    await conn.execute(
                        text("SELECT dedupe_key FROM gateway.raw_deliveries WHERE dedupe_key LIKE :p"),
                        {"p": f"%:{u}%"},
                    )
                ).scalars()
            )
        assert keys == {k.dedupe_key for k in good}
    finally:
        await engine.dispose()
