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

**One bad order does not block the shop.** An order whose statement rows are refused — bad content
(:class:`~services.gateway.values.BadValue`, e.g. a cumulative total below zero) or a request the API refuses
(:class:`~services.gateway.clients.http.MarketplaceRefused`) — is dead-lettered as the normaliser dead-letters a
refused delivery (``gateway.dead_letters`` and ``<raw deliveries topic>.dlq``, consumer :data:`CONSUMER`, keyed
by the order key, the value the order's statement rows as the API answered them, the error naming the field),
once per distinct rows (re-reading the same rows dead-letters nothing again), counted in
``karya_dead_letters_total``; the round goes on and the cursor moves. A marketplace that cannot answer now
(:class:`~services.gateway.clients.http.MarketplaceUnavailable`, any other API error) fails the round: the cursor
stays, and the window is read again next round.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

from sqlalchemy import text

from infra.db.unit_of_work import Database, UnitOfWork
from infra.errors import describe_error, error_text
from infra.logging import get_logger
from infra.messaging.dead_letters import DeadLetter, report_dead_letters, write_dead_letters
from infra.messaging.metrics import MessagingMetrics
from infra.supervision import every
from services.contracts.base import order_key
from services.gateway.clients.base import MarketplaceClient
from services.gateway.clients.http import MarketplaceRefused
from services.gateway.clients.tiktok_shop import ApiStatement
from services.gateway.concurrency import run_bounded
from services.gateway.deps import GatewayDeps
from services.gateway.emit import GatewayTopics, SettlementEmission, emit
from services.gateway.fetching import Outcome, outcome_of
from services.gateway.pollers import advance_cursor, next_window, read_cursor, settlement_emissions
from services.gateway.settings import GatewayConfigError
from services.gateway.values import rejection_context

__all__ = ["CONSUMER", "CURSOR_CHANNEL", "StatementSource", "poll_tiktok_statements", "run_statement_poller"]

log = get_logger(__name__)
CHANNEL = "tiktok_shop"
#: The ``poll_cursors`` channel of the statement cursors (apart from any order-list cursor of the channel).
CURSOR_CHANNEL = "tiktok_shop:statements"
#: The longest window read in one round (a shop first polled, or after a long outage, catches up in steps).
MAX_WINDOW = timedelta(days=7)
#: The consumer name the poller's dead letters are recorded under (``karya dlq`` lists them by it).
CONSUMER = "gateway-statement-poller"


@runtime_checkable
class StatementSource(Protocol):
    """What the poller needs of the TikTok Shop client."""

    async def statements_between(self, shop_id: str, start: datetime, end: datetime) -> list[ApiStatement]:
        """Statements with ``statement_time`` in [start, end)."""
        ...

    async def statement_orders(self, shop_id: str, statement_id: str) -> list[str]:
        """Ids of the orders a statement's transactions pay."""
        ...

    async def statement_rows_bytes(self, shop_id: str, order_id: str) -> bytes:
        """One order's statement transactions as the API answered them (for its dead letter)."""
        ...


async def poll_tiktok_statements(
    db: Database,
    deps: GatewayDeps,
    shop: str,
    topics: GatewayTopics,
    now: datetime,
    metrics: MessagingMetrics | None = None,
) -> int:
    """Read one window of one shop's statements (cursor, outbox and dead letters in ``db``, the gateway's); returns
    the number of settlements published. An order whose rows are refused is dead-lettered (counted in
    ``metrics`` when given) and the cursor still moves; any other failure raises and leaves the cursor.

    Raises:
        MarketplaceApiError: the marketplace could not answer now (the round is retried, the cursor unmoved).
    """
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
    settlements, refused = await _settlements_or_refusals(client, wanted, settings.api_concurrency)
    dead = [await _dead_letter(client, shop, key, order, exc, topics) for key, order, exc in refused]
    async with db.begin() as uow:
        published = await emit(uow, settlements, topics)
        fresh = await _not_yet_dead_lettered(uow, dead)
        await write_dead_letters(uow.conn, uow.schema, CONSUMER, fresh)
        await advance_cursor(uow, CURSOR_CHANNEL, shop, window[1])
    if metrics is not None:
        report_dead_letters(db.schema, CONSUMER, fresh, metrics)
    if published:
        log.info("statement_settlements_published", shop=shop, events=len(published), orders=len(orders))
    return len(published)


async def _settlements_or_refusals(
    client: MarketplaceClient, wanted: list[tuple[str, str, str]], concurrency: int
) -> tuple[list[SettlementEmission], list[tuple[str, str, Exception]]]:
    """The settlement emissions of every order in ``wanted`` whose rows are accepted, and (order key, order,
    error) of those refused; a failure that is not a refusal is raised (the first one, as itself)."""
    found: dict[str, list[SettlementEmission]] = {}
    refused: dict[str, tuple[str, str, Exception]] = {}

    def one(key: str, shop: str, order: str) -> Callable[[], Awaitable[None]]:
        async def call() -> None:
            try:
                found[key] = await settlement_emissions(client, [(key, shop, order)], 1)
            except Exception as exc:
                if outcome_of(exc) is not Outcome.REFUSED:
                    raise
                refused[key] = (key, order, exc)

        return call

    await run_bounded([one(*w) for w in wanted], concurrency)
    emissions = [e for key in sorted(found) for e in found[key]]
    return emissions, [refused[key] for key in sorted(refused)]


async def _dead_letter(
    client: StatementSource, shop: str, key: str, order: str, exc: Exception, topics: GatewayTopics
) -> DeadLetter:
    """The dead letter of one refused order: its statement rows as answered (empty when the API refuses them too),
    the value-free error (a :class:`BadValue` names the field), on the raw deliveries topic's DLQ."""
    try:
        rows = await client.statement_rows_bytes(shop, order)
    except MarketplaceRefused:
        rows = b""
    problem = rejection_context(exc) or "refused"
    error = f"rejected: {error_text(exc, context=f'statement rows: {problem}')}"
    facts: dict[str, object] = {"kind": "rejected", "order_key": key, **describe_error(exc)}
    return DeadLetter.fetched(topics.raw_deliveries, key.encode(), rows, error, facts)


async def _not_yet_dead_lettered(uow: UnitOfWork, dead: list[DeadLetter]) -> list[DeadLetter]:
    """The dead letters in ``dead`` not recorded yet (same consumer, key and rows): a window read again, or a
    round that failed after them, dead-letters the same rows once."""
    if not dead:
        return []
    found = await uow.conn.execute(
        text(
            f"SELECT key, payload FROM {uow.table('dead_letters')} "
            'WHERE consumer = :c AND key = ANY(:keys) AND "partition" = -1'
        ),
        {"c": CONSUMER, "keys": [d.delivery.key for d in dead]},
    )
    recorded = {(bytes(k), bytes(p)) for k, p in found}
    return [d for d in dead if (d.delivery.key, d.delivery.value) not in recorded]


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
    metrics: MessagingMetrics | None = None,
) -> None:
    """Poll every connected shop's statements until ``stop`` is set (disabled, unconfigured or without a TikTok
    Shop client: wait for ``stop``; the task is supervised, and one that ends early is restarted). Dead letters are
    counted in ``metrics`` (the process's) when given."""
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
            await poll_tiktok_statements(db, deps, shop, topics, clock(), metrics)

    await every(settings.tiktok_statement_poll_interval_s, stop, round_, failed="statement_poll_failed")
