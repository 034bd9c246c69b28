"""The orders use case: fold a batch of order changes into orders, reservations and stock (load → plan → write).

One call handles one batch inside the caller's transaction (a :class:`UnitOfWork`); the caller is the Kafka
handler of :mod:`services.orders.app`, which passes envelopes and turns the returned refusals into dead letters.
A batch carries two kinds of change: a marketplace's ``order_status_changed`` and the ledger's ``order_settled``,
which moves the order to ``settled`` (the consumer skips the ledger's other events by their type header:
:data:`services.orders.app.CONSUMED_TYPES`).

1. **read** the envelopes against their contracts (bad content is refused);
2. **load**, in the lock order of :mod:`services.orders.adapters.locks`: the orders (locked), then in one
   statement their lines and live reservations (locked) and the listings
   (:func:`services.orders.adapters.order_reads.read_orders`);
3. **fold** them through the state machine in memory (:func:`services.orders.fulfilment_plan.fold_changes`),
   which tells whose stock moves;
4. **load** for those orders only: the soft holds past their window on their SKUs (claimed), every stock row of
   their SKUs (locked), batch facts and fresh reservation ids — a batch that only settles consumed orders locks no
   stock row;
5. **plan** the stock in memory (:func:`services.orders.fulfilment_plan.plan_stock`); when it gives stock back (a
   cancellation, an expired hold), the orders waiting for those SKUs are filled from it
   (:func:`services.orders.backorders.fill_freed`);
6. **write** set-based, and publish the events through the outbox.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pydantic import ValidationError

from infra.db.rowsets import Writes
from infra.db.unit_of_work import UnitOfWork
from infra.errors import describe_error, error_text
from infra.messaging.envelope import Envelope
from services.contracts.channels import map_status
from services.contracts.ledger import ORDER_SETTLED, OrderSettled
from services.contracts.marketplace import ORDER_STATUS_CHANGED, OrderStatusChanged
from services.orders.adapters.order_reads import read_orders
from services.orders.adapters.order_repo import (
    BatchInfoCache,
    add_history,
    add_orders,
    add_reservations,
)
from services.orders.adapters.stock_repo import add_movements, add_quarantine, load_stock
from services.orders.backorders import fill_freed
from services.orders.domain.channels import Channel
from services.orders.domain.lifecycle import OrderState
from services.orders.fulfilment_plan import (
    Change,
    FulfilmentPlan,
    Refusal,
    Settled,
    StatusChange,
    fold_changes,
    plan_stock,
    quoted,
)
from services.orders.outbound import OrdersTopics, Outbound
from services.orders.stock_plan import StockPlan

__all__ = ["FulfilmentRules", "apply_order_changes", "read_changes", "write_plan"]


@dataclass(frozen=True, slots=True)
class FulfilmentRules:
    """What the composition root decides for the use case: where events go, unpaid windows, status mapping, and
    the process's cache of production-batch facts (they never change once recorded)."""

    topics: OrdersTopics
    windows: Mapping[Channel, timedelta] | None = None
    map_status: Callable[[Channel, str], OrderState] = map_status
    batches: BatchInfoCache = field(default_factory=BatchInfoCache)


def read_changes(envelopes: Sequence[Envelope]) -> tuple[list[tuple[int, Change]], list[Refusal]]:
    """The batch's changes (index, change) and the refusals of envelopes whose content is not a change."""
    changes: list[tuple[int, Change]] = []
    refusals: list[Refusal] = []
    for index, envelope in enumerate(envelopes):
        try:
            if envelope.type == ORDER_STATUS_CHANGED:
                changes.append((index, StatusChange(envelope, OrderStatusChanged.model_validate(envelope.data))))
            elif envelope.type == ORDER_SETTLED:
                settled = OrderSettled.model_validate(envelope.data)
                changes.append((index, Settled(envelope, settled.order_key, settled.sequence)))
            else:
                reason = f"unexpected event type {quoted(envelope.type)}"
                refusals.append(Refusal(index, reason, {"detail": reason}))
        except ValidationError as exc:
            reason = error_text(exc, context=f"invalid {envelope.type}")
            refusals.append(Refusal(index, reason, describe_error(exc)))
    return changes, refusals


async def apply_order_changes(
    uow: UnitOfWork, envelopes: Sequence[Envelope], rules: FulfilmentRules, now: datetime
) -> list[Refusal]:
    """Apply ``envelopes`` (new to this consumer) at ``now``; returns the ones refused (see the module docstring)."""
    changes, refusals = read_changes(envelopes)
    if not changes:
        return refusals
    keys = {c.order_key for _, c in changes}
    read = await read_orders(
        uow,
        keys,
        {
            (c.data.channel, c.data.shop_id, ln.channel_product_id, ln.channel_sku_id or "")
            for _, c in changes
            if isinstance(c, StatusChange)
            for ln in c.data.lines
        },
    )
    listings, orders = read.listings, read.orders
    folded = fold_changes(changes, listings, orders, map_status=rules.map_status, out=Outbound(rules.topics))
    # Only the stock of orders whose stock moves is locked and loaded (a batch that only settles consumed orders
    # locks none); the other orders' events need only the facts of the batches they hold.
    stock = await load_stock(
        uow,
        folded.stock_skus(),
        due_at=now,
        skip_orders=keys,
        workshops=folded.workshops(),
        new_reservations=folded.new_reservations(),
        batches=rules.batches,
        facts_of=folded.held_batches(),
    )
    plan = plan_stock(folded, StockPlan(stock), windows=rules.windows)
    # Stock the batch gave back fills the orders waiting for it, in this transaction.
    out = Outbound(rules.topics)
    filled = await fill_freed(uow, plan.stock, out, exclude=keys)
    if filled:
        out.availability(plan.stock.availability())
        plan.orders += filled
        plan.reservations += [(o.order_key, o.reservation) for o in filled if o.reservation is not None]
        plan.messages += out.messages
    await write_plan(uow, plan)
    return sorted([*refusals, *plan.refusals], key=lambda r: r.index)


async def write_plan(uow: UnitOfWork, plan: FulfilmentPlan) -> None:
    """Write the plan, and its events into the outbox, as one statement of set-based parts."""
    writes = Writes()
    add_orders(writes, uow, plan.orders)
    add_history(writes, uow, plan.history)
    add_movements(writes, uow, plan.stock.movements)
    add_quarantine(writes, uow, plan.stock.quarantine)
    add_reservations(writes, uow, plan.reservations)
    uow.publish_with(writes, plan.messages)
    await writes.execute(uow.conn)
