"""Posting requests: the inputs of the posting builders, as plain frozen values.

The adapters build these from events (order completed, settlement reported, refund reported, payout
ordered) plus the order's state (lapas, batch allocations). Each request has ``validate()``; the builders call
it. The idempotency hash of a posting is computed from its request (see
:func:`services.ledger.domain.journal.request_hash`), never from balances or other state, so a redelivered
event hashes the same even if balances moved in between.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from fractions import Fraction

from services.ledger.domain.accounts import OWNER_PATTERN
from services.ledger.domain.errors import RequestError

__all__ = [
    "BatchAllocation",
    "CompletionRequest",
    "OrderRef",
    "PayoutRequest",
    "RefundRequest",
    "SettlementRequest",
    "WorkMember",
]


def _rupiah(name: str, value: object, *, positive: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise RequestError(f"{name} must be an int number of rupiah, got {type(value).__name__} {value!r}")
    if value < 0 or (positive and value == 0):
        raise RequestError(f"{name} must be {'> 0' if positive else '>= 0'}, got {value}")


def _ident(name: str, value: object) -> None:
    if not isinstance(value, str) or not OWNER_PATTERN.fullmatch(value):
        raise RequestError(f"{name} must be an id of letters, digits, '.', '_' or '-', got {value!r}")


def _aware(name: str, value: object) -> None:
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise RequestError(f"{name} must be a datetime with a time zone, got {value!r}")


def _fees(name: str, fees: Mapping[str, int]) -> int:
    for fee_type, amount in fees.items():
        _ident(f"{name} type", fee_type)
        _rupiah(f"{name}[{fee_type}]", amount)
    return sum(fees.values())


@dataclass(frozen=True, slots=True)
class OrderRef:
    """Which order (``marketplace:shop:order``), sold on which channel, by which lapas."""

    order_key: str
    channel: str
    lapas_id: str

    def validate(self) -> None:
        """Raise :class:`RequestError` unless the reference is well formed."""
        parts = self.order_key.split(":") if isinstance(self.order_key, str) else []
        if len(parts) != 3 or not all(parts):
            raise RequestError(f"order_key must be 'marketplace:shop:order', got {self.order_key!r}")
        _ident("channel", self.channel)
        _ident("lapas_id", self.lapas_id)


@dataclass(frozen=True, slots=True)
class WorkMember:
    """One inmate (pseudonymous id) of a batch's work group with a work share (a weight, not a percent)."""

    inmate_id: str
    share: int | Fraction


@dataclass(frozen=True, slots=True)
class BatchAllocation:
    """Units of one order taken from one production batch, with what the batch costs and who made it."""

    batch_id: str
    sku: str
    quantity: int
    unit_price: int
    unit_material_cost: int
    supplier_id: str
    work_group: tuple[WorkMember, ...]

    @property
    def material_cost(self) -> int:
        """Owed to the supplier for these units: unit material cost × quantity."""
        return self.unit_material_cost * self.quantity

    def validate(self) -> None:
        """Raise :class:`RequestError` unless the allocation is well formed."""
        where = f"allocation {self.batch_id!r}"
        _ident("batch_id", self.batch_id)
        _ident(f"{where} sku", self.sku)
        _ident(f"{where} supplier_id", self.supplier_id)
        _rupiah(f"{where} quantity", self.quantity, positive=True)
        _rupiah(f"{where} unit_price", self.unit_price)
        _rupiah(f"{where} unit_material_cost", self.unit_material_cost)
        if not self.work_group:
            raise RequestError(f"{where} has an empty work group")
        seen: set[str] = set()
        for member in self.work_group:
            _ident(f"{where} inmate_id", member.inmate_id)
            if member.inmate_id in seen:
                raise RequestError(f"{where}: inmate {member.inmate_id} appears twice in the work group")
            seen.add(member.inmate_id)
            share = member.share
            if isinstance(share, bool) or not isinstance(share, int | Fraction) or share < 0:
                raise RequestError(f"{where}: work share of {member.inmate_id} must be an int or Fraction >= 0")
        if not any(m.share for m in self.work_group):  # each share was just checked to be >= 0
            raise RequestError(f"{where}: all work shares are zero")


@dataclass(frozen=True, slots=True)
class CompletionRequest:
    """An order reached COMPLETED: ``gross`` rupiah are now owed by the marketplace.

    ``allocations`` (one per batch, batch ids unique) attribute the gross to batches by quantity × unit
    price; they are fixed here so that settlement and refunds split exactly what was sold. None (a failed
    reservation, an unknown listing, a historical import): the proceeds wait in unallocated until a person (or
    a later allocation) names the batches.
    """

    order: OrderRef
    gross: int
    completed_at: datetime
    allocations: tuple[BatchAllocation, ...]

    def validate(self) -> None:
        """Raise :class:`RequestError` unless the request is well formed."""
        self.order.validate()
        _rupiah("gross", self.gross, positive=True)
        _aware("completed_at", self.completed_at)
        for allocation in self.allocations:
            allocation.validate()
        ids = [a.batch_id for a in self.allocations]
        if len(set(ids)) != len(ids):
            raise RequestError(f"order {self.order.order_key}: a batch appears twice in the allocations {ids}")
        if self.allocations and all(a.quantity * a.unit_price == 0 for a in self.allocations):
            raise RequestError(f"order {self.order.order_key}: every allocation has a zero price")


@dataclass(frozen=True, slots=True)
class SettlementRequest:
    """The marketplace settled an order: gross, fees by type, PPh 22 withheld, net paid to the bank."""

    order: OrderRef
    settlement_id: str
    gross: int
    fees: Mapping[str, int]
    pph22_withheld: int
    net_payout: int
    settled_at: datetime
    bank_account: str = "main"

    @property
    def fee_total(self) -> int:
        """Sum of all fees."""
        return sum(self.fees.values())

    def validate(self) -> None:
        """Raise :class:`RequestError` unless the request is well formed."""
        self.order.validate()
        _ident("settlement_id", self.settlement_id)
        _rupiah("gross", self.gross)
        _fees("fees", self.fees)
        _rupiah("pph22_withheld", self.pph22_withheld)
        _rupiah("net_payout", self.net_payout)
        _aware("settled_at", self.settled_at)
        _ident("bank_account", self.bank_account)


@dataclass(frozen=True, slots=True)
class RefundRequest:
    """A (partial or full) refund of ``amount`` gross to the buyer, at most once per ``refund_id``.

    ``clawback`` is what the marketplace takes back from the seller; by default the refunded gross less the
    fees and PPh 22 it returns. Any difference between ``amount`` and clawback + returned fees + returned tax
    goes to suspense.
    """

    order: OrderRef
    refund_id: str
    amount: int
    refunded_at: datetime
    clawback: int | None = None
    fees_returned: Mapping[str, int] = field(default_factory=dict)
    pph22_returned: int = 0
    bank_account: str = "main"

    @property
    def effective_clawback(self) -> int:
        """``clawback`` or, when absent, amount − returned fees − returned PPh 22."""
        if self.clawback is not None:
            return self.clawback
        return self.amount - sum(self.fees_returned.values()) - self.pph22_returned

    def validate(self) -> None:
        """Raise :class:`RequestError` unless the request is well formed."""
        self.order.validate()
        _ident("refund_id", self.refund_id)
        _rupiah("amount", self.amount, positive=True)
        _aware("refunded_at", self.refunded_at)
        _fees("fees_returned", self.fees_returned)
        _rupiah("pph22_returned", self.pph22_returned)
        _rupiah("clawback", self.effective_clawback)
        _ident("bank_account", self.bank_account)


@dataclass(frozen=True, slots=True)
class PayoutRequest:
    """Pay an inmate's savings out on release (``amount`` rupiah from ``bank_account``)."""

    inmate_id: str
    payout_id: str
    amount: int
    paid_at: datetime
    bank_account: str = "main"

    def validate(self) -> None:
        """Raise :class:`RequestError` unless the request is well formed."""
        _ident("inmate_id", self.inmate_id)
        _ident("payout_id", self.payout_id)
        _rupiah("amount", self.amount, positive=True)
        _aware("paid_at", self.paid_at)
        _ident("bank_account", self.bank_account)
