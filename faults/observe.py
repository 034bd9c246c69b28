"""What a run ended with, read from its database and its topics, and how an experiment differs from the control.

The comparison is order by order: each order's final state, each posting (its key and its lines: account, side,
amount), each production batch's stock counters. The completeness check reads every record of each consumer's
input topics up to the group's committed offset and looks for its inbox row (by event id) or its dead letter (by
origin offset); a record of a known type the consumer does not act on needs neither, one of a type no contract
defines must be dead-lettered. ``karya audit completeness --json`` runs beside it on every run (the audit classifies
records with the consumer's own filter); the report takes the larger of the two counts.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from faults.pipeline import INPUT_TOPICS, Run
from infra.db.engine import make_engine
from infra.messaging.admin import read_to_end
from infra.messaging.topics import topic_name
from services.contracts.registry import EVENT_TYPES
from services.ledger.app import CONSUMED_TYPES

ACTS_ON: dict[str, frozenset[str] | None] = {"orders": None, "ledger": CONSUMED_TYPES}


@dataclass
class Snapshot:
    """The end state of one run."""

    orders: dict[str, str]
    postings: dict[str, str]
    stock: dict[str, tuple[int, ...]]
    applied: int
    dead_letters: int
    parked: int
    conflicts: int
    gaps: int = 0
    gap_examples: list[str] = field(default_factory=list)
    unconsumed: int = 0
    audit_gaps: int | None = None
    """What ``karya audit completeness`` found (None when it could not run)."""


async def snapshot(run: Run) -> Snapshot:
    """Read the run's end state and check its completeness."""
    engine = make_engine(run.service_url, pool_size=1)
    try:
        async with engine.connect() as c:
            snap = Snapshot(
                orders=await _pairs(c, "SELECT order_key, coalesce(state, 'parked') FROM orders.orders"),
                postings=await _pairs(
                    c,
                    "SELECT e.posting_key, e.kind || ' ' || string_agg(l.account || ' ' || l.side || ' ' || l.amount, "
                    "', ' ORDER BY l.line_no) FROM ledger.journal_entries e JOIN ledger.journal_lines l "
                    "USING (sequence) GROUP BY e.posting_key, e.kind",
                ),
                stock={
                    r[0]: tuple(r[1:])
                    for r in await c.execute(
                        text("SELECT batch_id, on_hand, soft_reserved, allocated, quarantined FROM orders.batch_stock")
                    )
                },
                applied=await _count(
                    c,
                    "SELECT (SELECT count(*) FROM orders.inbox WHERE status = 'applied') "
                    "+ (SELECT count(*) FROM ledger.inbox WHERE status = 'applied')",
                ),
                dead_letters=await _count(
                    c, "SELECT (SELECT count(*) FROM orders.dead_letters) + (SELECT count(*) FROM ledger.dead_letters)"
                ),
                parked=await _count(c, "SELECT count(*) FROM ledger.pending_events"),
                conflicts=await _count(c, "SELECT count(*) FROM ledger.posting_conflicts"),
            )
            for consumer in INPUT_TOPICS:
                await _completeness(c, run, consumer, snap)
    finally:
        await engine.dispose()
    snap.audit_gaps = await audit_gaps(run)
    return snap


# The project's own audit, run as its CLI runs it: the groups and filters come from the services' wiring under the
# process's KARYA_TOPIC_PREFIX, so it runs in a child process per run.
_AUDIT = """
import click, typer.main
from karya.audit_cli import audit_app
command = typer.main.get_command(audit_app)
command(["completeness", "--json"] if isinstance(command, click.Group) else ["--json"])
"""


async def audit_gaps(run: Run) -> int | None:
    """Total gaps reported by ``karya audit completeness --json`` for the run's topics and groups."""
    env = {**os.environ, "KARYA_TOPIC_PREFIX": run.prefix, "DATABASE_URL": run.service_url}
    env.pop("KARYA_AUDITOR_URL", None)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _AUDIT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), 300)
        return int(json.loads(out.decode().strip().splitlines()[-1])["gaps"])
    except (TimeoutError, ValueError, KeyError, IndexError):
        if proc.returncode is None:
            proc.kill()
        return None


async def _pairs(c: AsyncConnection, sql: str) -> dict[str, str]:
    return {str(r[0]): str(r[1]) for r in await c.execute(text(sql))}


async def _count(c: AsyncConnection, sql: str) -> int:
    return int((await c.execute(text(sql))).scalar_one())


async def _completeness(c: AsyncConnection, run: Run, consumer: str, snap: Snapshot) -> None:
    """Every record below the group's committed offset has an inbox row or a dead letter (or is not for it)."""
    bootstrap = os.environ["KAFKA_BOOTSTRAP_SERVERS"]
    inbox = {str(r[0]) for r in await c.execute(text(f"SELECT event_id FROM {consumer}.inbox"))}
    dead = {
        (str(r[0]), int(r[1]), int(r[2]))
        for r in await c.execute(text(f'SELECT topic, "partition", "offset" FROM {consumer}.dead_letters'))
    }
    committed = await _committed(bootstrap, f"{run.prefix}karya-{consumer}")
    acts_on = ACTS_ON[consumer]
    for base in INPUT_TOPICS[consumer]:
        topic = topic_name(base, run.prefix)
        for record in await read_to_end(bootstrap, topic):
            if record.offset >= committed.get(TopicPartition(topic, record.partition), 0):
                snap.unconsumed += 1
                continue
            if (topic, record.partition, record.offset) in dead:
                continue
            event_id, type_ = _identify(record.value or b"")
            if type_ in EVENT_TYPES and acts_on is not None and type_ not in acts_on:
                continue  # a known type this consumer has no use for
            if event_id is not None and event_id in inbox:
                continue
            snap.gaps += 1
            if len(snap.gap_examples) < 5:
                snap.gap_examples.append(f"{consumer} {topic}/{record.partition}/{record.offset} {type_}")


def _identify(raw: bytes) -> tuple[str | None, str | None]:
    try:
        value: Any = orjson.loads(raw)
        return str(value["event_id"]), str(value["type"])
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return None, None


async def _committed(bootstrap: str, group: str) -> dict[TopicPartition, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return {tp: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}


@dataclass
class Figures:
    """One experiment's row of the report."""

    experiment: str
    events_in: int
    applied: int
    lost: int
    doubled: int
    dead_lettered: int
    completeness_gaps: int
    verdict: str
    details: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """The figures as one JSON-able dict."""
        return {
            "events_in": self.events_in,
            "applied": self.applied,
            "lost": self.lost,
            "doubled": self.doubled,
            "dead_lettered": self.dead_lettered,
            "completeness_gaps": self.completeness_gaps,
            "verdict": self.verdict,
            **self.details,
        }


def compare(name: str, control: Snapshot, exp: Snapshot, run: Run, drained: bool, expected_dead: int = 0) -> Figures:
    """The experiment's figures against the control run of the same seed."""
    orders_missing = [k for k in control.orders if k not in exp.orders]
    orders_differ = [k for k in control.orders if k in exp.orders and exp.orders[k] != control.orders[k]]
    orders_extra = [k for k in exp.orders if k not in control.orders]
    postings_missing = [k for k in control.postings if exp.postings.get(k) != control.postings[k]]
    postings_extra = [k for k in exp.postings if k not in control.postings]
    stock_diffs = [b for b in control.stock if exp.stock.get(b) != control.stock[b]]
    dead_lettered = exp.dead_letters - control.dead_letters
    vanished = max(0, expected_dead - dead_lettered)  # poison that was neither applied nor dead-lettered
    conflicts = exp.conflicts - control.conflicts
    lost = len(orders_missing) + len(orders_differ) + len(postings_missing) + vanished
    doubled = len(orders_extra) + len(postings_extra) + max(0, conflicts)
    gaps = exp.gaps if exp.audit_gaps is None else max(exp.gaps, exp.audit_gaps)
    ok = lost == 0 and doubled == 0 and gaps == 0 and not stock_diffs and drained
    details: dict[str, Any] = {
        "orders_missing": len(orders_missing),
        "orders_state_differs": len(orders_differ),
        "postings_missing_or_differ": len(postings_missing),
        "postings_extra": len(postings_extra),
        "stock_batches_differ": len(stock_diffs),
        "poison_vanished": vanished,
        "ledger_parked": exp.parked,
        "drained": drained,
        "unconsumed": exp.unconsumed,
        "audit_gaps": exp.audit_gaps,
        "harness_gaps": exp.gaps,
        "service_crashes": run.crashes,
        "republished": run.republished,
    }
    if exp.gap_examples:
        details["gap_examples"] = exp.gap_examples
    examples = (orders_missing + orders_differ)[:3] + postings_missing[:3]
    if examples:
        details["lost_examples"] = examples
    return Figures(
        name, run.published, exp.applied, lost, doubled, dead_lettered, gaps, "PASS" if ok else "FAIL", details
    )
