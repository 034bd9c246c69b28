"""What the posting use case reads about a batch's orders before it plans, in TWO round trips.

In lock order (:mod:`services.ledger.adapters.locks`): the orders' facts are locked first, and the same statement
reads the closed periods of their lapas (and of lapas the caller names: those of the completions arriving) and the
stamp of the split policies and tax settings (:func:`services.ledger.adapters.policy_repo.stamp_sql`). Then one
statement takes the events parked for those orders (deleted: they are planned again with the batch), with where
each first arrived (the ledger's inbox), and reads which of the orders ended without completion. Each of these
reads was a statement of its own; a batch waits for every round trip while PostgreSQL shares the box, so they travel
together — but not the lock and the take: see ``_TAKE``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from uuid import UUID

from infra.db.rowsets import KeyedQuery
from infra.db.unit_of_work import UnitOfWork
from infra.messaging.envelope import Envelope
from services.ledger.adapters.journal_repo import (
    balances_sql,
    existing_hashes,
    normal_balances,
    normal_of,
    posted_hashes_sql,
)
from services.ledger.adapters.locks import FACTS_LOCK
from services.ledger.adapters.periods_repo import CLOSED_AS_JSON, closed_from_json
from services.ledger.adapters.policy_repo import stamp_sql
from services.ledger.domain.facts import OrderFacts
from services.ledger.domain.periods import ClosedPeriod
from services.ledger.names import CONSUMER
from services.ledger.posting_plan import ENDING_TYPES


@dataclass(frozen=True, slots=True)
class OrdersRead:
    """The batch's orders as the ledger holds them: ``facts`` (locked), the ``parked`` events taken for them (oldest
    first) with when each first arrived (``parked_since``, as the database wrote it: parked again, it keeps that
    time) and ``origins`` (topic, partition, offset) of those that came through the inbox, the ``ended`` orders
    (each with the type of the first event that said so), the ``closed`` periods of the lapas in ``closed_for``, and
    the ``policy_stamp``."""

    facts: dict[str, OrderFacts]
    parked: list[Envelope]
    parked_since: dict[UUID, str]
    origins: dict[UUID, tuple[str, int, int]]
    ended: dict[str, str]
    closed: dict[str, list[ClosedPeriod]]
    closed_for: set[str]
    policy_stamp: list[object]


# 1. the facts locked, with what does not depend on the orders' events (closed periods, the policy stamp);
_LOCK = """WITH k AS MATERIALIZED (SELECT {keys} AS keys),
f AS MATERIALIZED ({facts})
SELECT
  (SELECT coalesce(json_agg(json_build_array(order_key, lapas_id, completion, settlement, refunded_gross)), '[]')
     FROM f) AS facts,
  ({closed}) AS closed,
  {stamp} AS policy_stamp"""
# 2. in a statement of its own, so with a snapshot taken once those locks are held: the parked events taken and
# the ended orders. A transaction this one waited for may just have parked an event of one of these orders; read in
# the locking statement, whose snapshot predates that commit, the event would stay parked. Each taken event's inbox
# row is looked up by its primary key (OFFSET 0 keeps the sub-select a per-row probe): joined, the planner hashed the
# whole inbox, one row per event ever consumed, on every batch that took a parked event.
_TAKE = """WITH k AS MATERIALIZED (SELECT {keys} AS keys),
t AS (DELETE FROM {schema}.pending_events WHERE order_key = ANY(CAST((SELECT keys FROM k) AS text[]))
      RETURNING event_id, envelope, received_at)
SELECT
  (SELECT coalesce(json_agg(json_build_array(t.envelope, i.topic, i."partition", i."offset", t.received_at)
                            ORDER BY t.received_at, t.event_id), '[]')
     FROM t LEFT JOIN LATERAL (SELECT i.topic, i."partition", i."offset" FROM {schema}.inbox i
                                WHERE i.consumer = :consumer AND i.event_id = t.event_id OFFSET 0) i ON true) AS parked,
  (SELECT coalesce(json_agg(json_build_array(c.order_key, c.event_type)), '[]')
     FROM (SELECT DISTINCT ON (order_key) order_key, event_type FROM {schema}.closed_without_posting
            WHERE order_key = ANY(CAST((SELECT keys FROM k) AS text[])) AND event_type = ANY(CAST(:ending AS text[]))
            ORDER BY order_key, closed_at, event_id) c) AS ended"""


@cache
def _queries(schema: str) -> tuple[KeyedQuery, KeyedQuery]:
    facts = FACTS_LOCK.replace("{schema}", schema).replace("{keys}", "CAST((SELECT keys FROM k) AS text[])")
    closed = CLOSED_AS_JSON.replace(
        "{where}", "lapas_id IN (SELECT lapas_id FROM f) OR lapas_id = ANY(CAST(:lapas AS text[]))"
    )
    lock = (
        _LOCK.replace("{facts}", facts)
        .replace("{closed}", closed)
        .replace("{stamp}", stamp_sql(schema))
        .replace("{schema}", schema)
    )
    return KeyedQuery(lock), KeyedQuery(_TAKE.replace("{schema}", schema))


async def read_orders(uow: UnitOfWork, keys: Iterable[str], lapas: Iterable[str]) -> OrdersRead:
    """Lock the facts of the orders ``keys``, take their parked events and read the rest of :class:`OrdersRead`;
    the closed periods are those of the facts' lapas and of ``lapas``."""
    wanted = sorted(set(keys))
    covered_lapas = sorted(set(lapas))
    lock, take = _queries(uow.schema)
    row = (await lock.execute(uow.conn, wanted, {"lapas": covered_lapas})).one()
    facts = {k: OrderFacts.stored(k, lapas, c, s, int(r)) for k, lapas, c, s, r in row.facts}
    taken = (await take.execute(uow.conn, wanted, {"ending": sorted(ENDING_TYPES), "consumer": CONSUMER})).one()
    parked = [Envelope.model_validate(envelope) for envelope, *_ in taken.parked]
    origins: dict[UUID, tuple[str, int, int]] = {}
    since: dict[UUID, str] = {}
    for e, (_, topic, partition, offset, received_at) in zip(parked, taken.parked, strict=True):
        since[e.event_id] = received_at
        if topic is not None:
            origins[e.event_id] = (topic, int(partition), int(offset))
    covered = {f.lapas_id for f in facts.values()} | set(covered_lapas)
    return OrdersRead(
        facts, parked, since, origins, dict(taken.ended), closed_from_json(row.closed), covered, list(row.policy_stamp)
    )


@cache
def _posted_query(schema: str) -> KeyedQuery:
    return KeyedQuery(
        "SELECT (SELECT coalesce(json_agg(json_build_array(posting_key, request_hash)), '[]') "
        f"FROM ({posted_hashes_sql(schema)}) p) AS known, "
        "(SELECT coalesce(json_agg(json_build_array(account, debit_total, credit_total, normal_side)), '[]') "
        f"FROM ({balances_sql(schema)}) b) AS balances"
    )


async def read_posted(
    uow: UnitOfWork, keys: Iterable[str], accounts: Iterable[str]
) -> tuple[dict[str, str], dict[str, int]]:
    """The request hash of each posting key among ``keys`` already in the journal, and the normal-side balances of
    ``accounts`` (an account without a balance row is absent): what the plan compares its requests with, and what
    a refund may take back from. One round trip when both are wanted (they were two)."""
    wanted, limits = sorted(set(keys)), sorted(set(accounts))
    if not wanted or not limits:
        return await existing_hashes(uow, wanted), await normal_balances(uow, limits)
    row = (await _posted_query(uow.schema).execute(uow.conn, wanted, {"a": limits})).one()
    return dict(row.known), normal_of(row.balances)
