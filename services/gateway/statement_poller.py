"""TikTok Shop statement poller: settlements that no webhook announces.

TikTok Shop pushes order statuses, never statements. An order paid in one daily statement and adjusted in a later
one (a reserve released, a correction) gets a new statement transaction with no push, so only reading the
statements finds it. Every ``KARYA_TIKTOK_STATEMENT_POLL_INTERVAL_S`` (default 900), for each connected shop
(``gateway.shop_tokens``): list the statements whose ``statement_time`` is in the window after the shop's cursor
(``poll_cursors``, channel ``tiktok_shop:statements``; :func:`services.gateway.pollers.next_window`, re-reading
``KARYA_TIKTOK_STATEMENT_OVERLAP_S``, the first poll ``KARYA_TIKTOK_STATEMENT_LOOKBACK_S`` back), read each
statement's transactions for the orders they pay, and publish every statement row of those orders through the
path the webhook-triggered fetch takes (:func:`services.gateway.clients.base.settlements_of`, then
:func:`services.gateway.emit.emit`). A settlement's id is its content, so a row already published — by a push
or an earlier poll — publishes nothing; the cursor moves in the same transaction as the outbox rows.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

from sqlalchemy import text

from infra.db.unit_of_work import Database
from infra.logging import get_logger
from infra.supervision import every
from services.contracts.base import order_key
from services.gateway.clients.tiktok_shop import ApiStatement
from services.gateway.deps import GatewayDeps
from services.gateway.emit import GatewayTopics, emit
from services.gateway.pollers import advance_cursor, next_window, read_cursor, settlement_emissions
from services.gateway.settings import GatewayConfigError

__all__ = ["CURSOR_CHANNEL", "StatementSource", "poll_tiktok_statements", "run_statement_poller"]

log = get_logger(__name__)
CHANNEL = "tiktok_shop"
#: The ``poll_cursors`` channel of the statement cursors (apart from any order-list cursor of the channel).
CURSOR_CHANNEL = "tiktok_shop:statements"
#: The longest window read in one round (a shop first polled, or after a long outage, catches up in steps).
MAX_WINDOW = timedelta(days=7)


@runtime_checkable
class StatementSource(Protocol):
    """What the poller needs of the TikTok Shop client."""

    async def statements_between(self, shop_id: str, start: datetime, end: datetime) -> list[ApiStatement]:
        """Statements with ``statement_time`` in [start, end)."""
        ...

    async def statement_orders(self, shop_id: str, statement_id: str) -> list[str]:
        """Ids of the orders a statement's transactions pay."""
        ...


async def poll_tiktok_statements(
    db: Database, deps: GatewayDeps, shop: str, topics: GatewayTopics, now: datetime
) -> int:
    """Read one window of one shop's statements (cursor and outbox in ``db``, the gateway's); returns the number of
    settlements published."""
    settings = deps.settings
    window = next_window(
        await read_cursor(db, CURSOR_CHANNEL, shop),
        now,
        overlap=timedelta(seconds=settings.tiktok_statement_overlap_s),
        max_window=MAX_WINDOW,
        lookback=timedelta(seconds=settings.tiktok_statement_lookback_s),
    )
    if window is None:
        return 0
    client = deps.client(CHANNEL)
    if not isinstance(client, StatementSource):
        raise GatewayConfigError(f"the {CHANNEL} client cannot list statements")
    orders: dict[str, None] = {}
    for statement in await client.statements_between(shop, *window):
        orders.update(dict.fromkeys(await client.statement_orders(shop, statement.statement_id)))
    wanted = [(order_key(CHANNEL, shop, order), shop, order) for order in orders]
    settlements = await settlement_emissions(client, wanted, settings.api_concurrency)
    async with db.begin() as uow:
        published = await emit(uow, list(settlements), topics)
        await advance_cursor(uow, CURSOR_CHANNEL, shop, window[1])
    if published:
        log.info("statement_settlements_published", shop=shop, events=len(published), orders=len(orders))
    return len(published)


async def connected_shops(db: Database) -> list[str]:
    """The TikTok Shop shops connected to Karya (a row in ``shop_tokens``)."""
    async with db.read() as uow:
        found = await uow.conn.execute(
            text(f"SELECT shop_id FROM {uow.table('shop_tokens')} WHERE channel = :c ORDER BY shop_id"), {"c": CHANNEL}
        )
        return list(found.scalars())


def _utc_now() -> datetime:
    return datetime.now(UTC)


async def run_statement_poller(
    db: Database,
    deps: GatewayDeps,
    stop: asyncio.Event,
    topics: GatewayTopics,
    clock: Callable[[], datetime] = _utc_now,
) -> None:
    """Poll every connected shop's statements until ``stop`` is set (disabled, unconfigured or without a TikTok
    Shop client: wait for ``stop``; the task is supervised, and one that ends early is restarted)."""
    try:
        settings = deps.settings
        enabled = settings.pollers_enabled and CHANNEL in deps.clients
    except GatewayConfigError as exc:
        log.error("poller_not_configured", poller="tiktok-statements", error=str(exc))
        enabled = False
    if not enabled:
        await stop.wait()
        return

    async def round_() -> None:
        for shop in await connected_shops(db):
            await poll_tiktok_statements(db, deps, shop, topics, clock())

    await every(settings.tiktok_statement_poll_interval_s, stop, round_, failed="statement_poll_failed")
