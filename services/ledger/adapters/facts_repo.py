"""Order facts (the payloads already posted per order) and events parked until their order catches up."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import orjson
from sqlalchemy import text

from infra.db.rowsets import Writes
from infra.db.unit_of_work import UnitOfWork
from infra.messaging.envelope import Envelope
from services.ledger.adapters.locks import lock_order_facts
from services.ledger.domain.facts import OrderFacts


async def load_facts(uow: UnitOfWork, keys: Iterable[str]) -> dict[str, OrderFacts]:
    """Lock and load the facts of ``keys``."""
    return {
        r.order_key: OrderFacts.stored(r.order_key, r.lapas_id, r.completion, r.settlement, r.refunded_gross)
        for r in await lock_order_facts(uow, keys)
    }


async def save_facts(uow: UnitOfWork, facts: Iterable[OrderFacts]) -> None:
    """Insert new facts and update changed ones (one statement)."""
    writes = Writes()
    add_facts(writes, uow, facts)
    await writes.execute(uow.conn)


def add_facts(writes: Writes, uow: UnitOfWork, facts: Iterable[OrderFacts]) -> None:
    """Add the insert of new facts and the update of changed ones to ``writes``."""
    rows = [f for f in facts if f.is_new or f.changed]
    new = [f for f in rows if f.is_new]
    old = [f for f in rows if not f.is_new]
    table = uow.table("order_facts")
    if new:
        doc = _json([(f.order_key, f.lapas_id, f.completion, f.state(), f.refunded_gross) for f in new])
        if doc is not None:
            writes.add_statement(
                f"INSERT INTO {table} (order_key, lapas_id, completion, settlement, refunded_gross) "
                f"SELECT e->>0, e->>1, e->2, {_OBJECT.format(i=3)}, CAST(e->>4 AS bigint) FROM {_ROWS}",
                {"rows": doc},
            )
        else:
            writes.add_statement(
                f"INSERT INTO {table} (order_key, lapas_id, completion, settlement, refunded_gross) "
                "SELECT k, l, CAST(c AS jsonb), CAST(s AS jsonb), r FROM unnest(CAST(:{p}k AS text[]), "
                "CAST(:{p}l AS text[]), CAST(:{p}c AS text[]), CAST(:{p}s AS text[]), CAST(:{p}r AS bigint[])) "
                "AS u(k, l, c, s, r)",
                {
                    "k": [f.order_key for f in new],
                    "l": [f.lapas_id for f in new],
                    "c": [orjson.dumps(f.completion).decode() for f in new],
                    **_changes(new),
                },
            )
    if old:
        doc = _json([(f.order_key, f.state(), f.refunded_gross) for f in old])
        if doc is not None:
            writes.add_statement(
                f"UPDATE {table} f SET settlement = u.s, refunded_gross = u.r, updated_at = now() "
                f"FROM (SELECT e->>0 AS k, {_OBJECT.format(i=1)} AS s, CAST(e->>2 AS bigint) AS r FROM {_ROWS}) "
                "AS u WHERE f.order_key = u.k",
                {"rows": doc},
            )
        else:
            writes.add_statement(
                f"UPDATE {table} f SET settlement = CAST(u.s AS jsonb), refunded_gross = u.r, updated_at = now() "
                "FROM unnest(CAST(:{p}k AS text[]), CAST(:{p}s AS text[]), CAST(:{p}r AS bigint[])) AS u(k, s, r) "
                "WHERE f.order_key = u.k",
                {"k": [f.order_key for f in old], **_changes(old)},
            )


# The facts' rows as one JSON text, their JSON columns embedded as they are (the server parses each once), instead
# of one array parameter per column, which asyncpg encodes value by value (see infra/db/rowsets.py).
_ROWS = "jsonb_array_elements(CAST(CAST(:{p}rows AS text) AS jsonb)) AS e"
_OBJECT = "CASE WHEN jsonb_typeof(e->{i}) = 'null' THEN NULL ELSE e->{i} END"  # no settlement: SQL NULL, as before


def _json(rows: list[tuple[Any, ...]]) -> str | None:
    """``rows`` as one JSON text, or None when JSON would not carry them as the arrays do (an integer past 2**53,
    a NUL in a text): then the arrays are sent, and succeed or fail as they always did."""
    try:
        doc = orjson.dumps(rows, option=orjson.OPT_STRICT_INTEGER)
    except TypeError:  # orjson.JSONEncodeError
        return None
    return None if b"\\u0000" in doc else doc.decode()


def _changes(facts: Sequence[OrderFacts]) -> dict[str, list[Any]]:
    """The columns a fact changes after its completion: the settlement state and refunded gross."""
    return {
        "s": [None if (state := f.state()) is None else orjson.dumps(state).decode() for f in facts],
        "r": [f.refunded_gross for f in facts],
    }


def add_parked(
    writes: Writes, uow: UnitOfWork, parked: Sequence[tuple[Envelope, str]], since: Mapping[UUID, str] | None = None
) -> None:
    """Add to ``writes`` the parking of events until what they wait for has been posted: each planned now, and
    received when ``since`` says (an event taken from the parked ones and parked again) or now (a new one)."""
    if parked:
        since = since or {}
        writes.add_statement(
            f"INSERT INTO {uow.table('pending_events')} (event_id, order_key, type, envelope, waiting_for, "
            "received_at) SELECT i, k, t, CAST(e AS jsonb), w, coalesce(CAST(r AS timestamptz), now()) "
            "FROM unnest(CAST(:{p}i AS uuid[]), CAST(:{p}k AS text[]), CAST(:{p}t AS text[]), CAST(:{p}e AS text[]), "
            "CAST(:{p}w AS text[]), CAST(:{p}r AS text[])) AS u(i, k, t, e, w, r) ON CONFLICT (event_id) DO NOTHING",
            {
                "i": [e.event_id for e, _ in parked],
                "k": [e.subject for e, _ in parked],
                "t": [e.type for e, _ in parked],
                "e": [e.model_dump_json() for e, _ in parked],
                "w": [w for _, w in parked],
                "r": [since.get(e.event_id) for e, _ in parked],
            },
        )


@dataclass(frozen=True)
class ParkedEvent:
    """An event waiting in ``ledger.pending_events`` for what it depends on (``completion`` or ``settlement``)."""

    event_id: UUID
    order_key: str
    type: str
    waiting_for: str
    received_at: datetime
    age_seconds: float


async def parked_events(uow: UnitOfWork, older_than: timedelta | None = None) -> list[ParkedEvent]:
    """Every parked event (parked for longer than ``older_than`` if given), oldest first."""
    rows = await uow.conn.execute(
        text(
            "SELECT event_id, order_key, type, waiting_for, received_at, "
            f"extract(epoch FROM clock_timestamp() - received_at)::float8 AS age FROM {uow.table('pending_events')} "
            "WHERE CAST(:older AS interval) IS NULL OR received_at < clock_timestamp() - CAST(:older AS interval) "
            "ORDER BY received_at, event_id"
        ),
        {"older": older_than},
    )
    return [ParkedEvent(r.event_id, r.order_key, r.type, r.waiting_for, r.received_at, float(r.age)) for r in rows]


async def parked_summary(uow: UnitOfWork) -> dict[str, tuple[int, float]]:
    """Per ``waiting_for``: how many events are parked and the age in seconds of the oldest."""
    rows = await uow.conn.execute(
        text(
            "SELECT waiting_for, count(*) AS n, extract(epoch FROM clock_timestamp() - min(received_at))::float8 "
            f"AS oldest FROM {uow.table('pending_events')} GROUP BY waiting_for"
        )
    )
    return {r.waiting_for: (int(r.n), float(r.oldest)) for r in rows}


async def held_orders(uow: UnitOfWork) -> list[tuple[OrderFacts, datetime]]:
    """Every order whose distribution waits (its facts and when they last changed), oldest first. A scan of
    ``order_facts``: meant for the operator's listing, not for a hot path."""
    rows = await uow.conn.execute(
        text(
            "SELECT order_key, lapas_id, completion, settlement, refunded_gross, updated_at "
            f"FROM {uow.table('order_facts')} WHERE settlement->>'hold' IS NOT NULL ORDER BY updated_at, order_key"
        )
    )
    return [
        (OrderFacts.stored(r.order_key, r.lapas_id, r.completion, r.settlement, r.refunded_gross), r.updated_at)
        for r in rows
    ]
