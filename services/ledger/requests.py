"""Pure mapping from event payloads (services/contracts) to ledger domain requests.

Each payload is validated against its contract once: a settlement, refund or restock of the batch when it arrives
(:func:`services.ledger.posting_plan.check_arrivals`, which keeps the parsed payload in :class:`Checked` for the
plan), a parked one when the plan takes it up; a completion where it becomes a request (:func:`completion_request`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar
from uuid import UUID

from infra.messaging.envelope import Envelope
from services.contracts.base import Payload
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
from services.ledger.domain.refunds import LineRefund, Listing, RefundedLine
from services.ledger.domain.refunds import match_sku as sku

UNKNOWN_LAPAS = "unknown"
"""The lapas of a completion that names neither a lapas nor a batch (its proceeds wait in
``clearing:unallocated_proceeds:unknown``)."""


_P = TypeVar("_P", bound=Payload)


class Checked:
    """The payloads of a batch's events as their contracts parsed them on arrival, by event (the envelope object
    itself, so a parked event of the same id is parsed on its own)."""

    def __init__(self) -> None:
        """Empty: :meth:`keep` fills it."""
        self._by_id: dict[UUID, tuple[Envelope, Payload]] = {}

    def keep(self, envelope: Envelope, payload: Payload) -> None:
        """``payload`` is what ``envelope.data`` parsed to under its contract."""
        self._by_id[envelope.event_id] = (envelope, payload)

    def payload(self, envelope: Envelope, contract: type[_P]) -> _P:
        """``envelope.data`` as ``contract``: kept on arrival, else validated now (raises ``ValidationError``)."""
        hit = self._by_id.get(envelope.event_id)
        if hit is not None and hit[0] is envelope and type(hit[1]) is contract:
            return hit[1]  # narrowed to the contract by the type check
        return contract.model_validate(envelope.data)


def order_ref(order_key: str, channel: str, lapas_id: str) -> OrderRef:
    """The ledger's reference to an order."""
    return OrderRef(order_key=order_key, channel=channel, lapas_id=lapas_id)


def completion_request(data: dict[str, Any]) -> CompletionRequest:
    """A completion from an ``order_completed`` payload (allocations carry price, cost, supplier, work group),
    validated (:meth:`CompletionRequest.validate`, raises :class:`RequestError`): the edge where a payload becomes
    a request, so the posting path's builders and plans take it as it is instead of checking it again."""
    event = OrderCompleted.model_validate(data)
    lapas = event.lapas_id or (event.allocations[0].lapas_id if event.allocations else UNKNOWN_LAPAS)
    request = CompletionRequest(
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
                work_group=tuple([WorkMember(w.inmate_id, w.work_share) for w in a.work_group]),
            )
            for a in event.allocations
        ),
    )
    request.validate()
    return request


def settlement_request(data: dict[str, Any], ref: OrderRef) -> SettlementRequest:
    """A settlement from a ``settlement_reported`` payload (fees summed per fee type)."""
    return settlement_of_event(SettlementReported.model_validate(data), ref)


def settlement_of_event(event: SettlementReported, ref: OrderRef) -> SettlementRequest:
    """:func:`settlement_request` of a payload parsed already."""
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


def line_refund_request(data: dict[str, Any], ref: OrderRef, listings: Sequence[Listing] = ()) -> LineRefund:
    """A refund from a ``refund_reported`` payload, each line with the SKU it refunds: its seller SKU, else the
    SKU of the listing its channel ids name among ``listings`` (the completion's allocations, :func:`listings`)."""
    return line_refund_of_event(RefundReported.model_validate(data), ref, listings)


def line_refund_of_event(event: RefundReported, ref: OrderRef, listings: Sequence[Listing] = ()) -> LineRefund:
    """:func:`line_refund_request` of a payload parsed already."""
    return LineRefund(
        order=ref,
        refund_id=event.refund_id,
        amount=event.amount,
        refunded_at=event.refunded_at,
        lines=tuple(
            RefundedLine(sku(x.seller_sku, x.channel_sku_id, x.channel_product_id, listings), x.quantity, x.amount)
            for x in event.lines
        ),
        fees_returned=event.fees_returned,
        pph22_returned=event.pph22_returned,
        netted_in_settlement=event.netted_in_settlement,
    )


def listings(completion: dict[str, Any]) -> list[Listing]:
    """The listing of each allocation of a completion payload (our SKU and the channel's ids, when it names them)."""
    return [
        Listing(str(a.get("sku")), a.get("channel_product_id"), a.get("channel_sku_id"))
        for a in completion.get("allocations") or ()
    ]


class RecentCompletions:
    """The completion requests of recent orders, by order key: a settlement posted in a later batch than its
    completion finds the request parsed then, as long as the order's stored payload is the same JSON value.

    The same JSON value (:func:`same_json`) parses to an equal request, so :meth:`request` returns what
    :func:`completion_request` would; anything else is parsed again. Holds the last ``size`` orders.
    """

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._by_order: dict[str, tuple[dict[str, Any], CompletionRequest]] = {}

    def remember(self, order_key: str, data: dict[str, Any], request: CompletionRequest) -> None:
        """``request`` is what ``data`` (the order's completion payload) parses to."""
        self._by_order.pop(order_key, None)
        if len(self._by_order) >= self._size:
            del self._by_order[next(iter(self._by_order))]
        self._by_order[order_key] = (data, request)

    def request(self, order_key: str, data: dict[str, Any]) -> CompletionRequest:
        """The completion request of ``data``: the remembered one when ``data`` is the same JSON value."""
        hit = self._by_order.get(order_key)
        if hit is not None and (hit[0] is data or same_json(hit[0], data)):
            return hit[1]
        request = completion_request(data)
        self.remember(order_key, data, request)
        return request


def same_json(a: object, b: object) -> bool:
    """Whether ``a`` and ``b`` are the same JSON value of objects (string keys), arrays, strings, integers,
    booleans and nulls: same types all the way down (``1``, ``1.0`` and ``true`` differ) and equal values; key
    order aside. Anything else (floats included) is never the same."""
    if type(a) is not type(b):
        return False
    if type(a) is dict and type(b) is dict:
        if len(a) != len(b):
            return False
        for key, value in a.items():
            if type(key) is not str or key not in b or not same_json(value, b[key]):
                return False
        return True
    if type(a) is list and type(b) is list:
        return len(a) == len(b) and all(map(same_json, a, b))
    return (type(a) is str or type(a) is int or type(a) is bool or a is None) and a == b
