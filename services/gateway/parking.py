"""Deliveries parked while their marketplace API is unreachable, and the task that applies them once it answers.

Why a table rather than holding the Kafka batch uncommitted: an outage can last hours (a channel retries its
webhooks for up to ~16 h), far beyond Kafka's poll interval, and a held batch would stop every other channel
and order on the same partitions. A parked delivery is stored whole (record bytes, headers, origin) in the
transaction that marks its inbox row applied, so nothing is lost and nothing is dead-lettered for an outage; the
rest of the batch goes on. Later deliveries of the same order are parked behind it (its order is kept); other
orders are not held.

:func:`run_parked_retries` takes due rows (all of an order's rows together), runs the normaliser's fetch phase
outside any transaction, then in one transaction deletes the rows it retries (``DELETE … RETURNING``: a row
another instance took is skipped) and applies them: what the API answered is published, a refusal (400, 404) is
dead-lettered under the normaliser's consumer name (by the ``reject`` its Kafka handler in ``app.py`` gives: the
use case sees envelopes and their :class:`Origin`, never the consumer's types), and what is still unreachable is
parked again with the next backoff (``api_retry_base_s`` doubling up to ``api_retry_max_s``). A delivery parked
longer than its channel's retry window (``KARYA_<CHANNEL>_API_RETRY_WINDOW_S``) is still retried, and logged as overdue.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from uuid import UUID

from prometheus_client import CollectorRegistry, Gauge
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from infra.db.unit_of_work import UnitOfWork
from infra.errors import describe_error
from infra.logging import get_logger
from infra.messaging.envelope import Envelope
from services.gateway.settings import GatewaySettings

if TYPE_CHECKING:
    from services.gateway.normaliser import Apply, Normaliser, Refused

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a raw delivery's event came from and what it carried, as plain values (the parking table stores them
    whole, so a parked delivery can be dead-lettered later with its original key, bytes and headers)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()


@dataclass(frozen=True, slots=True)
class Arrival:
    """An event the normaliser takes: its envelope and its :class:`Origin`."""

    envelope: Envelope
    origin: Origin


Reject = Callable[[UnitOfWork, Sequence[tuple["Refused", Origin]]], Awaitable[None]]
"""Dead-letters refused parked deliveries in the unit of work (given by the Kafka handler, which knows the consumer)."""

_COLUMNS = 'event_id, channel, order_key, topic, "partition", "offset", key, value, headers, attempts, parked_at'


async def parked_order_keys(uow: UnitOfWork, keys: Iterable[str], besides: set[UUID]) -> set[str]:
    """Which of ``keys`` have a parked delivery other than ``besides`` (those are being applied now)."""
    wanted = sorted(set(keys))
    if not wanted:
        return set()
    rows = await uow.conn.execute(
        text(
            f"SELECT DISTINCT order_key FROM {uow.table('parked_deliveries')} "
            "WHERE order_key = ANY(:keys) AND NOT (event_id = ANY(:ids))"
        ),
        {"keys": wanted, "ids": sorted(besides)},
    )
    return {r[0] for r in rows}


async def park(
    uow: UnitOfWork,
    parked: Sequence[tuple[Arrival, str, str, str]],
    *,
    settings: GatewaySettings,
    history: Mapping[UUID, tuple[int, datetime]] | None = None,
) -> None:
    """Store ``(arrival, channel, order key, reason)`` deliveries as parked; ``history`` carries the attempts and
    first parking time of rows being parked again (the next try waits longer)."""
    if not parked:
        return
    now = datetime.now(UTC)
    params: list[dict[str, Any]] = []
    for arrival, channel, key, reason in parked:
        attempts, since = (history or {}).get(arrival.envelope.event_id, (0, now))
        d = arrival.origin
        wait = _backoff_s(settings, attempts + 1)
        params.append(
            {
                "id": arrival.envelope.event_id,
                "channel": channel,
                "key": key,
                "topic": d.topic,
                "part": d.partition,
                "off": d.offset,
                "rkey": d.key,
                "value": d.value,
                "headers": json.dumps([[k, v.hex()] for k, v in d.headers]),
                "reason": reason,
                "attempts": attempts + 1,
                "since": since,
                "next": now + timedelta(seconds=wait),
            }
        )
    await uow.conn.execute(
        text(
            f"INSERT INTO {uow.table('parked_deliveries')} "
            '(event_id, channel, order_key, topic, "partition", "offset", '
            "key, value, headers, reason, attempts, parked_at, next_attempt_at) VALUES (:id, :channel, :key, "
            ":topic, :part, :off, :rkey, :value, CAST(:headers AS jsonb), :reason, :attempts, :since, :next) "
            "ON CONFLICT (event_id) DO NOTHING"
        ),
        params,
    )
    log.info("deliveries_parked", count=len(params), channels=sorted({p["channel"] for p in params}))


def _backoff_s(settings: GatewaySettings, attempts: int) -> float:
    """Seconds before the next try of a delivery tried ``attempts`` times: doubling from the base, capped."""
    return min(settings.api_retry_base_s * 2.0 ** min(attempts - 1, 30), settings.api_retry_max_s)


def _arrival(row: Any) -> Arrival:
    pairs = json.loads(row.headers) if isinstance(row.headers, str) else row.headers
    headers = tuple((str(k), bytes.fromhex(v)) for k, v in pairs)
    origin = Origin(row.topic, row.partition, row.offset, row.key, bytes(row.value), headers)
    return Arrival(Envelope.from_bytes(origin.value), origin)


async def retry_due(engine: AsyncEngine, normaliser: Normaliser, reject: Reject, limit: int = 200) -> int:
    """One round: retry the parked deliveries of orders with a due row; returns how many left the table."""
    table = f"{normaliser.schema}.parked_deliveries"
    async with engine.connect() as conn:
        rows = list(
            await conn.execute(
                text(
                    f"SELECT {_COLUMNS} FROM {table} WHERE order_key IN (SELECT order_key FROM "
                    f"{table} WHERE next_attempt_at <= clock_timestamp() "
                    "ORDER BY next_attempt_at LIMIT :n) ORDER BY parked_at, event_id"
                ),
                {"n": limit},
            )
        )
    if not rows:
        return 0
    settings = normaliser.settings
    now = datetime.now(UTC)
    overdue = sorted(
        {r.channel for r in rows if (now - r.parked_at).total_seconds() > settings.api_retry_window_s(r.channel)}
    )
    if overdue:
        log.warning("parked_deliveries_overdue", channels=overdue, count=len(rows))
    arrivals = [_arrival(r) for r in rows]
    apply = await normaliser.prepare(arrivals)
    apply.history = {r.event_id: (r.attempts, r.parked_at) for r in rows}
    dead: list[tuple[Refused, Origin]] = []
    try:
        applied = await _apply(engine, normaliser.schema, apply, arrivals, reject, dead)
    except Exception as exc:  # isolate: each order on its own, so one that keeps failing holds back no other
        log.warning("parked_retry_isolating", count=len(arrivals), **describe_error(exc))
        applied, dead = 0, []
        for group in _by_order(rows, arrivals):
            try:
                applied += await _apply(engine, normaliser.schema, apply, group, reject, dead)
            except Exception as failure:
                log.warning("parked_retry_failed", count=len(group), **describe_error(failure))
                await _postpone(engine, table, settings, [a.envelope.event_id for a in group])
    if applied:
        log.info("parked_deliveries_applied", count=applied, dead_lettered=len(dead))
    return applied


def _by_order(rows: Sequence[Any], arrivals: Sequence[Arrival]) -> list[list[Arrival]]:
    """``arrivals`` (in the order of ``rows``, which they were made from) grouped by order key."""
    groups: dict[str, list[Arrival]] = {}
    for row, arrival in zip(rows, arrivals, strict=True):
        groups.setdefault(row.order_key, []).append(arrival)
    return list(groups.values())


async def _apply(
    engine: AsyncEngine,
    schema: str,
    apply: Apply,
    arrivals: list[Arrival],
    reject: Reject,
    dead: list[tuple[Refused, Origin]],
) -> int:
    """Take the rows (another instance's are skipped) and apply them in one transaction; returns how many left.
    The refused ones are dead-lettered in this transaction (once: not those of an earlier transaction of the round)
    and added to ``dead`` once it commits."""
    async with engine.begin() as conn:
        uow = UnitOfWork(conn, schema)
        taken = await conn.execute(
            text(f"DELETE FROM {uow.table('parked_deliveries')} WHERE event_id = ANY(:ids) RETURNING event_id"),
            {"ids": [a.envelope.event_id for a in arrivals]},
        )
        mine = {r[0] for r in taken}
        arrivals = [a for a in arrivals if a.envelope.event_id in mine]
        origins = {a.envelope.event_id: a.origin for a in arrivals}
        outcome = await apply(uow, arrivals)
        refused = [(r, origins[r.envelope.event_id]) for r in outcome.refusals]
        await reject(uow, refused)
    dead += refused
    return len(arrivals) - len(outcome.parked)


async def _postpone(engine: AsyncEngine, table: str, settings: GatewaySettings, ids: list[UUID]) -> None:
    """A round that failed (not the API: a bug or the database) tries these rows again after their backoff."""
    async with engine.begin() as conn:
        await conn.execute(
            text(
                f"UPDATE {table} SET attempts = attempts + 1, next_attempt_at = clock_timestamp() "
                "+ make_interval(secs => least(:base * power(2, least(attempts, 30)), :cap)) WHERE event_id = ANY(:ids)"
            ),
            {"base": settings.api_retry_base_s, "cap": settings.api_retry_max_s, "ids": ids},
        )


CHANNELS = ("blibli", "shopee", "tiktok_shop", "tokopedia")
"""Channels always exported by the gauges (0 when nothing is parked)."""


class ParkedDeliveryGauges:
    """``karya_gateway_parked_deliveries{channel}`` and ``karya_gateway_parked_oldest_age_seconds{channel}``:
    how many deliveries wait for their channel's API, and for how long the oldest has (compare it with the
    channel's retry window)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        labels = ["channel"]
        help_count = "Deliveries parked while their marketplace API is unreachable, by channel"
        help_age = "Seconds the oldest parked delivery has waited for its marketplace API, by channel (0: none)"
        self.count = Gauge("karya_gateway_parked_deliveries", help_count, labels, registry=registry)
        self.oldest_age = Gauge("karya_gateway_parked_oldest_age_seconds", help_age, labels, registry=registry)
        self.export({})

    def export(self, by_channel: Mapping[str, tuple[int, float]]) -> None:
        """Set both gauges from ``channel → (count, oldest age s)``; a channel absent from it reads 0."""
        for channel in sorted({*CHANNELS, *by_channel}):
            parked, age = by_channel.get(channel, (0, 0.0))
            self.count.labels(channel).set(parked)
            self.oldest_age.labels(channel).set(age)

    async def refresh(self, engine: AsyncEngine, schema: str) -> None:
        """Read the parked deliveries per channel (in the gateway's ``schema``) and export them."""
        async with engine.connect() as conn:
            rows = await conn.execute(
                text(
                    "SELECT channel, count(*), extract(epoch FROM clock_timestamp() - min(parked_at)) "
                    f"FROM {schema}.parked_deliveries GROUP BY channel"
                )
            )
            self.export({r[0]: (int(r[1]), float(r[2])) for r in rows})


async def run_parked_retries(
    engine: AsyncEngine,
    normaliser: Normaliser,
    reject: Reject,
    stop: asyncio.Event,
    gauges: ParkedDeliveryGauges | None = None,
    tick_s: float = 1.0,
    gauges_every: int = 15,
) -> None:
    """Retry parked deliveries every ``tick_s`` until ``stop`` (a failed round is logged and tried again);
    refresh ``gauges`` every ``gauges_every`` rounds."""
    rounds = 0
    while not stop.is_set():
        try:
            await retry_due(engine, normaliser, reject)
            if gauges is not None and rounds % gauges_every == 0:
                await gauges.refresh(engine, normaliser.schema)
        except Exception as exc:
            log.warning("parked_retry_failed", **describe_error(exc))
        rounds += 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=tick_s)
