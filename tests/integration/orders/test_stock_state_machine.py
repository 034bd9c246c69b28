"""Hypothesis stateful test of the stock invariants in the real database.

Orders are reserved (unpaid or paid), paid, shipped, cancelled, expired by the sweeper, returned, and their
returned units inspected (units restocked, released or expired fill the paid orders waiting for stock), in any
order. The orders handler is driven directly, one event per database transaction (the broker is exercised by the
other tests of this package). After every step the counters of the SKU must equal a model of what the steps did, no
counter may be negative, every counter must equal the sum of its movements, and ``on_hand`` must equal receipts −
consumed + restocked according to the movement log.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any, ClassVar, TypeVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from infra.db.engine import make_engine
from infra.db.roles import RoleUrls
from infra.db.unit_of_work import UnitOfWork
from infra.messaging.consumer import InboundEvent
from infra.messaging.delivery import Delivery
from services.orders.adapters.order_repo import BatchInfoCache
from services.orders.adapters.stock_repo import counter_drift
from services.orders.app import SCHEMA
from services.orders.inspection import Verdict, inspect_quarantine
from services.orders.outbound import OrdersTopics
from services.orders.sweeper import sweep_expired
from tests.integration.orders_support import (
    RETURNED_STATUS,
    load,
    negative_counter_rows,
    orders_handler,
    recent,
    small_catalogue,
    status_event,
    uid,
)
from tests.naming import topic_prefix

pytestmark = pytest.mark.integration

T = TypeVar("T")
MAX_ORDERS = 4  # few live orders at a time, so that steps move them along rather than add more
RECEIPTS = 11  # 6 in the listing's workshop, 5 in the other workshop of the lapas
STATUS = {
    "shopee": {"new": "UNPAID", "pay": "READY_TO_SHIP", "ship": "SHIPPED", "cancel": "CANCELLED"},
    "tokopedia": {"new": "220", "ship": "500", "cancel": "0"},
}
BACKORDERED = ("awaiting_fulfilment", "shipped")  # the model's states among BACKORDER_STATES
LIVE = {"soft": "soft", "hard": "hard", "consumed": "consumed", "quarantined": "consumed"}


@dataclass
class ModelOrder:
    """What the model expects of one order: canonical state and where its units are."""

    key: str
    order_id: str
    channel: str
    qty: int
    state: str
    held: str = "none"  # none | soft | hard | consumed | quarantined
    due: bool = False  # a soft hold past its window, not yet expired
    awaiting: dict[int, int] = field(default_factory=dict)  # quarantine id → units awaiting inspection


def is_active(order: ModelOrder) -> bool:
    """The order can still move stock (and so counts towards :data:`MAX_ORDERS`)."""
    return order.state in ("pending_payment", "awaiting_fulfilment", "shipped") or bool(order.awaiting)


class StockMachine(RuleBasedStateMachine):
    """Random order lifecycles on one SKU with 11 units in two workshops of one lapas."""

    engine: ClassVar[AsyncEngine]
    loop: ClassVar[asyncio.AbstractEventLoop]
    topics: ClassVar[OrdersTopics]

    def __init__(self) -> None:
        super().__init__()
        self.u = uid()
        self.sku = f"SKU-{self.u}"
        self.base = recent()
        self.clock = 0
        self.processor = orders_handler(self.topics, returns=True)
        self.cache = BatchInfoCache()
        self.orders: dict[str, ModelOrder] = {}
        self.seen: dict[str, int] = {}
        self.consumed = self.restocked = 0
        self.run(load(self.engine, small_catalogue(self.u, [("w1", 6, date(2026, 3, 1)), ("w2", 5, date(2026, 2, 1))])))

    def run(self, work: Awaitable[T]) -> T:
        """Run a coroutine on the machine's event loop."""
        return self.loop.run_until_complete(work)

    # --- model ---------------------------------------------------------------------------------------------

    def held(self, where: str) -> int:
        return sum(o.qty for o in self.orders.values() if o.held == where)

    @property
    def available(self) -> int:
        return RECEIPTS - self.consumed + self.restocked - self.held("soft") - self.held("hard")

    def pick(self, data: st.DataObject, wanted: Callable[[ModelOrder], bool]) -> ModelOrder:
        keys = sorted(k for k, o in self.orders.items() if wanted(o))
        return self.orders[data.draw(st.sampled_from(keys))]

    def has(self, wanted: Callable[[ModelOrder], bool]) -> bool:
        return any(wanted(o) for o in self.orders.values())

    def expire_due(self, *, but: set[str]) -> bool:
        """A batch that moves stock of the SKU (or a sweep) frees every due soft hold first, except those of the
        batch's own orders; whether it freed any."""
        freed = False
        for o in self.orders.values():
            if o.due and o.held == "soft" and o.key not in but:
                o.held, o.due, freed = "none", False, True
        return freed

    def fill_waiting(self, *, but: set[str]) -> None:
        """Units given back fill the paid orders waiting for stock (not the batch's own), oldest first (first seen in
        the same batch: by order key), each all or nothing."""
        for waiting in sorted(self.orders.values(), key=lambda o: (self.seen[o.key], o.key)):
            if waiting.held == "none" and waiting.state in BACKORDERED and waiting.key not in but:
                self.take(waiting, "hard" if waiting.state == "awaiting_fulfilment" else "consumed")

    def take(self, order: ModelOrder, held: str) -> None:
        """The order needs units held at ``held`` and holds none: all or nothing, from what is available."""
        if order.qty <= self.available:
            order.held = held
            if held == "consumed":
                self.consumed += order.qty

    # --- driving the processor -----------------------------------------------------------------------------

    def new_order(self, paid: bool, qty: int) -> ModelOrder:
        order_id, channel = f"o{len(self.orders)}", "tokopedia" if paid else "shopee"
        key = f"{channel}:shop-{self.u}:{order_id}"
        order = ModelOrder(key, order_id, channel, qty, "awaiting_fulfilment" if paid else "pending_payment")
        self.orders[key] = order
        self.seen[key] = self.clock  # the batch that first shows it (its orders are seen at the same time)
        return order

    def send(self, *events: tuple[ModelOrder, str]) -> None:
        """Apply ``events`` as one consumed batch, in one transaction."""
        inbound = []
        for order, raw_status in events:
            self.clock += 1
            envelope = status_event(
                self.u, order.order_id, raw_status, self.clock, order.channel, qty=order.qty, base=self.base
            )
            assert envelope.subject == order.key
            record = Delivery("t.marketplace.order-events", 0, self.clock, None, b"")
            inbound.append(InboundEvent(envelope, record))

        async def apply() -> list[Any]:
            async with self.engine.begin() as conn:
                return list(await self.processor(conn, inbound))

        assert self.run(apply()) == [], "nothing is rejected"

    # --- rules ---------------------------------------------------------------------------------------------

    @precondition(lambda self: sum(map(is_active, self.orders.values())) < MAX_ORDERS)
    @rule(paid=st.booleans(), qty=st.integers(1, 4))
    def reserve(self, paid: bool, qty: int) -> None:
        order = self.new_order(paid, qty)
        freed = self.expire_due(but={order.key})
        self.take(order, "hard" if paid else "soft")
        if freed:
            self.fill_waiting(but={order.key})
        self.send((order, STATUS[order.channel]["new"]))

    @precondition(lambda self: sum(map(is_active, self.orders.values())) < MAX_ORDERS)
    @rule(qtys=st.lists(st.integers(1, 4), min_size=2, max_size=3))
    def rush(self, qtys: list[int]) -> None:
        """Several paid orders in one batch: allocated in arrival order, each all or nothing."""
        orders = [self.new_order(True, q) for q in qtys]
        freed = self.expire_due(but={o.key for o in orders})
        for order in orders:
            self.take(order, "hard")
        if freed:
            self.fill_waiting(but={o.key for o in orders})
        self.send(*((o, STATUS[o.channel]["new"]) for o in orders))

    @precondition(lambda self: self.has(lambda o: o.state == "pending_payment"))
    @rule(data=st.data(), then_ship=st.booleans())
    def pay(self, data: st.DataObject, then_ship: bool) -> None:
        """Payment, and with ``then_ship`` the shipment too, in the same batch."""
        order = self.pick(data, lambda o: o.state == "pending_payment")
        freed = self.expire_due(but={order.key})
        target = "consumed" if then_ship else "hard"
        if order.held == "soft":  # hardened (and consumed); a due hold of the batch's own order is kept
            order.held = target
            self.consumed += order.qty if then_ship else 0
        else:  # an expired or failed hold is never revived: a new one is made if units are free
            self.take(order, target)
        order.due = False
        if freed:
            self.fill_waiting(but={order.key})
        steps = [(order, STATUS[order.channel]["pay"])] + ([(order, "SHIPPED")] if then_ship else [])
        self.send(*steps)
        order.state = "shipped" if then_ship else "awaiting_fulfilment"

    @precondition(lambda self: self.has(lambda o: o.state == "awaiting_fulfilment"))
    @rule(data=st.data())
    def ship(self, data: st.DataObject) -> None:
        order = self.pick(data, lambda o: o.state == "awaiting_fulfilment")
        freed = self.expire_due(but={order.key})
        if order.held == "hard":
            order.held = "consumed"
            self.consumed += order.qty
        else:
            self.take(order, "consumed")
        if freed:
            self.fill_waiting(but={order.key})
        self.send((order, STATUS[order.channel]["ship"]))
        order.state = "shipped"

    @precondition(lambda self: self.has(lambda o: o.state != "cancelled"))
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        order = self.pick(data, lambda o: o.state != "cancelled")
        freed = False
        if order.state in ("pending_payment", "awaiting_fulfilment"):
            if order.held in ("soft", "hard"):
                # Releasing the hold moves the SKU's stock, so the batch claims the due holds too. Cancelling an
                # order that holds nothing (its hold expired or never was) locks no stock: the sweeper frees them.
                self.expire_due(but={order.key})
                freed = True
            order.state, order.held, order.due = "cancelled", "none", False
        # after shipment the cancellation is ignored: nothing changes
        if freed:
            self.fill_waiting(but={order.key})
        self.send((order, STATUS[order.channel]["cancel"]))

    @precondition(lambda self: self.has(lambda o: o.held == "soft" and not o.due))
    @rule(data=st.data(), sweep=st.booleans())
    def expire(self, data: st.DataObject, sweep: bool) -> None:
        """The hold passes its window; the sweeper frees it now, or else the next batch does."""
        order = self.pick(data, lambda o: o.held == "soft" and not o.due)

        async def age() -> None:
            async with self.engine.begin() as conn:
                await conn.execute(
                    text(
                        "UPDATE orders.reservations SET expires_at = now() - interval '1 second' "
                        "WHERE order_key = :k AND state = 'soft'"
                    ),
                    {"k": order.key},
                )

        self.run(age())
        order.due = True
        if sweep:
            assert self.run(sweep_expired(self.engine, SCHEMA, self.cache, self.topics)) >= 1
            self.expire_due(but=set())
            self.fill_waiting(but=set())

    @precondition(lambda self: self.has(lambda o: o.state == "shipped" and o.held == "consumed"))
    @rule(data=st.data())
    def return_(self, data: st.DataObject) -> None:
        order = self.pick(data, lambda o: o.state == "shipped" and o.held == "consumed")
        self.expire_due(but={order.key})
        self.send((order, RETURNED_STATUS))
        order.state, order.held = "returned", "quarantined"

        async def rows() -> dict[int, int]:
            async with self.engine.connect() as conn:
                found = await conn.execute(
                    text("SELECT id, quantity FROM orders.quarantine WHERE order_key = :k"), {"k": order.key}
                )
                return {r.id: r.quantity for r in found}

        order.awaiting = self.run(rows())
        assert sum(order.awaiting.values()) == order.qty

    @precondition(lambda self: self.has(lambda o: bool(o.awaiting)))
    @rule(data=st.data(), restock=st.booleans())
    def inspect(self, data: st.DataObject, restock: bool) -> None:
        order = self.pick(data, lambda o: bool(o.awaiting))
        qid = data.draw(st.sampled_from(sorted(order.awaiting)))

        async def decide() -> object:
            async with self.engine.begin() as conn:
                verdict = Verdict.RESTOCK if restock else Verdict.WRITE_OFF
                return await inspect_quarantine(UnitOfWork(conn, SCHEMA), qid, verdict, self.topics)

        assert self.run(decide()) is not None
        units = order.awaiting.pop(qid)
        if restock:
            self.restocked += units
            self.fill_waiting(but=set())
        assert self.run(decide()) is None, "a row is inspected once"

    # --- invariants ----------------------------------------------------------------------------------------

    @invariant()
    def counters_follow_the_model_and_the_movement_log(self) -> None:
        async def read() -> tuple[Any, Any, int, list[Any], dict[str, str]]:
            async with self.engine.connect() as conn:
                counters = (
                    await conn.execute(
                        text(
                            "SELECT sum(on_hand)::int AS on_hand, sum(soft_reserved)::int AS soft, "
                            "sum(allocated)::int AS allocated, sum(quarantined)::int AS quarantined "
                            "FROM orders.batch_stock WHERE sku = :s"
                        ),
                        {"s": self.sku},
                    )
                ).one()
                log = (
                    await conn.execute(
                        text(
                            "SELECT coalesce(sum(quantity) FILTER (WHERE kind = 'receipt'), 0) AS receipts, "
                            "coalesce(sum(quantity) FILTER (WHERE kind = 'consume'), 0) AS consumed, "
                            "coalesce(sum(quantity) FILTER (WHERE kind = 'restock'), 0) AS restocked "
                            "FROM orders.stock_movements WHERE batch_id LIKE :b"
                        ),
                        {"b": f"B-{self.u}-%"},
                    )
                ).one()
                negative = await negative_counter_rows(conn)
                drift = await counter_drift(UnitOfWork(conn, SCHEMA))
                # the newest reservation of each order
                live = {
                    r.order_key: r.state
                    for r in await conn.execute(
                        text(
                            "SELECT DISTINCT ON (order_key) order_key, state FROM orders.reservations "
                            "WHERE order_key = ANY(:k) ORDER BY order_key, reservation_id DESC"
                        ),
                        {"k": list(self.orders)},
                    )
                }
            return counters, log, negative, drift, live

        counters, log, negative, drift, live = self.run(read())
        assert negative == 0
        assert drift == []
        assert (log.receipts, log.consumed, log.restocked) == (RECEIPTS, self.consumed, self.restocked)
        assert counters.on_hand == log.receipts - log.consumed + log.restocked
        quarantined = sum(sum(o.awaiting.values()) for o in self.orders.values())
        assert (counters.soft, counters.allocated, counters.quarantined) == (
            self.held("soft"),
            self.held("hard"),
            quarantined,
        )
        for key, order in self.orders.items():
            if order.held == "none":
                assert live.get(key) in (None, "released", "expired"), (order, live.get(key))
            else:
                assert live.get(key) == LIVE[order.held], (order, live.get(key))


def test_stock_invariants_hold_over_random_lifecycles(database: RoleUrls) -> None:
    StockMachine.topics = OrdersTopics.with_prefix(topic_prefix())  # its events never reach the shared topics
    loop = asyncio.new_event_loop()
    engine = make_engine(database.service, pool_size=2)
    StockMachine.engine, StockMachine.loop = engine, loop
    try:
        run_state_machine_as_test(
            StockMachine,
            settings=settings(
                max_examples=15,
                stateful_step_count=12,
                deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
            ),
        )
    finally:
        loop.run_until_complete(engine.dispose())
        loop.close()
