"""The expiry sweeper: unpaid soft reservations past their auto-cancel window give their units back.

Reservations are also expired inline whenever a batch touches their SKUs, so availability treats them as free
at once; the sweeper covers SKUs nobody is ordering.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from infra.errors import describe_error
from infra.logging import LogLimiter, get_logger
from infra.supervision import backoff_delay
from services.orders.adapters.order_repo import BatchInfoCache
from services.orders.outbound import OrdersTopics, Outbound
from services.orders.stock_moves import StockWork

log = get_logger(__name__)


async def sweep_expired(
    engine: AsyncEngine, cache: BatchInfoCache, now: datetime | None = None, topics: OrdersTopics | None = None
) -> int:
    """Expire every due soft reservation in one transaction; returns how many expired (their events go to
    ``topics``, default the base names)."""
    async with engine.begin() as conn:
        stock = StockWork(cache)
        await stock.prepare(conn, [], now or datetime.now(UTC), sweep=True)
        if not stock.expired:
            return 0
        out = Outbound(topics or OrdersTopics())
        for order_key, res in stock.expired:
            out.reservation_ended(order_key, res, "expired", stock.batch_info)
        await stock.flush(conn)
        out.availability(await stock.availability(conn))
        await out.flush(conn)
    log.info("reservations_expired", count=len(stock.expired))
    return len(stock.expired)


async def run_sweeper(engine: AsyncEngine, stop: asyncio.Event, topics: OrdersTopics, interval_s: float = 5.0) -> None:
    """Sweep every ``interval_s`` seconds until ``stop`` is set; while sweeps fail (the database away) wait longer
    (doubling, jittered, up to a minute) and log repeats of the same failure once a minute."""
    cache = BatchInfoCache()
    limiter = LogLimiter()
    failures = 0
    while not stop.is_set():
        wait_s = interval_s
        try:
            await sweep_expired(engine, cache, topics=topics)
            if failures:
                failures = 0
                limiter.resolved()
        except Exception as exc:  # described, not dumped: a database error's text can quote a row's value
            failures += 1
            wait_s = max(interval_s, backoff_delay(failures, base_s=interval_s, cap_s=max(interval_s, 60.0)))
            limiter.log(log.error, "sweep_failed", **describe_error(exc))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=wait_s)
