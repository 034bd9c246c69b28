"""Stock counters and their append-only movement log: the only code that changes ``batch_stock``.

Every change is a movement row (kind, quantity, the four signed deltas, reason, reference); the counters are
updated by the sum of the deltas per batch in the same statement batch, and the table's CHECK constraints reject
any result below zero or reserving more than is on hand.
"""

from __future__ import annotations

from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from datetime import date, datetime
from typing import Any

from infra.db.rowsets import Writes
from infra.db.unit_of_work import UnitOfWork
from services.orders.adapters.locks import claim_due_and_lock_stock
from services.orders.adapters.order_reads import reservations_of
from services.orders.adapters.order_repo import BatchInfoCache, lapas_of_workshops
from services.orders.adapters.sql import Rows, Sql
from services.orders.domain.records import Movement, Reservation
from services.orders.domain.stock import MOVEMENT_UNIT_DELTAS, MovementKind
from services.orders.stock_plan import StockInputs

# Unit deltas as plain tuples: record_movements runs for every movement of every batch.
_UNIT: dict[MovementKind, tuple[int, int, int, int]] = {
    kind: (d.on_hand, d.soft_reserved, d.allocated, d.quarantined) for kind, d in MOVEMENT_UNIT_DELTAS.items()
}


_KIND_VALUE: dict[MovementKind, str] = {kind: kind.value for kind in MovementKind}
_INSERT_MOVEMENTS = Rows(
    "INSERT INTO {schema}.stock_movements (batch_id, kind, quantity, d_on_hand, d_soft_reserved, "
    "d_allocated, d_quarantined, order_key, reason, event_id) SELECT * FROM {rows}",
    (
        ("batch", "text"),
        ("kind", "text"),
        ("qty", "int"),
        ("d1", "int"),
        ("d2", "int"),
        ("d3", "int"),
        ("d4", "int"),
        ("order_key", "text"),
        ("reason", "text"),
        ("event_id", "uuid"),
    ),
)
_UPDATE_COUNTERS = Rows(
    "UPDATE {schema}.batch_stock AS s SET on_hand = s.on_hand + u.d1, "
    "soft_reserved = s.soft_reserved + u.d2, allocated = s.allocated + u.d3, "
    "quarantined = s.quarantined + u.d4 FROM {rows} WHERE s.batch_id = u.batch_id",
    (("batch_id", "text"), ("d1", "int"), ("d2", "int"), ("d3", "int"), ("d4", "int")),
)


async def record_movements(uow: UnitOfWork, movements: Sequence[Movement]) -> None:
    """Append ``movements`` and apply their summed deltas to ``batch_stock`` (one statement per call)."""
    writes = Writes()
    add_movements(writes, uow, movements)
    await writes.execute(uow.conn)


def add_movements(writes: Writes, uow: UnitOfWork, movements: Sequence[Movement]) -> None:
    """Add to ``writes``: append ``movements``, apply their summed deltas to ``batch_stock``."""
    if not movements:
        return
    d1: list[int] = []
    d2: list[int] = []
    d3: list[int] = []
    d4: list[int] = []
    per_batch: dict[str, list[int]] = {}
    for m in movements:
        u, q = _UNIT[m.kind], m.quantity
        a, b, c, d = u[0] * q, u[1] * q, u[2] * q, u[3] * q
        d1.append(a)
        d2.append(b)
        d3.append(c)
        d4.append(d)
        acc = per_batch.get(m.batch_id)
        if acc is None:
            per_batch[m.batch_id] = [a, b, c, d]
        else:
            acc[0] += a
            acc[1] += b
            acc[2] += c
            acc[3] += d
    writes.add(
        _INSERT_MOVEMENTS.on(uow),
        [
            [m.batch_id for m in movements],
            [_KIND_VALUE[m.kind] for m in movements],
            [m.quantity for m in movements],
            d1,
            d2,
            d3,
            d4,
            [m.order_key for m in movements],
            [m.reason for m in movements],
            [m.event_id for m in movements],
        ],
    )
    ids = sorted(per_batch)
    writes.add(
        _UPDATE_COUNTERS.on(uow),
        [
            ids,
            [per_batch[i][0] for i in ids],
            [per_batch[i][1] for i in ids],
            [per_batch[i][2] for i in ids],
            [per_batch[i][3] for i in ids],
        ],
    )


_INSERT_QUARANTINE = Rows(
    "INSERT INTO {schema}.quarantine (order_key, batch_id, quantity) SELECT * FROM {rows}",
    (("k", "text"), ("b", "text"), ("q", "int")),
)


def add_quarantine(writes: Writes, uow: UnitOfWork, rows: Sequence[tuple[str, str, int]]) -> None:
    """Add to ``writes``: returned units (order key, batch id, quantity) awaiting inspection."""
    if rows:
        writes.add(_INSERT_QUARANTINE.on(uow), [list(c) for c in zip(*rows, strict=True)])


async def load_stock(
    uow: UnitOfWork,
    skus: set[str],
    *,
    due_at: datetime | None,
    sweep: bool = False,
    skip_orders: AbstractSet[str] = frozenset(),
    workshops: AbstractSet[str] = frozenset(),
    new_reservations: int = 0,
    batches: BatchInfoCache,
    facts_of: AbstractSet[str] = frozenset(),
) -> StockInputs:
    """Read and lock what a stock plan needs, in the order of :mod:`~services.orders.adapters.locks`.

    Claims the soft holds due at ``due_at`` (all of them with ``sweep``, else those on ``skus``; none without
    ``due_at``) except those of ``skip_orders``, then locks every ``batch_stock`` row of ``skus`` and of the due
    holds, and reads the lapas of ``workshops`` that have no stock row, the facts of the locked batches and of
    ``facts_of`` (batches whose rows need no lock: the plan only names them in events) and ``new_reservations``
    fresh reservation ids.
    """
    if due_at is None or not (skus or sweep):
        due_at = None  # nothing to claim: none without ``due_at``, none on no SKU unless sweeping
        if not skus and not new_reservations:
            return await _stock_inputs(uow, [], [], workshops, [], batches, facts_of)
    locked = await claim_due_and_lock_stock(
        uow,
        now=due_at,
        due_skus=None if sweep else skus,
        skip_orders=skip_orders,
        skus=skus,
        new_ids=new_reservations,
    )
    rows = [(b, sku, w, lp, date.fromisoformat(d), *counters) for b, sku, w, lp, d, *counters in locked.stock]
    ids = [int(i) for i in locked.ids]
    return await _stock_inputs(uow, rows, reservations_of(locked.due), workshops, ids, batches, facts_of)


async def _stock_inputs(
    uow: UnitOfWork,
    rows: list[tuple[Any, ...]],
    due: list[tuple[str, Reservation]],
    workshops: AbstractSet[str],
    reservation_ids: list[int],
    batches: BatchInfoCache,
    facts_of: AbstractSet[str] = frozenset(),
) -> StockInputs:
    lapas = {r[2]: r[3] for r in rows}
    if workshops - lapas.keys():
        lapas = {**await lapas_of_workshops(uow), **lapas}
    return StockInputs(
        rows=rows,
        lapas_of_workshop=lapas,
        batch_info=await batches.get(uow, [*(r[0] for r in rows), *facts_of]),
        due=due,
        reservation_ids=reservation_ids,
    )


_STOCK_BY_WORKSHOP = Sql(
    "SELECT sku, workshop_id, sum(on_hand)::int AS on_hand, sum(soft_reserved)::int AS soft_reserved, "
    "sum(allocated)::int AS allocated, sum(quarantined)::int AS quarantined, "
    "sum(on_hand - soft_reserved - allocated)::int AS available "
    "FROM {schema}.batch_stock WHERE (CAST(:sku AS text) IS NULL OR sku = :sku) "
    "GROUP BY sku, workshop_id ORDER BY sku, workshop_id"
)


async def stock_by_workshop(uow: UnitOfWork, sku: str | None = None) -> list[dict[str, Any]]:
    """Counters per SKU and workshop (sums over batches), with ``available``."""
    rows = await uow.conn.execute(_STOCK_BY_WORKSHOP.on(uow), {"sku": sku})
    return [dict(r._mapping) for r in rows]


_COUNTER_DRIFT = Sql(
    "SELECT s.batch_id, s.on_hand, s.soft_reserved, s.allocated, s.quarantined, "
    "coalesce(m.on_hand, 0) AS derived_on_hand, coalesce(m.soft_reserved, 0) AS derived_soft_reserved, "
    "coalesce(m.allocated, 0) AS derived_allocated, coalesce(m.quarantined, 0) AS derived_quarantined "
    "FROM {schema}.batch_stock s LEFT JOIN ("
    "  SELECT batch_id, sum(d_on_hand) AS on_hand, sum(d_soft_reserved) AS soft_reserved, "
    "  sum(d_allocated) AS allocated, sum(d_quarantined) AS quarantined "
    "  FROM {schema}.stock_movements GROUP BY batch_id) m USING (batch_id) "
    "WHERE (s.on_hand, s.soft_reserved, s.allocated, s.quarantined) IS DISTINCT FROM "
    "(coalesce(m.on_hand, 0), coalesce(m.soft_reserved, 0), coalesce(m.allocated, 0), "
    "coalesce(m.quarantined, 0)) ORDER BY s.batch_id"
)


async def counter_drift(uow: UnitOfWork) -> list[dict[str, Any]]:
    """Batches whose counters differ from the sum of their movements (empty when consistent)."""
    rows = await uow.conn.execute(_COUNTER_DRIFT.on(uow))
    return [dict(r._mapping) for r in rows]
