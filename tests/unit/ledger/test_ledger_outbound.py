"""The ledger's outbox messages: an ``entry_posted`` per entry, and with a settlement of an order its
``order_settled`` (keyed by the order), valid against the committed schemas."""

from __future__ import annotations

from datetime import UTC, datetime

from infra.messaging.outbox import OutboundMessage
from services.contracts.ledger import ENTRY_POSTED, ORDER_SETTLED
from services.ledger.domain.distribution import plan_distribution
from services.ledger.domain.hashchain import CommittedEntry
from services.ledger.domain.postings import build_completion, build_distribution, build_settlement
from services.ledger.outbound import LedgerTopics, entry_posted_messages
from tests.contract_validation import validate_published
from tests.unit.ledger.ledger_support import COMPLETION, DEMO_POLICIES, SETTLEMENT

TOPICS = LedgerTopics()


def _type(message: OutboundMessage) -> str:
    return dict(message.headers)["karya-event-type"].decode()


def test_a_settlement_posting_enqueues_entry_posted_and_order_settled() -> None:
    entries = [
        build_completion(COMPLETION),
        build_settlement(SETTLEMENT, COMPLETION.gross),
        *build_distribution(plan_distribution(COMPLETION, SETTLEMENT, DEMO_POLICIES), SETTLEMENT),
    ]
    now = datetime(2026, 2, 3, tzinfo=UTC)
    posted = [CommittedEntry(n, e, now, chain_hash=f"{n:064x}") for n, e in enumerate(entries, start=10)]
    messages = entry_posted_messages(posted, TOPICS)
    docs = [validate_published(m.payload) for m in messages]
    # order_settled goes to the orders-facing topic, so the orders service never fetches an entry_posted
    assert [m.topic for m in messages] == [
        TOPICS.ledger_order_events if _type(m) == ORDER_SETTLED else TOPICS.entries for m in messages
    ]
    assert [_type(m) == ORDER_SETTLED for m in messages].count(True) == 1
    assert [_type(m) for m in messages] == [d["type"] for d in docs]
    assert [d["type"] for d in docs] == [ENTRY_POSTED, ENTRY_POSTED, ORDER_SETTLED] + [ENTRY_POSTED] * (
        len(entries) - 2
    )
    settlement, settled = docs[1], docs[2]
    assert settlement["data"]["kind"] == "settlement"
    assert messages[2].key == COMPLETION.order.order_key.encode() and settled["subject"] == COMPLETION.order.order_key
    assert settled["data"] == {
        "order_key": COMPLETION.order.order_key,
        "posting_key": settlement["data"]["posting_key"],
        "sequence": 11,
        "amount": settlement["data"]["amount"],
        "effective_at": settlement["data"]["effective_at"],
    }
    assert isinstance(settled["data"]["amount"], int) and settled["data"]["amount"] > 0
