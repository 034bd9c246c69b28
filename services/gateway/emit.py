"""Publishing canonical events through the gateway outbox, each fact once; remembering what orders said.

Every producer of canonical events (the normaliser, the pollers, the Bukalapak import) calls :func:`emit`
inside its transaction. An emission key per fact (``gateway.emitted_events``) makes a repeat a no-op,
whichever path it came by; ``gateway.order_status_seen`` keeps the latest status per order for the
backstop poller.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import text

from infra.db.unit_of_work import UnitOfWork
from infra.messaging.envelope import Envelope, make_envelope
from infra.messaging.outbox import OutboundMessage
from infra.messaging.topics import (
    GATEWAY_RAW_DELIVERIES,
    MARKETPLACE_ORDER_EVENTS,
    MARKETPLACE_SETTLEMENTS,
    prefixed,
)
from services.contracts.marketplace import (
    ORDER_STATUS_CHANGED,
    REFUND_REPORTED,
    SETTLEMENT_REPORTED,
    OrderStatusChanged,
    RefundReported,
    SettlementReported,
)
from services.gateway.canonical import settlement_emission_key, status_emission_key

SOURCE = "karya/gateway"


@dataclass(frozen=True, slots=True)
class GatewayTopics:
    """The topics the gateway reads and writes; the defaults are the base names (no prefix), and the composition
    root builds them under the deployment's prefix with :meth:`with_prefix`."""

    raw_deliveries: str = GATEWAY_RAW_DELIVERIES
    order_events: str = MARKETPLACE_ORDER_EVENTS
    settlements: str = MARKETPLACE_SETTLEMENTS

    @classmethod
    def with_prefix(cls, prefix: str) -> GatewayTopics:
        """The same topics under ``prefix``."""
        return prefixed(cls(), prefix)


@dataclass(frozen=True, slots=True)
class StatusEmission:
    """A status event to publish, with what the gateway needs to remember about it."""

    event: OrderStatusChanged
    state: str
    completion: bool
    key: str = ""
    causation: Envelope | None = field(default=None, compare=False)

    @property
    def emission_key(self) -> str:
        """The explicit key, else (order, status, marketplace time)."""
        event = self.event
        return self.key or status_emission_key(event.order_key, event.raw_status, event.update_time)


@dataclass(frozen=True, slots=True)
class SettlementEmission:
    """A settlement event to publish."""

    event: SettlementReported
    causation: Envelope | None = field(default=None, compare=False)

    @property
    def emission_key(self) -> str:
        """One per order and settlement id."""
        return settlement_emission_key(self.event.order_key, self.event.settlement_id)


@dataclass(frozen=True, slots=True)
class RefundEmission:
    """A refund event to publish (once per order and marketplace refund id)."""

    event: RefundReported
    causation: Envelope | None = field(default=None, compare=False)

    @property
    def emission_key(self) -> str:
        """One per order and refund id."""
        return f"refund|{self.event.order_key}|{self.event.refund_id}"


Emission = StatusEmission | SettlementEmission | RefundEmission


async def emit(uow: UnitOfWork, emissions: Sequence[Emission], topics: GatewayTopics) -> list[Envelope]:
    """Enqueue the emissions not published before (in the given order) in the unit of work's outbox; returns the
    envelopes enqueued."""
    unique: dict[str, Emission] = {}
    for emission in emissions:
        unique.setdefault(emission.emission_key, emission)
    if not unique:
        return []
    envelopes = {key: _envelope(e) for key, e in unique.items()}
    rows = await uow.conn.execute(
        text(
            f"INSERT INTO {uow.table('emitted_events')} (emission_key, order_key, event_type, event_id) "
            "SELECT * FROM unnest(CAST(:keys AS text[]), CAST(:orders AS text[]), CAST(:types AS text[]), "
            "CAST(:ids AS uuid[])) ON CONFLICT DO NOTHING RETURNING emission_key"
        ),
        {
            "keys": list(envelopes),
            "orders": [e.subject for e in envelopes.values()],
            "types": [e.type for e in envelopes.values()],
            "ids": [e.event_id for e in envelopes.values()],
        },
    )
    fresh = {r[0] for r in rows}
    published = [(unique[k], envelopes[k]) for k in envelopes if k in fresh]
    await uow.publish(
        [
            OutboundMessage.of(
                topics.order_events if isinstance(emission, StatusEmission) else topics.settlements, envelope
            )
            for emission, envelope in published
        ],
    )
    await remember(uow, [e for e in unique.values() if isinstance(e, StatusEmission)])
    settled = {e.event.order_key for e in unique.values() if isinstance(e, SettlementEmission)}
    await mark_settled(uow, settled)
    return [envelope for _, envelope in published]


def _envelope(emission: Emission) -> Envelope:
    if isinstance(emission, StatusEmission):
        event_type = ORDER_STATUS_CHANGED
    else:
        event_type = REFUND_REPORTED if isinstance(emission, RefundEmission) else SETTLEMENT_REPORTED
    return make_envelope(
        type=event_type,
        source=SOURCE,
        subject=emission.event.order_key,
        data=emission.event.model_dump(mode="json"),
        causation=emission.causation,
    )


@dataclass
class _Latest:
    emission: StatusEmission
    has_lines: bool
    completion: bool


async def remember(uow: UnitOfWork, statuses: Iterable[StatusEmission]) -> None:
    """Fold statuses into ``order_status_seen``: the latest marketplace time wins, flags only turn on."""
    latest: dict[str, _Latest] = {}
    for s in statuses:
        have = latest.get(s.event.order_key)
        if have is None:
            latest[s.event.order_key] = _Latest(s, bool(s.event.lines), s.completion)
            continue
        if s.event.update_time >= have.emission.event.update_time:
            have.emission = s
        have.has_lines |= bool(s.event.lines)
        have.completion |= s.completion
    if not latest:
        return
    rows = [latest[k] for k in sorted(latest)]  # a fixed lock order across concurrent writers
    await uow.conn.execute(
        text(
            f"INSERT INTO {uow.table('order_status_seen')} AS s (order_key, channel, shop_id, order_id, "
            "raw_status, state, update_time, has_lines, completion_reached) "
            "SELECT * FROM unnest(CAST(:keys AS text[]), CAST(:channels AS text[]), CAST(:shops AS text[]), "
            "CAST(:orders AS text[]), CAST(:raws AS text[]), CAST(:states AS text[]), "
            "CAST(:times AS timestamptz[]), CAST(:lines AS boolean[]), CAST(:completions AS boolean[])) "
            "ON CONFLICT (order_key) DO UPDATE SET "
            "raw_status = CASE WHEN EXCLUDED.update_time >= s.update_time THEN EXCLUDED.raw_status "
            "ELSE s.raw_status END, "
            "state = CASE WHEN EXCLUDED.update_time >= s.update_time THEN EXCLUDED.state ELSE s.state END, "
            "update_time = GREATEST(s.update_time, EXCLUDED.update_time), "
            "has_lines = s.has_lines OR EXCLUDED.has_lines, "
            "completion_reached = s.completion_reached OR EXCLUDED.completion_reached"
        ),
        {
            "keys": [r.emission.event.order_key for r in rows],
            "channels": [r.emission.event.channel for r in rows],
            "shops": [r.emission.event.shop_id for r in rows],
            "orders": [r.emission.event.order_id for r in rows],
            "raws": [r.emission.event.raw_status for r in rows],
            "states": [r.emission.state for r in rows],
            "times": [r.emission.event.update_time for r in rows],
            "lines": [r.has_lines for r in rows],
            "completions": [r.completion for r in rows],
        },
    )


async def mark_settled(uow: UnitOfWork, order_keys: Iterable[str]) -> None:
    """Record that these orders' settlements were published."""
    keys = sorted(set(order_keys))
    if keys:
        await uow.conn.execute(
            text(
                f"UPDATE {uow.table('order_status_seen')} SET settled = true "
                "WHERE order_key = ANY(:keys) AND NOT settled"
            ),
            {"keys": keys},
        )


@dataclass(frozen=True, slots=True)
class SeenOrder:
    """What the gateway last published about one order."""

    order_key: str
    channel: str
    shop_id: str
    order_id: str
    raw_status: str
    state: str
    update_time: datetime
    has_lines: bool
    completion_reached: bool
    settled: bool


_SEEN_COLUMNS = (
    "order_key, channel, shop_id, order_id, raw_status, state, update_time, has_lines, completion_reached, settled"
)


_RETURNING = ", ".join("s." + c for c in _SEEN_COLUMNS.split(", "))


async def load_seen(uow: UnitOfWork, order_keys: Iterable[str]) -> dict[str, SeenOrder]:
    """The remembered state of these orders (absent when never published)."""
    keys = sorted(set(order_keys))
    if not keys:
        return {}
    rows = await uow.conn.execute(
        text(f"SELECT {_SEEN_COLUMNS} FROM {uow.table('order_status_seen')} WHERE order_key = ANY(:keys)"),
        {"keys": keys},
    )
    return {r[0]: SeenOrder(*r) for r in rows}


async def backstop_candidates(
    uow: UnitOfWork, channels: Sequence[str], min_age_s: float, max_age_s: float, limit: int
) -> list[SeenOrder]:
    """Orders not done, not checked for ``min_age_s``, first seen within ``max_age_s``; least recently checked
    first. They are claimed (``checked_at`` set to now) so a concurrent poller does not take them too."""
    seen = uow.table("order_status_seen")
    rows = await uow.conn.execute(
        text(
            f"WITH picked AS (SELECT order_key FROM {seen} WHERE NOT done "
            "AND channel = ANY(:channels) AND checked_at < now() - make_interval(secs => :min_age) "
            "AND first_seen_at > now() - make_interval(secs => :max_age) "
            "ORDER BY checked_at LIMIT :limit FOR UPDATE SKIP LOCKED) "
            f"UPDATE {seen} s SET checked_at = now() FROM picked "
            f"WHERE s.order_key = picked.order_key RETURNING {_RETURNING}"
        ),
        {"channels": list(channels), "min_age": min_age_s, "max_age": max_age_s, "limit": limit},
    )
    return [SeenOrder(*r) for r in rows]
