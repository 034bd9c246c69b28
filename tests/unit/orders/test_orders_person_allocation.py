"""A person's allocation on in-memory stock (no database): the units are consumed from the named batches, never more
than a batch has free, the order stops waiting, and what could not be recorded is a reconciliation item."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

from hypothesis import given
from hypothesis import strategies as st

from services.contracts.ledger import OrderAllocatedByPerson
from services.orders.domain.records import Held, Reservation
from services.orders.person_allocation import WHOLE_ORDER, ReconciliationItem, plan_person_allocation
from services.orders.stock_plan import StockPlan
from tests.unit.orders.test_orders_backorders import INFO, stock, waiting

AT = datetime(2026, 12, 1, tzinfo=UTC)


def by_person(key: str, *picks: tuple[str, int]) -> OrderAllocatedByPerson:
    allocations = [{"batch_id": b, "quantity": q} for b, q in picks]
    return OrderAllocatedByPerson.model_validate({"order_key": key, "allocations": allocations, "allocated_at": AT})


@given(free=st.integers(0, 6), wanted=st.integers(1, 6))
def test_never_more_than_the_batch_has_free_and_the_order_stops_waiting(free: int, wanted: int) -> None:
    plan = StockPlan(stock(("B1", free, 0)))
    order = waiting("o1", wanted)
    items = plan_person_allocation(order, by_person(order.order_key, ("B1", wanted)), plan, INFO, uuid4())
    recorded = min(free, wanted)
    assert order.reservation_failed is None
    assert plan.free("B1") == free - recorded >= 0
    held = order.reservation.allocations if order.reservation is not None else []
    assert sum(h.quantity for h in held) == recorded
    short = [] if recorded == wanted else [ReconciliationItem(order.order_key, "B1", wanted, recorded, items[0].reason)]
    assert items == short


def test_unknown_order_or_batch_and_other_batches_held_are_items_that_change_nothing() -> None:
    plan = StockPlan(stock(("B1", 3, 0)))
    assert [
        i.batch_id for i in plan_person_allocation(None, by_person("tokopedia:shop:k", ("B1", 1)), plan, INFO, uuid4())
    ] == [WHOLE_ORDER]
    order = waiting("o2", 1)
    items = plan_person_allocation(order, by_person(order.order_key, ("B-NOPE", 1)), plan, INFO, uuid4())
    assert [(i.batch_id, i.recorded) for i in items] == [("B-NOPE", 0)] and order.reservation is None
    holder = waiting("o3", 1)
    holder.reservation = Reservation(7, "hard", None, [Held("B2", "SKU-1", "W1", 1)])
    items = plan_person_allocation(holder, by_person(holder.order_key, ("B1", 1)), plan, INFO, uuid4())
    assert [i.batch_id for i in items] == [WHOLE_ORDER] and holder.reservation.reservation_id == 7
    assert plan_person_allocation(holder, by_person(holder.order_key, ("B2", 1)), plan, INFO, uuid4()) == []
    assert plan.movements == [] and plan.free("B1") == 3
