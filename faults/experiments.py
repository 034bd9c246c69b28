"""The experiments: what each does to the load (duplicates, poison) or to the stack while the load runs.

A fault driver runs beside the paced load and returns when its cycles are done; the run then waits for the drain.
Each experiment has a full and a ``--quick`` cycle count (one, or two where the cycles alternate between targets).
"""

from __future__ import annotations

import asyncio
import random
import signal
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field, replace
from typing import Any

import asyncpg
import orjson
from sqlalchemy.engine import make_url

from faults.pipeline import Run, Say
from faults.stack import PrivateStack
from infra.messaging.envelope import new_event_id
from infra.messaging.topics import topic_name
from sim.pipeline_env import Wire


@dataclass
class Ctx:
    """What a fault driver works with."""

    run: Run
    stack: PrivateStack
    cycles: int
    rng: random.Random
    say: Say
    notes: dict[str, Any] = field(default_factory=dict)
    proxy: Any = None

    async def pause(self, cycle: int, low: float, high: float) -> None:
        """Wait between faults: 1.5-3 s before the first (so it lands under load), ``low``-``high`` s later."""
        await asyncio.sleep(self.rng.uniform(1.5, 3.0) if cycle == 0 else self.rng.uniform(low, high))

    def note(self, key: str, value: float = 1) -> None:
        """Add ``value`` to a figure reported with the experiment."""
        self.notes[key] = round(self.notes.get(key, 0) + value, 1)


Fault = Callable[[Ctx], Coroutine[Any, Any, None]]
Shape = Callable[[list[Wire], random.Random, int], tuple[list[Wire], int]]
"""Rewrites the load (``wires``, ``rng``, ``cycles``) and says how many records must be dead-lettered."""


@dataclass(frozen=True)
class Experiment:
    """One experiment of the suite."""

    code: str
    title: str
    cycles: int
    quick_cycles: int
    fault: Fault | None = None
    shape: Shape | None = None
    via_proxy: bool = False
    every_cycle: str | None = None
    """A figure the fault driver must have noted once per cycle, or the experiment fails (e.g. recovered)."""


# --- R1: duplicates ---------------------------------------------------------------------------------------------


def duplicates(wires: list[Wire], rng: random.Random, cycles: int) -> tuple[list[Wire], int]:
    """Every record three times plus a copy under a new event id; copies follow in chunks of 100, so a duplicate
    often arrives after later events of its order (as a marketplace's retries do)."""
    out: list[Wire] = []
    for i in range(0, len(wires), 100):
        chunk = wires[i : i + 100]
        out += chunk + chunk + chunk + [_new_id(w) for w in chunk]
    return out, 0


def _new_id(w: Wire) -> Wire:
    envelope = orjson.loads(w.value)
    envelope["event_id"] = str(new_event_id())
    return replace(w, value=orjson.dumps(envelope), event_id=envelope["event_id"])


# --- R8: poison -------------------------------------------------------------------------------------------------

POISON_TOPICS = ("marketplace.order-events", "marketplace.settlements", "orders.events")
POISON_TYPES = {
    "marketplace.order-events": "karya.marketplace.order_status_changed.v1",
    "marketplace.settlements": "karya.marketplace.settlement_reported.v1",
    "orders.events": "karya.orders.order_completed.v1",
}


def poison(wires: list[Wire], rng: random.Random, cycles: int) -> tuple[list[Wire], int]:
    """Per cycle and per input topic: undecodable bytes, a schema-invalid event of a type the consumer acts on,
    and an unknown event type; each about a real order, inserted at a random place in the load."""
    prefix = wires[0].topic.removesuffix("marketplace.order-events").removesuffix("marketplace.settlements")
    out = list(wires)
    bad: list[Wire] = []
    for _ in range(cycles):
        for base in POISON_TOPICS:
            victim = rng.choice(wires)
            for kind in ("undecodable", "invalid", "unknown"):
                bad.append(_poison(topic_name(base, prefix), victim.key, POISON_TYPES[base], kind))
    for w in bad:
        out.insert(rng.randrange(len(out) + 1), w)
    return out, len(bad)


def _poison(topic: str, key: bytes, type_: str, kind: str) -> Wire:
    eid = str(new_event_id())
    if kind == "undecodable":
        return Wire(topic, key, b"\xff\xfe{not json" + eid.encode(), eid)
    envelope = {
        "specversion": "1.0",
        "event_id": eid,
        "type": type_ if kind == "invalid" else "karya.faults.unknown_thing.v1",
        "source": "karya/faults",
        "subject": key.decode(),
        "time": "2026-11-27T00:00:00Z",
        "correlation_id": eid,
        "data": {"order_key": key.decode(), "gross_amount": "lots", "note": "fault experiment"},
    }
    return Wire(topic, key, orjson.dumps(envelope), eid)


# --- helpers ----------------------------------------------------------------------------------------------------


async def _admin() -> asyncpg.Connection:
    import os

    url = make_url(os.environ["KARYA_DB_ADMIN_URL"]).set(drivername="postgresql", database="postgres")
    return await asyncpg.connect(url.render_as_string(hide_password=False), timeout=10)


async def _open_transaction(ctx: Ctx, app: str, timeout_s: float) -> bool:
    """Wait (up to ``timeout_s``) until a connection of ``app`` has a transaction open on the run's database."""
    database = make_url(ctx.run.service_url).database
    conn = await _admin()
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            busy = await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND application_name = $2 "
                "AND xact_start IS NOT NULL AND state IN ('active', 'idle in transaction')",
                database,
                app,
            )
            if busy:
                return True
            await asyncio.sleep(0.01)
        return False
    finally:
        await conn.close()


# --- R3: kill -9 of the consumers -------------------------------------------------------------------------------


async def kill_consumers(ctx: Ctx) -> None:
    """kill -9 orders and ledger in turn, preferably while a transaction of theirs is open; restart at once."""
    for i in range(ctx.cycles):
        name = ("orders", "ledger")[i % 2]
        in_txn = await _open_transaction(ctx, f"karya-{name}", timeout_s=3.0)
        ctx.run.kill(name, signal.SIGKILL)
        ctx.run.start(name)
        ctx.note("kills")
        ctx.note("kills_in_open_transaction", int(in_txn))
        await ctx.run.ready([name], timeout_s=120)
        await asyncio.sleep(ctx.rng.uniform(0.5, 2.0))


# --- R4: PostgreSQL immediate stops -----------------------------------------------------------------------------


async def stop_postgres(ctx: Ctx) -> None:
    """``pg_ctl stop -m immediate`` on the private server under load; start it again after 4-11 s."""
    for i in range(ctx.cycles):
        await ctx.pause(i, 4.0, 8.0)
        if not await asyncio.to_thread(ctx.stack.pg_stop_immediate):
            ctx.note("stop_failed")
            continue
        down = ctx.rng.uniform(4.0, 11.0)
        await asyncio.sleep(down)
        started = time.monotonic()
        await asyncio.to_thread(ctx.stack.pg_start)
        ctx.note("immediate_stops")
        ctx.note("down_s", down + time.monotonic() - started)


# --- R6: broker restarts ----------------------------------------------------------------------------------------


async def restart_broker(ctx: Ctx) -> None:
    """Stop the private broker by SIGTERM or SIGKILL (alternating, SIGKILL first), start it again after 8-15 s."""
    for i in range(ctx.cycles):
        await ctx.pause(i, 5.0, 8.0)
        sig = signal.SIGKILL if i % 2 == 0 else signal.SIGTERM
        started = time.monotonic()
        await asyncio.to_thread(ctx.stack.kill_broker, sig)
        await asyncio.sleep(ctx.rng.uniform(8.0, 15.0))
        await asyncio.to_thread(ctx.stack.start_kafka)
        ctx.note(f"broker_{sig.name.lower()}")
        ctx.note("down_s", time.monotonic() - started)


# --- R9: rebalances ---------------------------------------------------------------------------------------------


async def rebalance(ctx: Ctx) -> None:
    """Add a second orders or ledger process to its group and remove it again (two rebalances per cycle)."""
    for i in range(ctx.cycles):
        name = ("orders", "ledger")[i % 2] + "-2"
        ctx.run.start(name)
        await ctx.run.ready([name], timeout_s=120)
        ctx.note("rebalances")
        await asyncio.sleep(ctx.rng.uniform(1.0, 3.0))
        await ctx.run.remove(name)
        ctx.note("rebalances")
        await asyncio.sleep(ctx.rng.uniform(1.0, 3.0))


# --- R10: relay and database connections killed -----------------------------------------------------------------


_RELAY_LOCK_PIDS = (
    "SELECT l.pid FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid, "
    "(SELECT hashtext(k)::bigint AS key FROM unnest(ARRAY['karya-outbox:orders', 'karya-outbox:ledger']) AS k) AS k "
    "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 AND a.datname = $1 "
    "AND l.classid::bigint = ((k.key >> 32) & 4294967295) AND l.objid::bigint = (k.key & 4294967295)"
)
"""The connections holding the orders and ledger relays' leader locks (``infra.messaging.relay``)."""


async def drop_connections(ctx: Ctx) -> None:
    """Terminate the relays' lock-holding connections, then every connection of the services, in turn; after
    each, wait (up to 30 s) until both relays hold their leader lock again."""
    database = make_url(ctx.run.service_url).database
    for i in range(ctx.cycles):
        await ctx.pause(i, 3.0, 6.0)
        conn = await _admin()
        try:
            if i % 2 == 0:
                pids = [r[0] for r in await conn.fetch(_RELAY_LOCK_PIDS, database)]
                n = await conn.fetchval("SELECT count(pg_terminate_backend(p)) FROM unnest($1::int[]) AS p", pids)
                ctx.note("relay_connections_killed", int(n or 0))
            else:
                n = await conn.fetchval(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = $1 AND application_name LIKE 'karya-%'",
                    database,
                )
                ctx.note("all_connections_killed", int(n or 0))
            started = time.monotonic()
            while time.monotonic() - started < 30:
                if len(await conn.fetch(_RELAY_LOCK_PIDS, database)) >= 2:
                    ctx.note("relay_leadership_regained")
                    break
                await asyncio.sleep(0.2)
        finally:
            await conn.close()


# --- R7: network stalls and resets (through Toxiproxy) ----------------------------------------------------------


NETWORK_FAULTS = (("stall", "postgres"), ("reset", "kafka"), ("reset", "postgres"), ("stall", "kafka"))


async def network_faults(ctx: Ctx) -> None:
    """Through Toxiproxy in front of PostgreSQL and Kafka (``faults.toxiproxy``): hold every byte of one for 3-8 s,
    or reset its connections, in turn."""
    for i in range(ctx.cycles):
        await ctx.pause(i, 3.0, 6.0)
        what, target = NETWORK_FAULTS[i % len(NETWORK_FAULTS)]
        if what == "stall":
            seconds = ctx.rng.uniform(3.0, 8.0)
            await ctx.proxy.stall(target, seconds)
            ctx.note(f"{target}_stall_s", seconds)
        else:
            await ctx.proxy.reset(target)
            ctx.note(f"{target}_resets")


EXPERIMENTS = (
    Experiment("R1", "every event 3x plus a copy with a new id", 1, 1, shape=duplicates),
    Experiment("R3", "kill -9 of orders/ledger mid-batch, restarted", 20, 2, fault=kill_consumers),
    Experiment("R4", "PostgreSQL immediate stop, restart after 4-11 s", 5, 1, fault=stop_postgres),
    Experiment("R6", "Kafka broker SIGKILL/SIGTERM, restart after 8-15 s", 3, 1, fault=restart_broker),
    Experiment(
        "R7", "stalls and resets to PostgreSQL and Kafka (Toxiproxy)", 8, 2, fault=network_faults, via_proxy=True
    ),
    Experiment("R8", "poison on every input: undecodable, invalid, unknown type", 3, 1, shape=poison),
    Experiment("R9", "consumer-group rebalances: processes added and removed", 6, 1, fault=rebalance),
    Experiment(
        "R10",
        "relay connection killed, all DB connections dropped",
        6,
        2,
        fault=drop_connections,
        every_cycle="relay_leadership_regained",
    ),
)
QUICK = ("R1", "R3", "R4", "R6", "R7", "R8", "R9", "R10")
