"""The expiry sweeper: unpaid soft reservations past their auto-cancel window give their units back.

Reservations are also expired inline whenever a batch touches their SKUs, so availability treats them as free
at once; the sweeper covers SKUs nobody is ordering. The units given back fill the orders waiting for them in the
same transaction (:func:`services.orders.backorders.fill_freed`).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from infra.db.rowsets import Writes
from infra.db.unit_of_work import UnitOfWork
from infra.errors import describe_error
from infra.logging import LogLimiter, get_logger
from infra.messaging.outbox import OutboundMessage
from infra.supervision import backoff_delay
from services.orders.adapters.order_repo import BatchInfoCache, add_reservations
from services.orders.adapters.stock_repo import add_movements, load_stock
from services.orders.backorders import add_filled, fill_freed
from services.orders.domain.records import Movement, Reservation
from services.orders.outbound import OrdersTopics, Outbound
from services.orders.stock_plan import StockInputs, StockPlan

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class ExpiryPlan:
    """The holds to expire, their movements and the events announcing them (``stock``: the plan they came from,
    ``out``: where its events go, to fill waiting orders from the units given back)."""

    expired: list[tuple[str, Reservation]]
    movements: list[Movement]
    messages: list[OutboundMessage]
    stock: StockPlan
    out: Outbound


def plan_expiry(inputs: StockInputs, topics: OrdersTopics) -> ExpiryPlan:
    """Expire every due hold of ``inputs``: movements, ``reservation_expired`` events, availability after."""
    stock = StockPlan(inputs)
    out = Outbound(topics)
    for order_key, res in stock.expire_due():
        out.reservation_ended(order_key, res, "expired", stock.batch_info)
    out.availability(stock.availability())
    return ExpiryPlan(stock.expired, stock.movements, out.messages, stock, out)


async def expire_due(uow: UnitOfWork, cache: BatchInfoCache, now: datetime, topics: OrdersTopics) -> int:
    """Expire every soft hold due at ``now`` (load → plan → write, in ``uow``); returns how many."""
    inputs = await load_stock(uow, set(), due_at=now, sweep=True, batches=cache)
    if not inputs.due:
        return 0
    plan = plan_expiry(inputs, topics)
    filled = await fill_freed(uow, plan.stock, plan.out)  # the units given back, to the orders waiting for them
    if filled:
        plan.out.availability(plan.stock.availability())
    writes = Writes()
    add_filled(writes, uow, filled)
    add_movements(writes, uow, plan.movements)
    add_reservations(writes, uow, plan.expired)
    uow.publish_with(writes, plan.messages)
    await writes.execute(uow.conn)
    return len(plan.expired)


async def sweep_expired(
    engine: AsyncEngine, schema: str, cache: BatchInfoCache, topics: OrdersTopics, now: datetime | None = None
) -> int:
    """Expire every due soft reservation in one transaction; returns how many expired."""
    async with engine.begin() as conn:
        count = await expire_due(UnitOfWork(conn, schema), cache, now or datetime.now(UTC), topics)
    if count:
        log.info("reservations_expired", count=count)
    return count


async def run_sweeper(
    engine: AsyncEngine, schema: str, stop: asyncio.Event, topics: OrdersTopics, interval_s: float = 5.0
) -> None:
    """Sweep every ``interval_s`` seconds until ``stop`` is set; while sweeps fail (the database away) wait longer
    (doubling, jittered, up to a minute) and log repeats of the same failure once a minute."""
    cache = BatchInfoCache()
    limiter = LogLimiter()
    failures = 0
    while not stop.is_set():
        wait_s = interval_s
        try:
            await sweep_expired(engine, schema, cache, topics)
            if failures:
                failures = 0
                limiter.resolved()
        except Exception as exc:  # described, not dumped: a database error's text can quote a row's value
            failures += 1
            wait_s = max(interval_s, backoff_delay(failures, base_s=interval_s, cap_s=max(interval_s, 60.0)))
            limiter.log(log.error, "sweep_failed", **describe_error(exc))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=wait_s)
