"""The gateway schema is the gateway role's; the service role (orders, ledger) reads none of its personal data.

Each statement runs as the role under test in a transaction that is rolled back, so nothing is left behind.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from infra.db.engine import make_engine
from infra.db.roles import RoleUrls
from infra.errors import sqlstate_of

pytestmark = pytest.mark.integration

BUYER = "Siti Rahayu, 0812-3456-7890, Jl. Melati 5"


@pytest.fixture
async def gateway(database: RoleUrls) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(database.gateway, pool_size=1)
    yield engine
    await engine.dispose()


@pytest.fixture
async def service(database: RoleUrls) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(database.service, pool_size=1)
    yield engine
    await engine.dispose()


async def _refused(engine: AsyncEngine, sql: str) -> str | None:
    """The SQLSTATE ``sql`` fails with (None if it runs); always rolled back."""
    try:
        async with engine.connect() as conn:
            await conn.execute(text(sql))
            await conn.rollback()
    except DBAPIError as exc:
        return sqlstate_of(exc)
    return None


def _delivery(key: str) -> str:
    return (
        "INSERT INTO gateway.raw_deliveries (channel, webhook_type, dedupe_key, order_key, body, headers) "
        f"VALUES ('shopee', 'order_status', '{key}', 'shopee:1:{key}', "
        f"convert_to('{{\"recipient\": \"{BUYER}\"}}', 'UTF8'), '{{}}'::jsonb)"
    )


def _dead_letter(consumer: str) -> str:
    return (
        'INSERT INTO gateway.dead_letters (consumer, topic, "partition", "offset", payload, headers, error, '
        f"attempts) VALUES ('{consumer}', 't', 0, 1, convert_to('{BUYER}', 'UTF8'), '[]'::jsonb, 'E', 1)"
    )


async def test_the_gateway_role_does_everything_the_gateway_does_in_its_schema(gateway: AsyncEngine) -> None:
    key = f"role-test-{uuid.uuid4().hex[:8]}"
    event = uuid.uuid4()
    async with gateway.connect() as conn:
        run = conn.execute
        delivery = (await run(text(_delivery(key) + " RETURNING delivery_id, body"))).one()
        assert BUYER.encode() in bytes(delivery.body)
        await run(text(_dead_letter(key)))
        payload = await run(text("SELECT payload FROM gateway.dead_letters WHERE consumer = :c"), {"c": key})
        assert bytes(payload.scalar_one()) == BUYER.encode()
        inbox = (
            'INSERT INTO gateway.inbox (consumer, event_id, topic, "partition", "offset") VALUES (:c, :e, \'t\', 0, 1)'
        )
        await run(text(inbox), {"c": key, "e": event})
        await run(text("UPDATE gateway.inbox SET status = 'dead_lettered' WHERE consumer = :c"), {"c": key})
        await run(text("DELETE FROM gateway.inbox WHERE consumer = :c"), {"c": key})
        outbox_id = (
            await run(text("INSERT INTO gateway.outbox (topic, payload) VALUES (:t, 'x') RETURNING id"), {"t": key})
        ).scalar_one()
        await run(text("DELETE FROM gateway.outbox WHERE id = :i"), {"i": outbox_id})
        await run(
            text(
                "INSERT INTO gateway.emitted_events (emission_key, order_key, event_type, event_id) "
                "VALUES (:k, :k, 'order.status_changed', :e)"
            ),
            {"k": key, "e": event},
        )
        await run(
            text(
                "INSERT INTO gateway.order_status_seen (order_key, channel, shop_id, order_id, raw_status, state, "
                "update_time) VALUES (:k, 'shopee', '1', :k, 'READY', 'paid', now())"
            ),
            {"k": key},
        )
        await run(text("UPDATE gateway.order_status_seen SET settled = true WHERE order_key = :k"), {"k": key})
        await run(
            text("INSERT INTO gateway.poll_cursors (channel, shop_id, cursor) VALUES ('blibli', :k, now())"), {"k": key}
        )
        await run(text("UPDATE gateway.poll_cursors SET cursor = now() WHERE shop_id = :k"), {"k": key})
        # The retention (SECURITY DEFINER functions) and the outbox relay's advisory lock.
        assert (await run(text("SELECT gateway.redact_raw_deliveries(interval '3650 days', 1)"))).scalar_one() == 0
        assert (await run(text("SELECT gateway.redact_dead_letters(interval '3650 days', 1)"))).scalar_one() == 0
        locked = await run(text("SELECT pg_try_advisory_xact_lock(hashtext(:k))"), {"k": f"karya-outbox:{key}"})
        assert locked.scalar_one() is True
        await conn.rollback()


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE gateway.raw_deliveries SET body = ''::bytea",  # only the retention function changes a delivery
        "DELETE FROM gateway.raw_deliveries",
        "SELECT count(*) FROM orders.orders",  # the gateway sees no other schema
        "SELECT count(*) FROM ledger.journal_entries",
        "INSERT INTO orders.outbox (topic, payload) VALUES ('t', 'x')",
        "CREATE TABLE gateway.scratch (id int)",  # no DDL
    ],
)
async def test_the_gateway_role_stays_in_its_place(gateway: AsyncEngine, sql: str) -> None:
    assert await _refused(gateway, sql) == "42501"


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT body FROM gateway.raw_deliveries LIMIT 1",
        "SELECT delivery_id FROM gateway.raw_deliveries LIMIT 1",
        "SELECT payload FROM gateway.dead_letters LIMIT 1",
        "SELECT * FROM gateway.dead_letters LIMIT 1",
        "SELECT gateway.redact_raw_deliveries(interval '30 days', 1)",
        "SELECT gateway.redact_dead_letters(interval '30 days', 1)",
        # Nothing outside the gateway writes its schema.
        _delivery("by-the-service"),
        _dead_letter("by-the-service"),
        "INSERT INTO gateway.outbox (topic, payload) VALUES ('t', 'x')",
        "DELETE FROM gateway.outbox",
        "DELETE FROM gateway.inbox",
        "UPDATE gateway.poll_cursors SET cursor = now()",
    ],
)
async def test_the_service_role_cannot_read_raw_deliveries_nor_write_the_gateway_schema(
    service: AsyncEngine, sql: str
) -> None:
    assert await _refused(service, sql) == "42501"


async def test_the_service_role_reads_what_is_not_personal(gateway: AsyncEngine, service: AsyncEngine) -> None:
    """What the demo's counters and the completeness audit read; the redacted view without the buyer."""
    key = f"role-test-{uuid.uuid4().hex[:8]}"
    async with gateway.begin() as conn:
        await conn.execute(text(_delivery(key)))
        await conn.execute(text(_dead_letter(key)))
    async with service.connect() as conn:
        for table in ("inbox", "outbox", "emitted_events", "order_status_seen", "poll_cursors"):
            await conn.execute(text(f"SELECT count(*) FROM gateway.{table}"))
        origin = await conn.execute(
            text('SELECT topic, "partition", "offset", error FROM gateway.dead_letters WHERE consumer = :c'),
            {"c": key},
        )
        assert list(origin.one()) == ["t", 0, 1, "E"]
        shown = await conn.execute(
            text("SELECT body FROM gateway.raw_deliveries_redacted WHERE dedupe_key = :k"), {"k": key}
        )
        assert shown.scalar_one() == {"recipient": "[redacted]"}
