"""Pollers: blibli.com's order list (it has no webhooks) and a backstop for lost webhooks.

**Blibli.** Per store, read the order list for the window
``[cursor - overlap, min(cursor - overlap + max window, now))`` (the first starts ``lookback`` ago),
publish each (order, status) once — the emission key plays the role of blibli.com's (orderNo, orderItemNo,
orderStatus) dedupe key, at order level because the client folds item rows into orders — fetch the
settlement of delivered orders, and move the cursor to the window's end in the same transaction. The overlap
re-reads recent minutes, so an update stamped late is not missed.

**Backstop.** Every webhook can be lost. Orders whose latest published status is not final (cancelled,
refunded, or completed and settled), quiet for ``backstop_min_age_s`` and first seen within
``backstop_max_age_s``, are re-fetched (at most ``backstop_batch`` per round, least recently checked first);
a status newer than the one published is emitted, and a completed order's settlement is fetched until it
appears. Both pollers emit through :func:`services.gateway.emit.emit`, so a fact that also arrives by webhook
is published once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from infra.db.unit_of_work import Database, UnitOfWork
from infra.errors import describe_error
from infra.logging import LogLimiter, get_logger
from infra.supervision import backoff_delay
from services.gateway.canonical import (
    UnmappableStatus,
    classify,
    merge_api_orders,
    notice_from_api,
    polled_status_key,
    settlement_event,
    status_event,
)
from services.gateway.clients.base import ApiOrder, MarketplaceClient, settlements_of
from services.gateway.concurrency import run_bounded
from services.gateway.deps import GatewayDeps
from services.gateway.emit import (
    Emission,
    GatewayTopics,
    SeenOrder,
    SettlementEmission,
    StatusEmission,
    backstop_candidates,
    emit,
)
from services.gateway.settings import GatewayConfigError

log = get_logger(__name__)
Clock = Callable[[], datetime]
BACKSTOP_CHANNELS = ("tokopedia", "tiktok_shop", "shopee", "blibli")
POLLED_CHANNELS = frozenset({"blibli"})


def _utc_now() -> datetime:
    return datetime.now(UTC)


def next_window(
    cursor: datetime | None, now: datetime, *, overlap: timedelta, max_window: timedelta, lookback: timedelta
) -> tuple[datetime, datetime] | None:
    """The next ``[start, end)`` to read, or None when there is nothing new yet (pure)."""
    start = cursor - overlap if cursor is not None else now - lookback
    end = min(start + max(max_window, overlap + timedelta(seconds=1)), now)
    return (start, end) if end > start else None


def polled_emissions(orders: Sequence[ApiOrder]) -> tuple[list[StatusEmission], list[str]]:
    """Status emissions of polled orders (one per order and status) and the reasons of those skipped."""
    emissions: list[StatusEmission] = []
    skipped: list[str] = []
    for order in merge_api_orders(orders):
        notice = notice_from_api(order)
        try:
            verdict = classify(order.channel, order.raw_status)
        except UnmappableStatus as exc:
            skipped.append(f"{notice.order_key}: {exc}")  # value-free: UnmappableStatus quotes only codes
            continue
        key = polled_status_key(order.channel, order.shop_id, order.order_id, order.raw_status)
        emissions.append(StatusEmission(status_event(notice), verdict.state.value, verdict.completion, key=key))
    return emissions, skipped


async def settlement_emissions(
    client: MarketplaceClient, wanted: Sequence[tuple[str, str, str]], concurrency: int
) -> list[SettlementEmission]:
    """Settlement emissions of (order key, shop, order) whose marketplace settlement exists."""
    found: list[SettlementEmission] = []

    def one(key: str, shop: str, order: str) -> Callable[[], Awaitable[None]]:
        async def call() -> None:
            for settlement in await settlements_of(client, shop, order):
                event = settlement_event(settlement, client.channel, key)
                if event is not None:
                    found.append(SettlementEmission(event))

        return call

    await run_bounded([one(*w) for w in wanted], concurrency)
    return sorted(found, key=lambda e: e.event.order_key)


async def poll_blibli_store(db: Database, deps: GatewayDeps, store: str, topics: GatewayTopics, now: datetime) -> int:
    """Read one window of one store's order list (cursors and outbox in ``db``, the gateway's); returns the number
    of events published."""
    settings = deps.settings
    cursor = await read_cursor(db, "blibli", store)
    window = next_window(
        cursor,
        now,
        overlap=timedelta(seconds=settings.blibli_poll_overlap_s),
        max_window=timedelta(seconds=settings.blibli_poll_window_max_s),
        lookback=timedelta(seconds=settings.blibli_initial_lookback_s),
    )
    if window is None:
        return 0
    client = deps.client("blibli")
    statuses, skipped = polled_emissions(await client.orders_updated_between(store, *window))
    for reason in skipped:
        log.error("blibli_order_skipped", store=store, reason=reason)
    # Settled orders too: one that is in the window again changed since (an item settled on a later day).
    wanted = sorted({(s.event.order_key, s.event.shop_id, s.event.order_id) for s in statuses if s.completion})
    settlements = await settlement_emissions(client, wanted, settings.api_concurrency)
    async with db.begin() as uow:
        published = await emit(uow, [*statuses, *settlements], topics)
        await advance_cursor(uow, "blibli", store, window[1])
    return len(published)


async def read_cursor(db: Database, channel: str, shop: str) -> datetime | None:
    """The stored poll cursor of (``channel``, ``shop``) in ``poll_cursors``, None before the first poll."""
    async with db.read() as uow:
        found = await uow.conn.execute(
            text(f"SELECT cursor FROM {uow.table('poll_cursors')} WHERE channel = :c AND shop_id = :s"),
            {"c": channel, "s": shop},
        )
        cursor: datetime | None = found.scalar_one_or_none()
        return cursor


async def advance_cursor(uow: UnitOfWork, channel: str, shop: str, end: datetime) -> None:
    """Move the poll cursor of (``channel``, ``shop``) to ``end`` (never backwards), in ``uow``'s transaction."""
    await uow.conn.execute(
        text(
            f"INSERT INTO {uow.table('poll_cursors')} AS c (channel, shop_id, cursor) VALUES (:c, :s, :end) "
            "ON CONFLICT (channel, shop_id) DO UPDATE SET cursor = GREATEST(c.cursor, EXCLUDED.cursor), "
            "updated_at = clock_timestamp()"
        ),
        {"c": channel, "s": shop, "end": end},
    )


def backstop_status(seen: SeenOrder, detail: ApiOrder) -> StatusEmission | None:
    """The status to publish when the marketplace is ahead of what was published, else None (pure).

    Raises:
        UnmappableStatus: the marketplace reports a status without a canonical state.
    """
    if detail.raw_status.strip().upper() == seen.raw_status.strip().upper():
        return None
    if detail.update_time < seen.update_time:
        return None
    verdict = classify(detail.channel, detail.raw_status)
    # blibli.com statuses are keyed as its order-list poller keys them, so either path publishes them once.
    key = (
        polled_status_key(detail.channel, detail.shop_id, detail.order_id, detail.raw_status)
        if detail.channel in POLLED_CHANNELS
        else ""
    )
    return StatusEmission(status_event(notice_from_api(detail)), verdict.state.value, verdict.completion, key=key)


async def _recheck(deps: GatewayDeps, seen: SeenOrder) -> list[Emission]:
    client = deps.client(seen.channel)
    detail = await client.order_detail(seen.shop_id, seen.order_id)
    emissions: list[Emission] = []
    status = backstop_status(seen, detail)
    if status is not None:
        emissions.append(status)
    if (seen.completion_reached or (status is not None and status.completion)) and not seen.settled:
        emissions += await settlement_emissions(client, [(seen.order_key, seen.shop_id, seen.order_id)], 1)
    return emissions


async def backstop_once(db: Database, deps: GatewayDeps, topics: GatewayTopics) -> int:
    """One backstop round on ``db`` (the gateway's); returns the number of events published."""
    settings = deps.settings
    channels = [c for c in BACKSTOP_CHANNELS if c in deps.clients]
    async with db.begin() as uow:
        candidates = await backstop_candidates(
            uow, channels, settings.backstop_min_age_s, settings.backstop_max_age_s, settings.backstop_batch
        )
    if not candidates:
        return 0
    results: dict[str, list[Emission]] = {}

    def one(seen: SeenOrder) -> Callable[[], Awaitable[None]]:
        async def call() -> None:
            try:
                results[seen.order_key] = await _recheck(deps, seen)
            except Exception as exc:  # one order's failure must not stop the round; it is re-checked later
                log.warning("backstop_recheck_failed", order_key=seen.order_key, **describe_error(exc))

        return call

    await run_bounded([one(c) for c in candidates], settings.api_concurrency)
    emissions = [e for c in candidates for e in results.get(c.order_key, [])]
    if not emissions:
        return 0
    async with db.begin() as uow:
        published = await emit(uow, emissions, topics)
    if published:
        log.info("backstop_published", events=len(published), checked=len(candidates))
    return len(published)


async def _every(name: str, interval_s: float, stop: asyncio.Event, work: Callable[[], Awaitable[int]]) -> None:
    """Run ``work`` every ``interval_s`` until ``stop``; after failed rounds wait longer (doubling, jittered, up to
    ten intervals) and log repeats of the same failure once a minute, so an outage stays quiet and cheap."""
    limiter = LogLimiter()
    failures = 0
    while not stop.is_set():
        wait_s = interval_s
        try:
            await work()
            if failures:
                failures = 0
                limiter.resolved()
        except GatewayConfigError as exc:
            log.error("poller_not_configured", poller=name, error=str(exc))
            await stop.wait()  # restarting cannot help; the process keeps serving without this poller
            return
        except Exception as exc:
            failures += 1
            wait_s = max(interval_s, backoff_delay(failures, base_s=interval_s, cap_s=10 * interval_s))
            limiter.log(log.warning, "poller_round_failed", key=name, poller=name, **describe_error(exc))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=wait_s)


async def run_blibli_poller(
    db: Database,
    deps: GatewayDeps,
    stop: asyncio.Event,
    topics: GatewayTopics,
    clock: Clock = _utc_now,
) -> None:
    """Poll every configured Blibli store until ``stop`` is set (an idle or unconfigured poller waits for
    ``stop``: it is supervised, and a task that ends early is restarted)."""
    try:
        settings = deps.settings
    except GatewayConfigError as exc:
        log.error("poller_not_configured", poller="blibli", error=str(exc))
        await stop.wait()
        return
    if not settings.pollers_enabled:
        await stop.wait()
        return
    if not settings.blibli_stores:
        log.info("blibli_poller_idle", reason="KARYA_BLIBLI_STORE_CODES is empty")
        await stop.wait()
        return
    limiter = LogLimiter()

    async def round_() -> int:
        total = 0
        failed = False
        for store in settings.blibli_stores:
            try:
                total += await poll_blibli_store(db, deps, store, topics, clock())
            except GatewayConfigError:
                raise
            except Exception as exc:
                failed = True
                limiter.log(log.warning, "blibli_poll_failed", key=store, store=store, **describe_error(exc))
        if not failed:
            limiter.resolved()
        return total

    await _every("blibli", settings.blibli_poll_interval_s, stop, round_)


async def run_backstop_poller(db: Database, deps: GatewayDeps, stop: asyncio.Event, topics: GatewayTopics) -> None:
    """Run backstop rounds until ``stop`` is set (disabled or unconfigured: wait for ``stop``)."""
    try:
        settings = deps.settings
    except GatewayConfigError as exc:
        log.error("poller_not_configured", poller="backstop", error=str(exc))
        await stop.wait()
        return
    if settings.pollers_enabled:
        interval = settings.backstop_interval_s
        await _every("backstop", interval, stop, lambda: backstop_once(db, deps, topics))
    else:
        await stop.wait()
