"""Events the ledger publishes (through its outbox)."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from services.contracts.base import Payload

ENTRY_POSTED = "karya.ledger.entry_posted.v1"


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
