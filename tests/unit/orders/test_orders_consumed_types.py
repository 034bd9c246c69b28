"""What the orders consumer reads off its topics: marketplace status changes and the ledger's ``order_settled`` and
``order_allocated_by_person``; every ``entry_posted`` on ``ledger.entries`` is skipped by its type header (no
decoding, no inbox row)."""

from __future__ import annotations

from aiokafka import ConsumerRecord

from infra.db.engine import make_engine
from infra.messaging.consumer import BatchConsumer
from infra.messaging.envelope import make_envelope
from infra.settings import KafkaSettings
from services.contracts.ledger import ENTRY_POSTED, ORDER_ALLOCATED_BY_PERSON, ORDER_SETTLED
from services.contracts.marketplace import ORDER_STATUS_CHANGED
from services.orders.app import CONSUMED_TYPES, build_runtime
from services.orders.outbound import OrdersTopics


def _orders_consumer() -> BatchConsumer:
    kafka = KafkaSettings(bootstrap_servers="127.0.0.1:1")
    never_connected = make_engine("postgresql+asyncpg://x@127.0.0.1:1/x")
    runtime = build_runtime(never_connected, kafka, topics=OrdersTopics())
    (audited,) = runtime.audited
    return audited.consumer


def _record(type_name: str, *, header: bool = True) -> ConsumerRecord[bytes, bytes]:
    value = make_envelope(type=type_name, source="karya/ledger", subject="tokopedia:1:2", data={}).to_bytes()
    headers = [("karya-event-type", type_name.encode())] if header else []
    return ConsumerRecord("ledger.entries", 0, 0, 0, 0, b"k", value, None, 1, len(value), headers)


def test_the_orders_consumer_acts_on_status_changes_order_settled_and_persons_allocations_only() -> None:
    assert {ORDER_STATUS_CHANGED, ORDER_SETTLED, ORDER_ALLOCATED_BY_PERSON} == CONSUMED_TYPES
    assert ENTRY_POSTED not in CONSUMED_TYPES


def test_entry_posted_is_skipped_before_decoding_and_order_settled_is_acted_on() -> None:
    consumer = _orders_consumer()
    skipped = consumer.decode([_record(ENTRY_POSTED), _record(ENTRY_POSTED, header=False)])
    assert (skipped.events, skipped.unknown, skipped.undecodable) == ([], [], [])  # known, not acted on
    acted = consumer.decode([_record(ORDER_SETTLED), _record(ORDER_STATUS_CHANGED)])
    assert [e.envelope.type for e in acted.events] == [ORDER_SETTLED, ORDER_STATUS_CHANGED]
    unknown = consumer.decode([_record("karya.nobody.defines_this.v1")])
    assert [e.envelope.type for e in unknown.unknown] == ["karya.nobody.defines_this.v1"]  # dead-lettered, once
