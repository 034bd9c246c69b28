"""Helpers for orders tests: a per-test catalogue, event publishing, and service processes run by pid."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from infra.db.engine import make_engine
from infra.db.roles import RoleUrls
from infra.db.unit_of_work import UnitOfWork
from infra.messaging.admin import ensure_topics
from infra.messaging.envelope import Envelope, make_envelope
from infra.messaging.outbox import OutboundMessage
from infra.messaging.relay import make_producer
from infra.runtime import ServiceRuntime
from infra.settings import KafkaSettings
from karya.processes import free_port
from services.contracts.marketplace import ORDER_STATUS_CHANGED, OrderLine, OrderStatusChanged
from services.contracts.registry import EVENT_TYPES
from services.orders.adapters.catalogue_repo import load_catalogue
from services.orders.adapters.stock_repo import counter_drift
from services.orders.app import CONSUMED_TYPES, SCHEMA, OrderChangesHandler
from services.orders.catalogue import (
    Catalogue,
    Channel,
    Lapas,
    Listing,
    Product,
    ProductionBatch,
    ProductKind,
    Supplier,
    WorkShare,
    Workshop,
)
from services.orders.domain.channels import Channel as DomainChannel
from services.orders.domain.channels import map_status
from services.orders.domain.lifecycle import OrderState
from services.orders.fulfilment import FulfilmentRules
from services.orders.outbound import OrdersTopics
from tests.contract_validation import validate_published
from tests.integration.messaging_support import wait_for

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)


def uid() -> str:
    """A short unique suffix for ids, topics and prefixes."""
    return uuid.uuid4().hex[:8]


def small_catalogue(u: str, batches: Sequence[tuple[str, int, date]], price: int = 50_000) -> Catalogue:
    """One lapas with two workshops (w1, w2), one SKU listed on every channel by w1, and the given batches.

    ``batches`` are (workshop suffix 'w1'/'w2', produced quantity, production date).
    """
    lapas = f"lp{u}"
    sku = f"SKU-{u}"
    ws = [
        Workshop(f"{lapas}-w1", lapas, "Bengkel satu", "bengkel"),
        Workshop(f"{lapas}-w2", lapas, "Bengkel dua", "bengkel"),
    ]
    return Catalogue(
        lapas=(Lapas(lapas, f"Lapas {u}", "Kota", "Provinsi"),),
        workshops=tuple(ws),
        suppliers=(Supplier(f"sup-{u}", "CV Bahan Baku"),),
        products=(Product(sku, "Sarung tangan kerja", ProductKind.GLOVES, price, f"{lapas}-w1"),),
        listings=tuple(Listing(ch, f"shop-{u}", f"p-{u}", None, sku, f"{lapas}-w1") for ch in Channel),
        batches=tuple(
            ProductionBatch(
                f"B-{u}-{i}",
                f"{lapas}-{w}",
                sku,
                qty,
                d,
                12_000,
                f"sup-{u}",
                (WorkShare(f"WBP-{u[:3].upper()}{i:03d}", 2), WorkShare(f"WBP-{u[3:6].upper()}{i:03d}", 1)),
            )
            for i, (w, qty, d) in enumerate(batches, start=1)
        ),
    )


async def load(engine: AsyncEngine, catalogue: Catalogue) -> None:
    """Load a catalogue as the service role would."""
    async with engine.begin() as conn:
        await load_catalogue(UnitOfWork(conn, SCHEMA), catalogue, "test")


def status_event(
    u: str,
    order: str,
    raw_status: str,
    minutes: int,
    channel: str = "tokopedia",
    qty: int = 1,
    lines: Sequence[tuple[str, int]] | None = None,
    price: int = 50_000,
    base: datetime = T0,
) -> Envelope:
    """A canonical order event for order ``order`` of the small catalogue, ``minutes`` after ``base`` (T0)."""
    shop = f"shop-{u}"
    key = f"{channel}:{shop}:{order}"
    line_specs = lines if lines is not None else [(f"p-{u}", qty)]
    data = OrderStatusChanged(
        order_key=key,
        channel=channel,
        shop_id=shop,
        order_id=order,
        raw_status=raw_status,
        update_time=base + timedelta(minutes=minutes),
        lines=[OrderLine(channel_product_id=p, quantity=q, unit_price=price) for p, q in line_specs],
    )
    return make_envelope(
        type=ORDER_STATUS_CHANGED, source="karya/gateway", subject=key, data=data.model_dump(mode="json")
    )


async def publish(bootstrap: str, topic: str, envelopes: Sequence[Envelope]) -> None:
    """Publish envelopes keyed by subject, in the given order, with the type header the outbox sets."""
    producer = make_producer(bootstrap, "test-orders")
    await producer.start()
    try:
        futures = [
            await producer.send(topic, m.payload, key=m.key, headers=list(m.headers))
            for m in (OutboundMessage.of(topic, e) for e in envelopes)
        ]
        for f in futures:
            await f
    finally:
        await producer.stop()


@contextmanager
def service_processes(
    service: str, count: int, database: RoleUrls, bootstrap: str, prefix: str, log_dir: Path, **env: str
) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Run ``count`` processes of ``karya serve SERVICE``; stop them by pid (SIGTERM, then SIGKILL)."""
    procs: list[subprocess.Popen[bytes]] = []
    base_env = {
        **os.environ,
        "DATABASE_URL": database.service,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "KARYA_TOPIC_PREFIX": prefix,
        "KARYA_KAFKA_PARTITIONS": "6",
        **env,
    }
    try:
        for i in range(count):
            log = (log_dir / f"{service}-{i}.log").open("wb")
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "karya.cli", "serve", service, "--port", str(free_port())],
                    env=base_env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=ROOT,
                )
            )
        yield procs
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 20
        for p in procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


# --- driving the processor without the broker (tests about stock invariants only) -------------------------

# No marketplace status means "the returned parcel arrived" (the unit tests of channels.py say RETURNED comes
# from our own return handling, which does not exist yet); tests stand in for it with this status.
RETURNED_STATUS = "KARYA_TEST_RETURNED"


def map_with_returns(channel: object, raw_status: object) -> OrderState:
    """The channel tables plus :data:`RETURNED_STATUS` (the status mapping of :func:`orders_handler` with returns)."""
    if raw_status == RETURNED_STATUS:
        return OrderState.RETURNED
    return map_status(channel, raw_status)  # type: ignore[arg-type]


def orders_handler(
    topics: OrdersTopics, windows: dict[DomainChannel, timedelta] | None = None, *, returns: bool = False
) -> OrderChangesHandler:
    """The orders batch handler as the composition root builds it, on ``topics`` (``returns``: the status mapping
    knows :data:`RETURNED_STATUS`)."""
    rules = FulfilmentRules(topics, windows, map_with_returns if returns else map_status)
    return OrderChangesHandler(SCHEMA, rules)


# --- in-process consumer and read helpers (tests other than the two-process race) ---------------------------


def recent(hours: int = 1) -> datetime:
    """A base update time ``hours`` ago (whole minute), so the default 24 h unpaid window is still open."""
    return (datetime.now(UTC) - timedelta(hours=hours)).replace(second=0, microsecond=0)


@dataclass
class InProcessOrders:
    """An orders consumer running in the test's event loop on its own prefixed topic and consumer name."""

    runtime: ServiceRuntime
    name: str
    topic: str

    def metric(self, name: str) -> float:
        """Sum of all samples of metric ``name`` in this runtime's registry."""
        families = self.runtime.metrics.registry.collect()
        return sum(s.value for f in families for s in f.samples if s.name == name)


@asynccontextmanager
async def orders_consumer(
    database: RoleUrls,
    bootstrap: str,
    prefix: str,
    *,
    windows: dict[DomainChannel, timedelta] | None = None,
    relay: bool = False,
    partitions: int = 3,
) -> AsyncIterator[InProcessOrders]:
    """Run the orders handler behind the real batch consumer on ``<prefix>marketplace.order-events`` and
    ``<prefix>ledger.order-events``, acting on the service's types (any other type skipped by its header)."""
    topics = OrdersTopics.with_prefix(prefix)  # its own events go to the prefixed topics too
    topic = topics.order_events
    name = f"orders-{prefix.strip('.')}"
    outputs = [topics.events, topics.stock_availability]
    await ensure_topics(bootstrap, [topic, topics.ledger_order_events, *outputs], partitions=partitions)
    settings = KafkaSettings(bootstrap_servers=bootstrap, partitions=partitions, retry_backoff_ms=10)
    runtime = ServiceRuntime(
        name=name, schema=SCHEMA, engine=make_engine(database.service), kafka=settings, relay=relay
    )
    runtime.add_consumer(
        name=name,
        topics=[topic, topics.ledger_order_events],
        handler=orders_handler(topics, windows),
        description="test",
        event_types=CONSUMED_TYPES,
        known_types=frozenset(EVENT_TYPES),
    )
    await runtime.start()
    try:
        yield InProcessOrders(runtime, name, topic)
    finally:
        await runtime.stop()
        await runtime.engine.dispose()


async def _claimed(engine: AsyncEngine, consumer: str) -> int:
    async with engine.connect() as conn:
        return int(
            (
                await conn.execute(text("SELECT count(*) FROM orders.inbox WHERE consumer = :c"), {"c": consumer})
            ).scalar_one()
        )


async def wait_applied(engine: AsyncEngine, orders: InProcessOrders, events: int, duplicates: int = 0) -> None:
    """Wait until the consumer claimed ``events`` distinct events and skipped ``duplicates`` redeliveries."""

    async def done() -> bool:
        claimed = await _claimed(engine, orders.name)
        return claimed >= events and orders.metric("karya_events_duplicate_total") >= duplicates

    await wait_for(done, timeout=60, what=f"{events} events and {duplicates} duplicates consumed")
    claimed = await _claimed(engine, orders.name)
    assert claimed == events, f"consumer claimed {claimed} events, expected {events}"


async def stock_of(engine: AsyncEngine, sku: str) -> dict[str, int]:
    """Counters of ``sku`` summed over its batches, with ``available``."""
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT sum(on_hand)::int AS on_hand, sum(soft_reserved)::int AS soft_reserved, "
                    "sum(allocated)::int AS allocated, sum(quarantined)::int AS quarantined, "
                    "sum(on_hand - soft_reserved - allocated)::int AS available "
                    "FROM orders.batch_stock WHERE sku = :s"
                ),
                {"s": sku},
            )
        ).one()
    return dict(row._mapping)


_OUTBOX_TYPE = "convert_from(payload, 'UTF8')::jsonb ->> 'type'"
_OUTBOX_KEY = "convert_from(key, 'UTF8')"


async def outbox_types(engine: AsyncEngine, keys: Sequence[str]) -> dict[str, Counter[str]]:
    """Outbox event types (short names, e.g. ``reservation_confirmed``) per key.

    Every event read is validated against its committed JSON Schema on the way.
    """
    out: dict[str, Counter[str]] = {k: Counter() for k in keys}
    async with engine.connect() as conn:
        for k, raw in await conn.execute(
            text(f"SELECT {_OUTBOX_KEY}, payload FROM orders.outbox WHERE {_OUTBOX_KEY} = ANY(:keys) ORDER BY id"),
            {"keys": list(keys)},
        ):
            out[k][str(validate_published(bytes(raw))["type"]).split(".")[2]] += 1
    return out


async def last_payload(engine: AsyncEngine, key: str, type_name: str) -> dict[str, Any]:
    """The ``data`` of the latest outbox event of ``type_name`` keyed ``key``."""
    async with engine.connect() as conn:
        raw = (
            await conn.execute(
                text(
                    f"SELECT convert_from(payload, 'UTF8') FROM orders.outbox "
                    f"WHERE {_OUTBOX_KEY} = :k AND {_OUTBOX_TYPE} = :t ORDER BY id DESC LIMIT 1"
                ),
                {"k": key, "t": type_name},
            )
        ).scalar_one()
    data: dict[str, Any] = orjson.loads(raw)["data"]
    return data


async def movements_of(engine: AsyncEngine, keys: Sequence[str]) -> Counter[tuple[str, str, int]]:
    """Movement rows of the orders as (order key, kind, quantity), counted."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT order_key, kind, quantity FROM orders.stock_movements WHERE order_key = ANY(:k)"),
            {"k": list(keys)},
        )
        return Counter((r.order_key, r.kind, r.quantity) for r in rows)


async def orders_by_key(engine: AsyncEngine, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Order rows by key, each with ``reservations``: the states of its reservations in creation order.

    One statement, so the order and its reservations come from one snapshot: read separately, a consumer
    committing between the two reads showed reservations of an order the first read had not seen.
    """
    query = text(
        "SELECT o.order_key, o.state, o.stock_stage, o.parked_reason, "
        "ARRAY(SELECT r.state::text FROM orders.reservations r WHERE r.order_key = o.order_key "
        "ORDER BY r.reservation_id) AS reservations "
        "FROM orders.orders o WHERE o.order_key = ANY(:k)"
    )
    async with engine.connect() as conn:
        rows = await conn.execute(query, {"k": list(keys)})
        return {r.order_key: {**r._mapping, "reservations": list(r.reservations)} for r in rows}


async def negative_counter_rows(conn: AsyncConnection) -> int:
    """Batch rows with a counter below zero or over-reserved (the table's CHECKs keep this at 0)."""
    query = text(
        f"SELECT count(*) FROM {SCHEMA}.batch_stock WHERE on_hand < 0 OR soft_reserved < 0 "
        "OR allocated < 0 OR quarantined < 0 OR soft_reserved + allocated > on_hand"
    )
    return int((await conn.execute(query)).scalar_one())


async def assert_reconciled(engine: AsyncEngine) -> None:
    """No counter below zero or over-reserved, and every counter equals the sum of its movements."""
    async with engine.connect() as conn:
        assert await negative_counter_rows(conn) == 0
        assert await counter_drift(UnitOfWork(conn, SCHEMA)) == []
