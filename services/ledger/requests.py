"""Pure mapping from event payloads (services/contracts) to ledger domain requests."""

from __future__ import annotations

from typing import Any

from services.contracts.marketplace import RefundReported, SettlementReported
from services.contracts.orders import OrderCompleted
from services.ledger.domain.model import (
    BatchAllocation,
    CompletionRequest,
    OrderRef,
    RefundRequest,
    SettlementRequest,
    WorkMember,
)


def order_ref(order_key: str, channel: str, lapas_id: str) -> OrderRef:
    """The ledger's reference to an order."""
    return OrderRef(order_key=order_key, channel=channel, lapas_id=lapas_id)


def completion_request(data: dict[str, Any]) -> CompletionRequest:
    """A completion from an ``order_completed`` payload (allocations carry price, cost, supplier, work group)."""
    event = OrderCompleted.model_validate(data)
    lapas = event.lapas_id or (event.allocations[0].lapas_id if event.allocations else "")
    return CompletionRequest(
        order=order_ref(event.order_key, event.channel, lapas),
        gross=event.gross_amount,
        completed_at=event.update_time,
        allocations=tuple(
            BatchAllocation(
                batch_id=a.batch_id,
                sku=a.sku,
                quantity=a.quantity,
                unit_price=a.unit_price,
                unit_material_cost=a.unit_material_cost,
                supplier_id=a.supplier_id,
                work_group=tuple(WorkMember(w.inmate_id, w.work_share) for w in a.work_group),
            )
            for a in event.allocations
        ),
    )


def settlement_request(data: dict[str, Any], ref: OrderRef) -> SettlementRequest:
    """A settlement from a ``settlement_reported`` payload (fees summed per fee type)."""
    event = SettlementReported.model_validate(data)
    fees: dict[str, int] = {}
    for fee in event.fees:
        fees[fee.fee_type] = fees.get(fee.fee_type, 0) + fee.amount
    return SettlementRequest(
        order=ref,
        settlement_id=event.settlement_id,
        gross=event.gross_amount,
        fees=fees,
        pph22_withheld=event.pph22_withheld,
        net_payout=event.net_payout,
        settled_at=event.settled_at,
    )


def refund_request(data: dict[str, Any], ref: OrderRef) -> RefundRequest:
    """A refund from a ``refund_reported`` payload (the whole amount clawed back by default)."""
    event = RefundReported.model_validate(data)
    return RefundRequest(order=ref, refund_id=event.refund_id, amount=event.amount, refunded_at=event.refunded_at)
