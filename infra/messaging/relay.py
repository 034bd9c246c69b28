"""The outbox relay: publishes outbox rows in id order (so in order per key), then deletes them.

The outbox is a queue: a row lives from the transaction that wrote it until Kafka acknowledged its record; Kafka
is the record of what was published. Exactly once, even across a crash between publish and delete: every
published record carries the header ``karya-outbox: <schema>:<id>``. Before its first batch, and after any failed
publish, the relay reads the tails of the partitions its pending rows go to and deletes every row it finds there
already. One relay per outbox is active at a time (a PostgreSQL advisory lock), so a second replica waits as a
hot standby.

Leadership is re-checked inside the loop: at most ``leadership_check_s`` (1 s) apart, busy or idle, and after
every failed batch, the relay asks PostgreSQL whether its lock connection still holds the lock (``pg_locks``; one
autocommit round trip, ~1 ms). When that
connection is gone (a database restart, a terminated backend) the lock is gone with it and another replica may
already publish; the relay then raises :class:`LeadershipLost` and its supervisor starts it again, from acquiring
the lock. Failures of a batch (Kafka away, the database refusing a statement) are retried inside the loop with
jittered backoff, and nothing is published again until the in-flight rows have been recovered. Only the service
role may take advisory locks (``infra.db.roles``), so no other role can silence the relay.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from infra.errors import describe_error
from infra.logging import LogLimiter, get_logger
from infra.messaging.admin import partitions_of
from infra.messaging.metrics import MessagingMetrics
from infra.messaging.outbox import decode_headers, measure_backlog
from infra.messaging.partitioning import PartitionCache
from infra.supervision import backoff_delay

log = get_logger(__name__)
OUTBOX_HEADER = "karya-outbox"
_HOLDS_LOCK = text(
    "SELECT count(*) FROM pg_locks, (SELECT hashtext(:k)::bigint AS key) AS k "
    "WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted AND objsubid = 1 "
    "AND classid::bigint = ((k.key >> 32) & 4294967295) AND objid::bigint = (k.key & 4294967295)"
)


class LeadershipLost(Exception):
    """The relay's lock connection no longer holds the advisory lock (or cannot answer): stop publishing."""

    loggable_message = True


def make_producer(bootstrap_servers: str, client_id: str) -> AIOKafkaProducer:
    """An idempotent producer (acks=all), batched lightly for throughput."""
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers,
        client_id=client_id,
        enable_idempotence=True,
        acks="all",
        linger_ms=5,
        max_batch_size=512 * 1024,
        max_request_size=4 * 1024 * 1024,
    )


class OutboxRelay:
    """Publishes ``<schema>.outbox`` to Kafka. Run :meth:`run` as a task; set ``stop`` to end it."""

    def __init__(
        self,
        *,
        engine: AsyncEngine,
        schema: str,
        bootstrap_servers: str,
        metrics: MessagingMetrics,
        batch_size: int = 2000,
        idle_sleep_s: float = 0.25,
        leadership_check_s: float = 1.0,
        backlog_every_s: float = 2.0,
    ) -> None:
        """``idle_sleep_s``: how long an idle relay waits before looking again, unless :meth:`wake` comes first
        (rows written by another process — a second replica, a CLI — wait at most this long).
        ``leadership_check_s``: how often the leader checks that it still holds the lock.
        ``backlog_every_s``: how often :meth:`measure_backlog` counts the outbox."""
        self._engine = engine
        # The relay's statements stand alone (a SELECT, a DELETE): in autocommit each is one round trip, not
        # BEGIN, the statement and COMMIT/ROLLBACK (a relay cycle was six round trips, now two).
        self._take_sql = text(
            f"SELECT id, topic, key, payload, headers::text AS headers FROM {schema}.outbox ORDER BY id LIMIT :n"
        )
        self._delete_sql = text(f"DELETE FROM {schema}.outbox WHERE id = ANY(:ids)")
        self._schema = schema
        self._bootstrap = bootstrap_servers
        self._metrics = metrics
        self._batch_size = batch_size
        self._idle_sleep_s = idle_sleep_s
        self._leadership_check_s = leadership_check_s
        self._backlog_every_s = backlog_every_s
        self._lock_key = f"karya-outbox:{schema}"
        self._lock_conn: AsyncConnection | None = None
        self._wake = asyncio.Event()
        self.published = 0
        self._partitions = PartitionCache()
        # Exported (0) from the start: a standby that never led must still count, or "no leader" cannot be seen.
        metrics.outbox_relay_leader.labels(schema).set(0)

    def wake(self) -> None:
        """Look at the outbox now: a transaction of this process has just committed rows to it."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Hold the leader lock, recover in-flight rows, then publish until ``stop`` is set.

        Raises:
            LeadershipLost: the lock connection died or no longer holds the lock (the supervisor restarts it).
        """
        async with self._engine.connect() as lock_conn:
            await lock_conn.execution_options(isolation_level="AUTOCOMMIT")  # one round trip per check
            if not await self._acquire(lock_conn, stop):
                return
            self._lock_conn = lock_conn
            self._metrics.outbox_relay_leader.labels(self._schema).set(1)
            producer = make_producer(self._bootstrap, f"relay-{self._schema}")
            try:
                await producer.start()
                await self._loop(producer, stop)
            finally:
                self._lock_conn = None
                self._metrics.outbox_relay_leader.labels(self._schema).set(0)
                with contextlib.suppress(Exception):
                    await producer.stop()
                with contextlib.suppress(Exception):  # a dead connection took its lock with it
                    await lock_conn.execute(text("SELECT pg_advisory_unlock(hashtext(:k))"), {"k": self._lock_key})

    async def _acquire(self, lock_conn: AsyncConnection, stop: asyncio.Event) -> bool:
        """Wait as a hot standby until the lock is ours (True) or ``stop`` is set (False)."""
        while not stop.is_set():
            got = (
                await lock_conn.execute(text("SELECT pg_try_advisory_lock(hashtext(:k))"), {"k": self._lock_key})
            ).scalar_one()
            if got:
                return True
            await _sleep_or_stop(stop, 1.0)
        return False

    async def verify_leadership(self) -> None:
        """Raise :class:`LeadershipLost` unless the lock connection answers and still holds the lock (nothing to
        check when the relay is driven without :meth:`run`, as some tests do)."""
        conn = self._lock_conn
        if conn is None:
            return
        try:
            held = (await conn.execute(_HOLDS_LOCK, {"k": self._lock_key})).scalar_one()
        except Exception as exc:
            raise LeadershipLost(f"the lock connection of outbox {self._schema} failed") from exc
        if not held:
            raise LeadershipLost(f"the lock of outbox {self._schema} is no longer held")

    async def _loop(self, producer: AIOKafkaProducer, stop: asyncio.Event) -> None:
        limiter = LogLimiter()
        recovered = False  # nothing is sent before the rows already on Kafka are known: no duplicates
        failures = 0
        checked_at = time.monotonic()
        while not stop.is_set():
            if time.monotonic() - checked_at >= self._leadership_check_s:
                await self.verify_leadership()
                checked_at = time.monotonic()
            try:
                if not recovered:
                    await self.recover_in_flight()
                    recovered = True
                sent = await self.publish_once(producer)
            except LeadershipLost:
                raise
            except Exception as exc:  # described, not dumped: a database error's text can quote a row's value
                failures += 1
                delay = backoff_delay(failures, base_s=0.1, cap_s=5.0)
                stage = "publish" if recovered else "recover"
                recovered = False
                limiter.log(
                    log.error,
                    "outbox_publish_failed",
                    schema=self._schema,
                    stage=stage,
                    retry_in_s=round(delay, 2),
                    **describe_error(exc),
                )
                await _sleep_or_stop(stop, delay)
                await self.verify_leadership()
                checked_at = time.monotonic()
                continue
            if failures:
                failures = 0
                limiter.resolved()
            if sent == 0:
                await self._idle(stop)

    async def _idle(self, stop: asyncio.Event) -> None:
        """Wait for a wake-up, the stop event or the idle interval, whichever comes first."""
        waiters = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())]
        try:
            await asyncio.wait(waiters, timeout=self._idle_sleep_s, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
        self._wake.clear()

    async def publish_once(self, producer: AIOKafkaProducer) -> int:
        """Publish the next batch of rows and delete them once Kafka acknowledged them; returns how many."""
        async with self._autocommit().connect() as conn:
            rows = (await conn.execute(self._take_sql, {"n": self._batch_size})).all()
        if not rows:
            return 0
        await self._send(producer, rows)
        await self._remove_sent([row.id for row in rows])
        self.published += len(rows)
        self._metrics.outbox_published.labels(self._schema).inc(len(rows))
        return len(rows)

    def _autocommit(self) -> AsyncEngine:
        """The engine with its connections in autocommit (a shallow copy sharing the pool)."""
        return self._engine.execution_options(isolation_level="AUTOCOMMIT")

    async def _send(self, producer: AIOKafkaProducer, rows: Sequence[Any]) -> None:
        """Publish rows as record batches per partition (id order kept within each), then wait for all acks."""
        per_partition: dict[tuple[str, int], list[tuple[int, bytes | None, bytes, str]]] = {}
        known = {topic: sorted(await producer.partitions_for(topic)) for topic in {row[1] for row in rows}}
        cache = self._partitions
        for row_id, topic, raw_key, payload, headers in rows:
            key = None if raw_key is None else bytes(raw_key)
            if key is None:  # no key: any partition, picked at random as aiokafka's default partitioner does
                partition = random.choice(known[topic])
            else:
                partition = cache.partition(topic, len(known[topic]), key)
            per_partition.setdefault((topic, partition), []).append((row_id, key, payload, headers))
        decoded: dict[str, list[tuple[str, bytes]]] = {}  # a batch's rows share a handful of header sets
        futures = []
        for (topic, partition), group in per_partition.items():
            batch = producer.create_batch()
            for row_id, key, payload, header_text in group:
                base = decoded.get(header_text)
                if base is None:
                    base = decoded[header_text] = decode_headers(header_text)
                headers = [*base, (OUTBOX_HEADER, f"{self._schema}:{row_id}".encode())]
                value = payload if type(payload) is bytes else bytes(payload)
                if batch.append(key=key, value=value, timestamp=None, headers=headers) is None:
                    futures.append(await producer.send_batch(batch, topic, partition=partition))
                    batch = producer.create_batch()
                    if batch.append(key=key, value=value, timestamp=None, headers=headers) is None:
                        raise ValueError(f"outbox row {row_id} is larger than a whole record batch")
            if batch.record_count():
                futures.append(await producer.send_batch(batch, topic, partition=partition))
        await asyncio.gather(*futures)

    async def _remove_sent(self, ids: Sequence[int]) -> None:
        async with self._autocommit().connect() as conn:
            await conn.execute(self._delete_sql, {"ids": list(ids)})

    async def recover_in_flight(self) -> int:
        """Remove the rows whose records already reached Kafka (a crash between send and delete); returns how
        many."""
        async with self._engine.connect() as conn:
            rows = (
                await conn.execute(
                    text(f"SELECT id, topic FROM {self._schema}.outbox ORDER BY id LIMIT :n"),
                    {"n": self._batch_size},
                )
            ).all()
            await conn.rollback()
        if not rows:
            return 0
        pending = {row.id for row in rows}
        topics = sorted({row.topic for row in rows})
        found = await self._published_ids(topics, min(pending))
        already = sorted(pending & found)
        if already:
            await self._remove_sent(already)
            log.warning("outbox_recovered_in_flight", schema=self._schema, rows=len(already))
        return len(already)

    async def _published_ids(self, topics: Sequence[str], min_pending: int) -> set[int]:
        """Outbox ids of this schema found at the tails of the topics' partitions."""
        consumer = AIOKafkaConsumer(bootstrap_servers=self._bootstrap, enable_auto_commit=False)
        await consumer.start()
        found: set[int] = set()
        try:
            for tp in await partitions_of(consumer, topics):
                found |= await self._scan_partition(consumer, tp, min_pending)
        finally:
            await consumer.stop()
        return found

    async def _scan_partition(self, consumer: AIOKafkaConsumer, tp: TopicPartition, min_pending: int) -> set[int]:
        """Read back from the end of one partition until before the lowest pending id (bounded)."""
        consumer.assign([tp])
        begin = (await consumer.beginning_offsets([tp]))[tp]
        end = (await consumer.end_offsets([tp]))[tp]
        prefix = f"{self._schema}:".encode()
        found: set[int] = set()
        window = self._batch_size
        start = end
        while start > begin:
            start = max(begin, end - window)
            consumer.seek(tp, start)
            seen_older = False
            while (await consumer.position(tp)) < end:
                batch = await consumer.getmany(tp, timeout_ms=1000, max_records=5000)
                for record in batch.get(tp, []):
                    for k, v in record.headers or ():
                        if k == OUTBOX_HEADER and v.startswith(prefix):
                            oid = int(v[len(prefix) :])
                            found.add(oid)
                            seen_older |= oid < min_pending
                if not batch:
                    break
            if seen_older or window >= 64 * self._batch_size:
                break
            window *= 4
        return found

    async def measure_backlog(self, stop: asyncio.Event) -> None:
        """Count the outbox every ``backlog_every_s`` until ``stop`` is set, whether this relay leads, waits or is
        failing: the backlog gauge must not read 0 while rows wait. While the database is away the gauges keep
        their last values (and ``/readyz`` says the database is down)."""
        limiter = LogLimiter()
        while not stop.is_set():
            try:
                await self._update_backlog_metrics()
                limiter.resolved()
            except Exception as exc:
                limiter.log(log.warning, "outbox_backlog_unmeasured", schema=self._schema, **describe_error(exc))
            await _sleep_or_stop(stop, self._backlog_every_s)

    async def _update_backlog_metrics(self) -> None:
        async with self._engine.connect() as conn:
            backlog = await measure_backlog(conn, self._schema)
            await conn.rollback()
        self._metrics.outbox_backlog.labels(self._schema).set(backlog.rows)
        age = 0.0 if backlog.oldest is None else max(0.0, time.time() - backlog.oldest.timestamp())
        self._metrics.outbox_oldest_age.labels(self._schema).set(age)


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
