"""One order with two lines of the same SKU reserves their sum, or nothing."""

from __future__ import annotations

from datetime import date

import pytest

from infra.db.engine import make_engine
from infra.db.roles import RoleUrls
from tests.integration.orders_support import (
    assert_reconciled,
    last_payload,
    load,
    movements_of,
    orders_by_key,
    orders_consumer,
    outbox_types,
    publish,
    recent,
    small_catalogue,
    status_event,
    stock_of,
    uid,
    wait_applied,
)
from tests.naming import topic_prefix

pytestmark = pytest.mark.integration


async def test_two_lines_same_sku_reserve_the_sum_or_nothing(kafka_bootstrap: str, database: RoleUrls) -> None:
    u = uid()
    prefix = topic_prefix()
    engine = make_engine(database.service)
    sku, base, product = f"SKU-{u}", recent(), f"p-{u}"
    six = [("w1", 6, date(2026, 3, 1))]
    await load(engine, small_catalogue(u, six))
    short = status_event(u, "short", "220", 0, "tokopedia", lines=[(product, 3), (product, 4)], base=base)
    enough = status_event(u, "enough", "220", 0, "tokopedia", lines=[(product, 3), (product, 4)], base=base)
    try:
        async with orders_consumer(database, kafka_bootstrap, prefix) as consumer:
            # 6 available, 3 + 4 wanted: each line alone would fit, together they do not.
            await publish(kafka_bootstrap, consumer.topic, [short])
            await wait_applied(engine, consumer, 1)
            assert await stock_of(engine, sku) == {
                "on_hand": 6,
                "soft_reserved": 0,
                "allocated": 0,
                "quarantined": 0,
                "available": 6,
            }
            failed = await last_payload(engine, short.subject, "karya.orders.reservation_failed.v1")
            assert "wanted 7, available 6" in failed["reason"]
            assert await movements_of(engine, [short.subject]) == {}
            assert (await orders_by_key(engine, [short.subject]))[short.subject]["reservations"] == []

            # One more unit arrives in the other workshop: 7 available, both lines held, spanning two batches.
            await load(engine, small_catalogue(u, [*six, ("w2", 1, date(2026, 1, 1))]))
            await publish(kafka_bootstrap, consumer.topic, [enough])
            await wait_applied(engine, consumer, 2)
        assert await stock_of(engine, sku) == {
            "on_hand": 7,
            "soft_reserved": 0,
            "allocated": 7,
            "quarantined": 0,
            "available": 0,
        }
        confirmed = await last_payload(engine, enough.subject, "karya.orders.reservation_confirmed.v1")
        # The listing's workshop first (although the other batch is older), then the rest of the lapas.
        assert sorted((a["batch_id"], a["quantity"]) for a in confirmed["allocations"]) == [
            (f"B-{u}-1", 6),
            (f"B-{u}-2", 1),
        ]
        assert (await outbox_types(engine, [short.subject]))[short.subject] == {"reservation_failed": 1}
        await assert_reconciled(engine)
    finally:
        await engine.dispose()
