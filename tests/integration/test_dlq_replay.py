"""Dead letters through ``karya dlq``'s use cases, on the real broker and database (issue 18, item 3).

An order event for a listing the catalogue does not know is dead-lettered by the orders service; it is listed
(filters), shown, not touched by a dry run, replayed after the catalogue is fixed and applied once — also when the
replayed record arrives twice. An event that keeps failing is replayed until the loop guard refuses it, each new
dead letter counting its replays on; it is then discarded with a reason, and the DLQ gauges count it open, then
closed. The audit table cannot be changed.
"""

from __future__ import annotations

import dataclasses
from datetime import date
from uuid import UUID

import orjson
import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import text
from sqlalchemy.exc import ProgrammingError
from sqlalchemy.ext.asyncio import AsyncEngine

from infra.db.roles import RoleUrls
from infra.messaging.dlq_admin import (
    DeadLetterFilter,
    DeadLetterRow,
    discard_dead_letter,
    list_dead_letters,
    replay_dead_letter,
    show_dead_letter,
)
from infra.messaging.dlq_metrics import DeadLetterGauges
from infra.messaging.relay import make_producer
from infra.messaging.replay import REPLAY_COUNT, REPLAY_OF
from services.contracts.marketplace import ORDER_STATUS_CHANGED
from services.orders.catalogue import Channel, Listing
from tests.integration.messaging_support import read_topic, wait_for
from tests.integration.orders_support import (
    load,
    orders_by_key,
    orders_consumer,
    publish,
    recent,
    small_catalogue,
    status_event,
    uid,
)
from tests.naming import topic_prefix

pytestmark = pytest.mark.integration


async def _dead(engine: AsyncEngine, key: str, state: str = "open") -> list[DeadLetterRow]:
    async with engine.connect() as conn:
        return await list_dead_letters(conn, "orders", DeadLetterFilter(order_key=key, state=state))  # type: ignore[arg-type]


async def _inbox_status(engine: AsyncEngine, consumer: str, event_id: UUID) -> str | None:
    async with engine.connect() as conn:
        found = await conn.execute(
            text("SELECT status FROM orders.inbox WHERE consumer = :c AND event_id = :e"),
            {"c": consumer, "e": event_id},
        )
        return found.scalar_one_or_none()


async def _wait_dead(engine: AsyncEngine, key: str, n: int) -> list[DeadLetterRow]:
    async def arrived() -> bool:
        return len(await _dead(engine, key, "all")) >= n

    await wait_for(arrived, what=f"{n} dead letter(s) for {key}")
    return await _dead(engine, key, "all")


async def test_poison_event_is_listed_shown_replayed_after_the_fix_and_applied_once(
    kafka_bootstrap: str, database: RoleUrls, service_engine: AsyncEngine
) -> None:
    u, prefix, engine = uid(), topic_prefix(), service_engine
    catalogue = small_catalogue(u, [("w1", 10, date(2026, 3, 1))])
    await load(engine, catalogue)
    ghost = status_event(u, "ghost", "220", 1, "tokopedia", lines=[(f"nope-{u}", 2)], base=recent())
    async with orders_consumer(database, kafka_bootstrap, prefix, relay=True, partitions=1) as consumer:
        await publish(kafka_bootstrap, consumer.topic, [ghost])
        [row] = await _wait_dead(engine, ghost.subject, 1)
        assert (row.event_id, row.topic, row.consumer) == (ghost.event_id, consumer.topic, consumer.name)
        assert (row.event_type, row.state, row.replay_count) == (ORDER_STATUS_CHANGED, "open", 0)
        assert row.error == f"rejected: unknown listing tokopedia/shop-{u}/nope-{u} on line 1"

        # Filters: each one that holds finds it, each one that does not leaves it out.
        async with engine.connect() as conn:

            async def listed(**criteria: object) -> list[int]:
                flt = DeadLetterFilter(order_key=ghost.subject, **criteria)  # type: ignore[arg-type]
                return [r.id for r in await list_dead_letters(conn, "orders", flt)]

            assert await listed(topic=consumer.topic, event_type=ORDER_STATUS_CHANGED) == [row.id]
            assert await listed(error="REJECTED: unknown listing", since=row.created_at) == [row.id]
            assert await listed(topic="elsewhere") == await listed(event_type="karya.x.y.v1") == []
            assert await listed(error="unknown_type") == await listed(until=row.created_at) == []
            detail = await show_dead_letter(conn, "orders", row.id, redactor="gateway")
        assert detail is not None and detail.row == row
        assert orjson.loads(detail.payload)["event_id"] == str(ghost.event_id)  # no personal key: nothing blanked

        # A dry run decides and writes nothing: no audit row, nothing published.
        async with engine.begin() as conn:
            dry = await replay_dead_letter(conn, "orders", row.id, actor="oncall", dry_run=True)
        assert (dry.done, dry.refused, dry.replay_count, dry.topic) == (False, None, 1, consumer.topic)
        assert (await _dead(engine, ghost.subject))[0].state == "open"

        # The catalogue fix, then the replay: the event is applied, once.
        fix = Listing(Channel.TOKOPEDIA, f"shop-{u}", f"nope-{u}", None, f"SKU-{u}", f"lp{u}-w1")
        await load(engine, dataclasses.replace(catalogue, listings=(*catalogue.listings, fix), batches=()))
        async with engine.begin() as conn:
            done = await replay_dead_letter(conn, "orders", row.id, actor="oncall")
        assert (done.done, done.refused, done.replay_count) == (True, None, 1)

        async def applied() -> bool:
            return await _inbox_status(engine, consumer.name, ghost.event_id) == "applied"

        await wait_for(applied, what="the replayed event applied")
        assert (await orders_by_key(engine, [ghost.subject]))[ghost.subject]["reservations"] == ["hard"]

        # The replayed record as it went out: the original bytes and key, a replay count, where it came from.
        records = await read_topic(kafka_bootstrap, consumer.topic, expected=2)
        assert [r.value for r in records] == [ghost.to_bytes()] * 2, "the original, then its replay"
        replayed = records[1]
        headers = dict(replayed.headers)
        assert (replayed.key, headers[REPLAY_COUNT], headers[REPLAY_OF]) == (
            ghost.subject.encode(),
            b"1",
            f"orders:{row.id}".encode(),
        )
        assert "karya-dlq-error" not in headers

        # The replay published again (an operator's tool, a relay retry): the applied event is a duplicate.
        producer = make_producer(kafka_bootstrap, "test-dlq")
        await producer.start()
        try:
            await producer.send_and_wait(
                consumer.topic, replayed.value, key=replayed.key, headers=list(replayed.headers)
            )
        finally:
            await producer.stop()

        async def skipped() -> bool:
            return consumer.metric("karya_events_duplicate_total") >= 1

        await wait_for(skipped, what="the second copy of the replay skipped")
        assert (await orders_by_key(engine, [ghost.subject]))[ghost.subject]["reservations"] == ["hard"]
        assert await _inbox_status(engine, consumer.name, ghost.event_id) == "applied"

    # The dead letter is closed: listed as replayed by whom, and a second replay is refused.
    [closed] = await _dead(engine, ghost.subject, "replayed")
    assert (closed.id, closed.actor) == (row.id, "oncall")
    assert await _dead(engine, ghost.subject) == []
    async with engine.begin() as conn:
        again = await replay_dead_letter(conn, "orders", row.id, actor="oncall")
    assert not again.done and again.refused is not None and again.refused.startswith("already replayed by oncall")


async def test_a_replay_loop_is_stopped_by_the_guard_and_the_event_discarded_with_a_reason(
    kafka_bootstrap: str, database: RoleUrls, service_engine: AsyncEngine
) -> None:
    u, prefix, engine = uid(), topic_prefix(), service_engine
    await load(engine, small_catalogue(u, [("w1", 10, date(2026, 3, 1))]))
    ghost = status_event(u, "loop", "220", 1, "tokopedia", lines=[(f"never-{u}", 1)], base=recent())
    async with orders_consumer(database, kafka_bootstrap, prefix, relay=True, partitions=1) as consumer:
        await publish(kafka_bootstrap, consumer.topic, [ghost])
        rows = await _wait_dead(engine, ghost.subject, 1)
        gauges = DeadLetterGauges(engine, "orders", CollectorRegistry())
        await gauges.measure()
        assert gauges.open.labels("orders", consumer.topic)._value.get() == 1
        assert gauges.oldest_age.labels("orders", consumer.topic)._value.get() >= 0
        for n in (1, 2):  # never fixed: each replay dead-letters again, counting on
            async with engine.begin() as conn:
                outcome = await replay_dead_letter(conn, "orders", rows[0].id, actor="oncall", max_replays=2)
            assert (outcome.done, outcome.replay_count) == (True, n)
            rows = await _wait_dead(engine, ghost.subject, n + 1)
            assert (rows[0].replay_count, rows[0].state, rows[1].state) == (n, "open", "replayed")
            assert rows[0].event_id == ghost.event_id
        async with engine.begin() as conn:
            guard = await replay_dead_letter(conn, "orders", rows[0].id, actor="oncall", max_replays=2)
        assert not guard.done and guard.refused is not None and guard.refused.startswith("loop guard")
        assert [r.id for r in await _dead(engine, ghost.subject)] == [rows[0].id], "it stays a dead letter"
        assert await _inbox_status(engine, consumer.name, ghost.event_id) == "dead_lettered"

    async with engine.begin() as conn:
        dry = await discard_dead_letter(conn, "orders", rows[0].id, actor="oncall", reason="x", dry_run=True)
        blank = await discard_dead_letter(conn, "orders", rows[0].id, actor="oncall", reason="  ")
    assert (dry.done, dry.refused, blank.refused) == (False, None, "a reason is required")
    assert (await _dead(engine, ghost.subject))[0].state == "open"
    async with engine.begin() as conn:
        discarded = await discard_dead_letter(
            conn, "orders", rows[0].id, actor="oncall", reason="listing withdrawn by the seller"
        )
    assert discarded.done
    await gauges.measure()
    assert gauges.open.labels("orders", consumer.topic)._value.get() == 0, "closed: no longer counted"
    states = [(r.state, r.actor, r.reason) for r in await _dead(engine, ghost.subject, "all")]
    assert states == [
        ("discarded", "oncall", "listing withdrawn by the seller"),
        ("replayed", "oncall", None),
        ("replayed", "oncall", None),
    ]
    # Append-only: the service role may add actions, never change or remove one.
    async with engine.begin() as conn:
        with pytest.raises(ProgrammingError, match="permission denied"):
            await conn.execute(text("UPDATE orders.dead_letter_actions SET reason = 'none'"))
