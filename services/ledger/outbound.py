"""The ledger's events for its outbox: ``entry_posted`` per journal entry on the entries topic, and ``order_settled``
per settlement of an order on the topic the orders service reads (dict payloads on the fast path; the schemas are
``services/contracts/ledger.py`` and published bytes are validated against them in the tests)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from infra.messaging.outbox import OutboundMessage
from infra.messaging.topics import (
    LEDGER_ENTRIES,
    LEDGER_ORDER_EVENTS,
    MARKETPLACE_SETTLEMENTS,
    ORDERS_EVENTS,
    prefixed,
)
from services.contracts.ledger import ENTRY_POSTED, ORDER_SETTLED
from services.ledger.domain.hashchain import CommittedEntry
from services.ledger.domain.journal import EntryKind

_KIND_VALUE = {kind: kind.value for kind in EntryKind}  # reading .value off a member is a descriptor call
_SETTLEMENT = EntryKind.SETTLEMENT.value


@dataclass(frozen=True, slots=True)
class LedgerTopics:
    """The topics the ledger reads and writes; the defaults are the base names (no prefix), and the composition
    root builds them under the deployment's prefix with :meth:`with_prefix`."""

    orders_events: str = ORDERS_EVENTS
    settlements: str = MARKETPLACE_SETTLEMENTS
    entries: str = LEDGER_ENTRIES
    ledger_order_events: str = LEDGER_ORDER_EVENTS  # what the orders service reads: order_settled, allocations

    @classmethod
    def with_prefix(cls, prefix: str) -> LedgerTopics:
        """The same topics under ``prefix``."""
        return prefixed(cls(), prefix)


def entry_posted_messages(posted: Sequence[CommittedEntry], topics: LedgerTopics) -> list[OutboundMessage]:
    """One ``entry_posted`` per committed entry to ``topics.entries``, keyed by its order (or its posting key); after
    a settlement of an order, also its ``order_settled`` keyed by the order to ``topics.ledger_order_events`` (what
    the orders service reads, so it fetches no ``entry_posted`` at all)."""
    topic, settled_topic = topics.entries, topics.ledger_order_events
    messages = []
    for c in posted:
        e = c.entry
        kind = e.kind
        kind_value = _KIND_VALUE[kind] if type(kind) is EntryKind else kind.value
        data = {
            "sequence": c.sequence,
            "posting_key": e.posting_key,
            "kind": kind_value,
            "order_key": e.order_key,
            "batch_id": e.batch_id,
            "policy_ref": e.policy_ref,
            "amount": e.debit_total,
            "effective_at": e.effective_at,
            "chain_hash": c.chain_hash,
        }
        subject = e.order_key or e.posting_key
        messages.append(
            OutboundMessage.event(
                topic, type=ENTRY_POSTED, source="karya/ledger", subject=subject, data=data, causation=None
            )
        )
        if kind_value == _SETTLEMENT and e.order_key is not None:
            settled = {
                "order_key": e.order_key,
                "posting_key": e.posting_key,
                "sequence": c.sequence,
                "amount": data["amount"],
                "effective_at": e.effective_at,
            }
            messages.append(
                OutboundMessage.event(
                    settled_topic,
                    type=ORDER_SETTLED,
                    source="karya/ledger",
                    subject=e.order_key,
                    data=settled,
                    causation=None,
                )
            )
    return messages
