"""Events the orders service emits for one batch, collected and written to the outbox at the end."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncConnection

from infra.messaging.consumer import InboundEvent
from infra.messaging.envelope import Envelope, make_envelope
from infra.messaging.outbox import OutboundMessage, enqueue
from infra.messaging.topics import ORDERS_EVENTS, ORDERS_STOCK_AVAILABILITY
from services.contracts import orders as ev
from services.contracts.marketplace import OrderStatusChanged
from services.orders.adapters.order_repo import BatchInfo, Held, OrderRow, Reservation

SOURCE = "karya/orders"
_LIFECYCLE = {
    "shipped": ev.ORDER_SHIPPED,
    "delivered": ev.ORDER_DELIVERED,
    "cancelled": ev.ORDER_CANCELLED,
}


class Outbound:
    """Builds envelopes (caused by the triggering event) and enqueues them in order."""

    def __init__(self) -> None:
        self._messages: list[OutboundMessage] = []
        self._causes: dict[str, Envelope] = {}

    def cause(self, order_key: str, event: InboundEvent) -> None:
        """Remember the event that drove ``order_key`` (for correlation ids)."""
        self._causes[order_key] = event.envelope

    def _emit(self, topic: str, type_name: str, subject: str, payload: ev.Payload, cause: Envelope | None) -> None:
        envelope = make_envelope(
            type=type_name, source=SOURCE, subject=subject, data=payload.model_dump(mode="json"), causation=cause
        )
        self._messages.append(OutboundMessage.of(topic, envelope))

    @staticmethod
    def _ref(order: OrderRow) -> dict[str, object]:
        assert order.snapshot is not None
        return {
            "order_key": order.order_key, "channel": order.channel, "lapas_id": order.lapas_id,
            "raw_status": order.snapshot.state.value, "update_time": order.snapshot.update_time,
        }

    @staticmethod
    def allocations(order: OrderRow | None, held: Sequence[Held], info: dict[str, BatchInfo]) -> list[ev.AllocationOut]:
        """Allocations with what the ledger needs: price, material cost, supplier, work group."""
        price = {ln.sku: ln.unit_price for ln in order.lines} if order else {}
        out = []
        for a in held:
            b = info[a.batch_id]
            out.append(
                ev.AllocationOut(
                    batch_id=a.batch_id, sku=a.sku, workshop_id=a.workshop_id, lapas_id=b.lapas_id,
                    quantity=a.quantity, unit_price=price.get(a.sku, 0), unit_material_cost=b.unit_material_cost,
                    supplier_id=b.supplier_id,
                    work_group=[ev.WorkShareOut(inmate_id=i, work_share=s) for i, s in b.work_group],
                )
            )
        return out

    def reservation_confirmed(self, order: OrderRow, info: dict[str, BatchInfo]) -> None:
        """Stock is held (soft or hard) for the whole order."""
        res = order.reservation
        assert res is not None
        payload = ev.ReservationConfirmed(
            **self._ref(order), reservation_id=res.reservation_id,  # type: ignore[arg-type]
            hold="soft" if res.state == "soft" else "hard", expires_at=res.expires_at,
            allocations=self.allocations(order, res.allocations, info),
        )
        self._emit(ORDERS_EVENTS, ev.RESERVATION_CONFIRMED, order.order_key, payload, self._causes.get(order.order_key))

    def reservation_failed(self, order: OrderRow, reason: str) -> None:
        """Nothing could be held for the order."""
        payload = ev.ReservationFailed(**self._ref(order), reason=reason)  # type: ignore[arg-type]
        self._emit(ORDERS_EVENTS, ev.RESERVATION_FAILED, order.order_key, payload, self._causes.get(order.order_key))

    def reservation_ended(
        self, order_key: str, res: Reservation, how: str, info: dict[str, BatchInfo], order: OrderRow | None = None
    ) -> None:
        """A hold was released (cancellation) or expired (unpaid)."""
        ref = self._ref(order) if order and order.snapshot else {
            "order_key": order_key, "channel": order_key.split(":", 1)[0], "lapas_id": None,
            "raw_status": "expired", "update_time": res.expires_at,
        }
        payload = ev.ReservationEnded(
            **ref, reservation_id=res.reservation_id,  # type: ignore[arg-type]
            allocations=self.allocations(order, res.allocations, info),
        )
        type_name = ev.RESERVATION_RELEASED if how == "released" else ev.RESERVATION_EXPIRED
        self._emit(ORDERS_EVENTS, type_name, order_key, payload, self._causes.get(order_key))

    def lifecycle(
        self, order: OrderRow, applied: Sequence[tuple[InboundEvent, OrderStatusChanged, str]], info: dict[str, BatchInfo]
    ) -> None:
        """One event per lifecycle state the order reached in this batch."""
        for event, data, state in applied:
            ref = {**self._ref(order), "raw_status": data.raw_status, "update_time": data.update_time}
            held = order.reservation.allocations if order.reservation else []
            payload: ev.Payload
            if state in _LIFECYCLE:
                payload = ev.OrderMoved(**ref, state=state)  # type: ignore[arg-type]
                type_name = _LIFECYCLE[state]
            elif state == "completed":
                payload = ev.OrderCompleted(
                    **ref, gross_amount=order.gross_amount or 0,  # type: ignore[arg-type]
                    allocations=self.allocations(order, held, info), historical=order.historical,
                )
                type_name = ev.ORDER_COMPLETED
            elif state == "returned":
                payload = ev.OrderReturned(**ref, allocations=self.allocations(order, held, info))  # type: ignore[arg-type]
                type_name = ev.ORDER_RETURNED
            else:
                continue
            self._emit(ORDERS_EVENTS, type_name, order.order_key, payload, event.envelope)

    def availability(self, per_sku: dict[str, list[tuple[str, int]]]) -> None:
        """Available-to-sell per SKU (keyed by SKU) for channel stock sync."""
        for sku, workshops in per_sku.items():
            payload = ev.StockAvailabilityChanged(
                sku=sku, available=sum(max(a, 0) for _, a in workshops),
                workshops=[ev.WorkshopAvailability(workshop_id=w, available=max(a, 0)) for w, a in workshops],
            )
            self._emit(ORDERS_STOCK_AVAILABILITY, ev.STOCK_AVAILABILITY_CHANGED, sku, payload, None)

    async def flush(self, conn: AsyncConnection) -> None:
        """Write every collected event to the orders outbox."""
        await enqueue(conn, "orders", self._messages)
