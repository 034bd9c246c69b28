"""Events the orders service emits for one batch, collected and written to the outbox at the end.

Payloads are built as plain dicts on the hot path (the pydantic models in ``services/contracts/orders.py`` define
the committed JSON Schemas; tests validate every published event against those schemas). Allocations of a
reservation are rendered once per batch and reused by every event that carries them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from infra.messaging.envelope import Envelope
from infra.messaging.outbox import OutboundMessage
from infra.messaging.topics import (
    LEDGER_ORDER_EVENTS,
    MARKETPLACE_ORDER_EVENTS,
    ORDERS_EVENTS,
    ORDERS_STOCK_AVAILABILITY,
    prefixed,
)
from services.contracts import orders as ev
from services.orders.domain.records import BatchFacts, Held, OrderRow, Reservation

SOURCE = "karya/orders"
_LIFECYCLE = {"shipped": ev.ORDER_SHIPPED, "delivered": ev.ORDER_DELIVERED, "cancelled": ev.ORDER_CANCELLED}


@dataclass(frozen=True, slots=True)
class OrdersTopics:
    """The topics the orders service reads and writes; the defaults are the base names (no prefix), and the
    composition root builds them under the deployment's prefix with :meth:`with_prefix`."""

    order_events: str = MARKETPLACE_ORDER_EVENTS
    events: str = ORDERS_EVENTS
    stock_availability: str = ORDERS_STOCK_AVAILABILITY
    ledger_order_events: str = LEDGER_ORDER_EVENTS  # read: the ledger's order_settled and a person's allocations

    @classmethod
    def with_prefix(cls, prefix: str) -> OrdersTopics:
        """The same topics under ``prefix``."""
        return prefixed(cls(), prefix)


@dataclass(frozen=True, slots=True)
class Applied:
    """A status change applied to an order: what drove it and the state it reached."""

    cause: Envelope
    raw_status: str
    update_time: datetime
    state: str


class Outbound:
    """Builds the events of one batch (each caused by its triggering event), in order, for the outbox."""

    def __init__(self, topics: OrdersTopics) -> None:
        """Events go to ``topics.events``, availability to ``topics.stock_availability``."""
        self._events = topics.events
        self._availability = topics.stock_availability
        self._messages: list[OutboundMessage] = []
        self._causes: dict[str, Envelope] = {}

    @property
    def messages(self) -> list[OutboundMessage]:
        """The events built so far, in order."""
        return self._messages

    def cause(self, order_key: str, envelope: Envelope) -> None:
        """Remember the event that drove ``order_key`` (for correlation ids)."""
        self._causes[order_key] = envelope

    def _emit(self, topic: str, type_name: str, subject: str, data: dict[str, Any], cause: Envelope | None) -> None:
        self._messages.append(
            OutboundMessage.event(topic, type=type_name, source=SOURCE, subject=subject, data=data, causation=cause)
        )

    @staticmethod
    def _ref(order: OrderRow, raw_status: str | None = None, update_time: datetime | None = None) -> dict[str, Any]:
        assert order.snapshot is not None
        return {
            "order_key": order.order_key,
            "channel": order.channel,
            "lapas_id": order.lapas_id,
            "raw_status": raw_status or order.snapshot.state.value,
            "update_time": update_time or order.snapshot.update_time,
        }

    def allocations(
        self, order: OrderRow | None, held: Sequence[Held], info: dict[str, BatchFacts]
    ) -> list[dict[str, Any]]:
        """Allocations with what the ledger needs: price, material cost, supplier, work group."""
        price = {ln.sku: ln.unit_price for ln in order.lines} if order else {}
        return [info[a.batch_id].allocation(a.quantity, price.get(a.sku, 0)) for a in held]

    def reservation_confirmed(self, order: OrderRow, info: dict[str, BatchFacts]) -> None:
        """Stock is held (soft or hard) for the whole order."""
        res = order.reservation
        assert res is not None
        data = {
            **self._ref(order),
            "reservation_id": res.reservation_id,
            "hold": "soft" if res.state == "soft" else "hard",
            "expires_at": res.expires_at,
            "allocations": self.allocations(order, res.allocations, info),
        }
        self._emit(self._events, ev.RESERVATION_CONFIRMED, order.order_key, data, self._causes.get(order.order_key))

    def order_allocated(self, order: OrderRow, info: dict[str, BatchFacts]) -> None:
        """An order that waited for stock (a backorder) holds it now: its allocations, for the ledger."""
        res = order.reservation
        assert res is not None and order.snapshot is not None
        data = {
            **self._ref(order),
            "reservation_id": res.reservation_id,
            "state": order.snapshot.state.value,
            "allocations": self.allocations(order, res.allocations, info),
        }
        self._emit(self._events, ev.ORDER_ALLOCATED, order.order_key, data, self._causes.get(order.order_key))

    def units_restocked(self, order_key: str, restock_id: int, batch_id: str, quantity: int, at: datetime) -> None:
        """Returned units of ``order_key`` passed inspection and are sellable again (the ledger takes their material
        cost back from the supplier)."""
        data = {
            "order_key": order_key,
            "restock_id": restock_id,
            "batch_id": batch_id,
            "quantity": quantity,
            "restocked_at": at,
        }
        self._emit(self._events, ev.UNITS_RESTOCKED, order_key, data, None)

    def reservation_failed(self, order: OrderRow, reason: str) -> None:
        """Nothing could be held for the order."""
        data = {**self._ref(order), "reason": reason}
        self._emit(self._events, ev.RESERVATION_FAILED, order.order_key, data, self._causes.get(order.order_key))

    def reservation_ended(
        self, order_key: str, res: Reservation, how: str, info: dict[str, BatchFacts], order: OrderRow | None = None
    ) -> None:
        """A hold was released (cancellation) or expired (unpaid)."""
        ref = (
            self._ref(order)
            if order and order.snapshot
            else {
                "order_key": order_key,
                "channel": order_key.split(":", 1)[0],
                "lapas_id": next((info[a.batch_id].lapas_id for a in res.allocations if a.batch_id in info), None),
                "raw_status": "expired",
                "update_time": res.expires_at,
            }
        )
        data = {
            **ref,
            "reservation_id": res.reservation_id,
            "allocations": self.allocations(order, res.allocations, info),
        }
        type_name = ev.RESERVATION_RELEASED if how == "released" else ev.RESERVATION_EXPIRED
        self._emit(self._events, type_name, order_key, data, self._causes.get(order_key))

    def lifecycle(
        self,
        order: OrderRow,
        applied: Sequence[Applied],
        info: dict[str, BatchFacts],
    ) -> None:
        """One event per lifecycle state the order reached in this batch."""
        held = order.reservation.allocations if order.reservation else []
        for step in applied:
            state = step.state
            moved = _LIFECYCLE.get(state)
            if moved is not None:
                snap = order.snapshot
                assert snap is not None
                payload: dict[str, Any] = {
                    "order_key": order.order_key,
                    "channel": order.channel,
                    "lapas_id": order.lapas_id,
                    "raw_status": step.raw_status or snap.state.value,
                    "update_time": step.update_time or snap.update_time,
                    "state": state,
                }
                self._emit(self._events, moved, order.order_key, payload, step.cause)
                continue
            ref = self._ref(order, step.raw_status, step.update_time)
            if state == "completed":
                payload = {
                    **ref,
                    "gross_amount": order.gross_amount or 0,
                    "allocations": self.allocations(order, held, info),
                    "historical": order.historical,
                }
                self._emit(self._events, ev.ORDER_COMPLETED, order.order_key, payload, step.cause)
            elif state == "returned":
                payload = {**ref, "allocations": self.allocations(order, held, info)}
                self._emit(self._events, ev.ORDER_RETURNED, order.order_key, payload, step.cause)

    def availability(self, per_sku: dict[str, list[tuple[str, int]]]) -> None:
        """Available-to-sell per SKU (keyed by SKU) for channel stock sync."""
        for sku, workshops in per_sku.items():
            data = {
                "sku": sku,
                "available": sum(max(a, 0) for _, a in workshops),
                "workshops": [{"workshop_id": w, "available": max(a, 0)} for w, a in workshops],
            }
            self._emit(self._availability, ev.STOCK_AVAILABILITY_CHANGED, sku, data, None)
