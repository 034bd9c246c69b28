"""Order facts (the payloads already posted per order) and events parked until their order catches up."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from infra.messaging.envelope import Envelope
from services.ledger.adapters.locks import lock_order_facts


@dataclass
class OrderFacts:
    """What the ledger has posted for one order."""

    order_key: str
    lapas_id: str
    completion: dict[str, Any]
    settlement: dict[str, Any] | None = None
    refunded_gross: int = 0
    is_new: bool = False
    changed: bool = False


async def load_facts(conn: AsyncConnection, keys: Iterable[str]) -> dict[str, OrderFacts]:
    """Lock and load the facts of ``keys``."""
    return {
        r.order_key: OrderFacts(r.order_key, r.lapas_id, r.completion, r.settlement, r.refunded_gross)
        for r in await lock_order_facts(conn, keys)
    }


async def save_facts(conn: AsyncConnection, facts: Iterable[OrderFacts]) -> None:
    """Insert new facts and update changed ones (one statement each)."""
    rows = [f for f in facts if f.is_new or f.changed]
    new = [f for f in rows if f.is_new]
    old = [f for f in rows if not f.is_new]
    if new:
        await conn.execute(
            text(
                "INSERT INTO ledger.order_facts (order_key, lapas_id, completion, settlement, refunded_gross) "
                "SELECT k, l, CAST(c AS jsonb), CAST(s AS jsonb), r FROM unnest(CAST(:k AS text[]), "
                "CAST(:l AS text[]), CAST(:c AS text[]), CAST(:s AS text[]), CAST(:r AS bigint[])) AS u(k, l, c, s, r)"
            ),
            {
                "k": [f.order_key for f in new],
                "l": [f.lapas_id for f in new],
                "c": [orjson.dumps(f.completion).decode() for f in new],
                **_changes(new),
            },
        )
    if old:
        await conn.execute(
            text(
                "UPDATE ledger.order_facts f SET settlement = CAST(u.s AS jsonb), refunded_gross = u.r, "
                "updated_at = now() FROM unnest(CAST(:k AS text[]), CAST(:s AS text[]), CAST(:r AS bigint[])) "
                "AS u(k, s, r) WHERE f.order_key = u.k"
            ),
            {"k": [f.order_key for f in old], **_changes(old)},
        )


def _changes(facts: Sequence[OrderFacts]) -> dict[str, list[Any]]:
    """The columns a fact changes after its completion: settlement and refunded gross."""
    return {
        "s": [None if f.settlement is None else orjson.dumps(f.settlement).decode() for f in facts],
        "r": [f.refunded_gross for f in facts],
    }


async def take_pending(conn: AsyncConnection, keys: Iterable[str]) -> list[Envelope]:
    """Remove and return the parked events of ``keys`` (they are re-evaluated with this batch)."""
    rows = await conn.execute(
        text("DELETE FROM ledger.pending_events WHERE order_key = ANY(:k) RETURNING envelope, received_at"),
        {"k": sorted(set(keys))},
    )
    return [Envelope.model_validate(r.envelope) for r in sorted(rows, key=lambda r: r.received_at)]


async def park(conn: AsyncConnection, parked: Sequence[tuple[Envelope, str]]) -> None:
    """Park events until what they wait for has been posted."""
    if parked:
        await conn.execute(
            text(
                "INSERT INTO ledger.pending_events (event_id, order_key, type, envelope, waiting_for) "
                "SELECT i, k, t, CAST(e AS jsonb), w FROM unnest(CAST(:i AS uuid[]), CAST(:k AS text[]), "
                "CAST(:t AS text[]), CAST(:e AS text[]), CAST(:w AS text[])) AS u(i, k, t, e, w) "
                "ON CONFLICT (event_id) DO NOTHING"
            ),
            {
                "i": [e.event_id for e, _ in parked],
                "k": [e.subject for e, _ in parked],
                "t": [e.type for e, _ in parked],
                "e": [e.model_dump_json() for e, _ in parked],
                "w": [w for _, w in parked],
            },
        )


async def arrival_origins(conn: AsyncConnection, event_ids: Iterable[UUID]) -> dict[UUID, tuple[str, int, int]]:
    """Where each of ``event_ids`` first arrived — (topic, partition, offset), from the ledger's inbox — so a
    parked event rejected later is dead-lettered with its origin."""
    ids = sorted(set(event_ids))
    if not ids:
        return {}
    rows = await conn.execute(
        text('SELECT event_id, topic, "partition", "offset" FROM ledger.inbox WHERE event_id = ANY(:i)'), {"i": ids}
    )
    return {r.event_id: (r.topic, int(r.partition), int(r.offset)) for r in rows}


@dataclass(frozen=True)
class ParkedEvent:
    """An event waiting in ``ledger.pending_events`` for what it depends on (``completion`` or ``settlement``)."""

    event_id: UUID
    order_key: str
    type: str
    waiting_for: str
    received_at: datetime
    age_seconds: float


async def parked_events(conn: AsyncConnection, older_than: timedelta | None = None) -> list[ParkedEvent]:
    """Every parked event (parked for longer than ``older_than`` if given), oldest first."""
    rows = await conn.execute(
        text(
            "SELECT event_id, order_key, type, waiting_for, received_at, "
            "extract(epoch FROM clock_timestamp() - received_at)::float8 AS age FROM ledger.pending_events "
            "WHERE CAST(:older AS interval) IS NULL OR received_at < clock_timestamp() - CAST(:older AS interval) "
            "ORDER BY received_at, event_id"
        ),
        {"older": older_than},
    )
    return [ParkedEvent(r.event_id, r.order_key, r.type, r.waiting_for, r.received_at, float(r.age)) for r in rows]


async def parked_summary(conn: AsyncConnection) -> dict[str, tuple[int, float]]:
    """Per ``waiting_for``: how many events are parked and the age in seconds of the oldest."""
    rows = await conn.execute(
        text(
            "SELECT waiting_for, count(*) AS n, extract(epoch FROM clock_timestamp() - min(received_at))::float8 "
            "AS oldest FROM ledger.pending_events GROUP BY waiting_for"
        )
    )
    return {r.waiting_for: (int(r.n), float(r.oldest)) for r in rows}
