"""Events the ledger publishes (through its outbox)."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from services.contracts.base import OrderKey, Payload, Rupiah

ENTRY_POSTED = "karya.ledger.entry_posted.v1"
ORDER_SETTLED = "karya.ledger.order_settled.v1"


class EntryPosted(Payload):
    """A journal entry was posted (committed, chained)."""

    sequence: int = Field(gt=0)
    posting_key: str
    kind: str
    order_key: str | None = None
    batch_id: str | None = None
    policy_ref: str | None = None
    amount: int = Field(ge=0, description="Total debits (= total credits) of the entry, in rupiah.")
    effective_at: datetime
    chain_hash: str = Field(pattern=r"^[0-9a-f]{64}$")


class OrderSettled(Payload):
    """The ledger posted a marketplace's settlement of one order: the domain fact the orders service acts on
    (published with the entry's ``entry_posted``, in the same transaction, keyed by the order)."""

    order_key: OrderKey
    posting_key: str = Field(description="The settlement entry's posting key.")
    sequence: int = Field(gt=0, description="The settlement entry's journal sequence.")
    amount: Rupiah = Field(description="Total debits (= total credits) of the settlement entry, in rupiah.")
    effective_at: datetime


ORDER_ALLOCATED_BY_PERSON = "karya.ledger.order_allocated_by_person.v1"


class BatchQuantity(Payload):
    """``quantity`` units of an order taken from production batch ``batch_id``."""

    batch_id: str = Field(min_length=1)
    quantity: int = Field(gt=0)


class OrderAllocatedByPerson(Payload):
    """A person allocated a completed order's proceeds to production batches (``karya ledger allocate``): the goods
    left from those batches, so the orders service stops waiting for stock for the order and records the units as
    consumed (published through the ledger's outbox in the allocation's transaction, keyed by the order)."""

    order_key: OrderKey
    allocations: list[BatchQuantity] = Field(min_length=1)
    allocated_by: str | None = Field(default=None, description="Who allocated (the acting user), if known.")
    approved_by: str | None = Field(default=None, description="Who approved, when the allocation was approved.")
    allocated_at: datetime
