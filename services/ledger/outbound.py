"""Entry-posted events for the ledger outbox (dict payloads on the fast path; the schema is
``services/contracts/ledger.py`` and published bytes are validated against it in the tests)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from infra.messaging.outbox import OutboundMessage
from infra.messaging.topics import LEDGER_ENTRIES, MARKETPLACE_SETTLEMENTS, ORDERS_EVENTS, prefixed
from services.contracts.ledger import ENTRY_POSTED
from services.ledger.domain.hashchain import CommittedEntry
from services.ledger.domain.journal import EntryKind

_KIND_VALUE = {kind: kind.value for kind in EntryKind}  # reading .value off a member is a descriptor call


@dataclass(frozen=True, slots=True)
class LedgerTopics:
    """The topics the ledger reads and writes; the defaults are the base names (no prefix), and the composition
    root builds them under the deployment's prefix with :meth:`with_prefix`."""

    orders_events: str = ORDERS_EVENTS
    settlements: str = MARKETPLACE_SETTLEMENTS
    entries: str = LEDGER_ENTRIES

    @classmethod
    def with_prefix(cls, prefix: str) -> LedgerTopics:
        """The same topics under ``prefix``."""
        return prefixed(cls(), prefix)


def entry_posted_messages(posted: Sequence[CommittedEntry], topic: str) -> list[OutboundMessage]:
    """One ``entry_posted`` per committed entry to ``topic``, keyed by its order (or its posting key)."""
    messages = []
    for c in posted:
        e = c.entry
        kind = e.kind
        data = {
            "sequence": c.sequence,
            "posting_key": e.posting_key,
            "kind": _KIND_VALUE[kind] if type(kind) is EntryKind else kind.value,
            "order_key": e.order_key,
            "batch_id": e.batch_id,
            "policy_ref": e.policy_ref,
            "amount": e.debit_total,
            "effective_at": e.effective_at,
            "chain_hash": c.chain_hash,
        }
        messages.append(
            OutboundMessage.event(
                topic,
                type=ENTRY_POSTED,
                source="karya/ledger",
                subject=e.order_key or e.posting_key,
                data=data,
                causation=None,
            )
        )
    return messages
