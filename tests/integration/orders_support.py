"""Helpers for orders tests: a per-test catalogue, event publishing, and service processes run by pid."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from infra.db.roles import RoleUrls
from infra.messaging.envelope import Envelope, make_envelope
from infra.messaging.relay import make_producer
from services.contracts.marketplace import ORDER_STATUS_CHANGED, OrderLine, OrderStatusChanged
from services.orders.adapters.catalogue_repo import load_catalogue
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
    ws = [Workshop(f"{lapas}-w1", lapas, "Bengkel satu", "bengkel"), Workshop(f"{lapas}-w2", lapas, "Bengkel dua", "bengkel")]
    return Catalogue(
        lapas=(Lapas(lapas, f"Lapas {u}", "Kota", "Provinsi"),),
        workshops=tuple(ws),
        suppliers=(Supplier(f"sup-{u}", "CV Bahan Baku"),),
        products=(Product(sku, "Sarung tangan kerja", ProductKind.GLOVES, price, f"{lapas}-w1"),),
        listings=tuple(
            Listing(ch, f"shop-{u}", f"p-{u}", None, sku, f"{lapas}-w1") for ch in Channel
        ),
        batches=tuple(
            ProductionBatch(
                f"B-{u}-{i}", f"{lapas}-{w}", sku, qty, d, 12_000, f"sup-{u}",
                (WorkShare(f"WBP-{u[:3].upper()}{i:03d}", 2), WorkShare(f"WBP-{u[3:6].upper()}{i:03d}", 1)),
            )
            for i, (w, qty, d) in enumerate(batches, start=1)
        ),
    )


async def load(engine: AsyncEngine, catalogue: Catalogue) -> None:
    """Load a catalogue as the service role would."""
    async with engine.begin() as conn:
        await load_catalogue(conn, catalogue, "test")


def status_event(
    u: str, order: str, raw_status: str, minutes: int, channel: str = "tokopedia", qty: int = 1,
    lines: Sequence[tuple[str, int]] | None = None, price: int = 50_000,
) -> Envelope:
    """A canonical order event for order ``order`` of the small catalogue, ``minutes`` after T0."""
    shop = f"shop-{u}"
    key = f"{channel}:{shop}:{order}"
    line_specs = lines if lines is not None else [(f"p-{u}", qty)]
    data = OrderStatusChanged(
        order_key=key, channel=channel, shop_id=shop, order_id=order, raw_status=raw_status,  # type: ignore[arg-type]
        update_time=T0 + timedelta(minutes=minutes),
        lines=[OrderLine(channel_product_id=p, quantity=q, unit_price=price) for p, q in line_specs],
    )
    return make_envelope(type=ORDER_STATUS_CHANGED, source="karya/gateway", subject=key, data=data.model_dump(mode="json"))


async def publish(bootstrap: str, topic: str, envelopes: Sequence[Envelope]) -> None:
    """Publish envelopes keyed by subject, in the given order."""
    producer = make_producer(bootstrap, "test-orders")
    await producer.start()
    try:
        futures = [await producer.send(topic, e.to_bytes(), key=e.subject.encode()) for e in envelopes]
        for f in futures:
            await f
    finally:
        await producer.stop()


def free_port() -> int:
    """A free loopback port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def service_processes(
    service: str, count: int, database: RoleUrls, bootstrap: str, prefix: str, log_dir: Path, **env: str
) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Run ``count`` processes of ``karya serve SERVICE``; stop them by pid (SIGTERM, then SIGKILL)."""
    procs: list[subprocess.Popen[bytes]] = []
    base_env = {
        **os.environ, "DATABASE_URL": database.service, "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "KARYA_TOPIC_PREFIX": prefix, "KARYA_KAFKA_PARTITIONS": "6", **env,
    }
    try:
        for i in range(count):
            log = (log_dir / f"{service}-{i}.log").open("wb")
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "karya.cli", "serve", service, "--port", str(free_port())],
                    env=base_env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
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
