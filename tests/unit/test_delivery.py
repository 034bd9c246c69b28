"""Handlers see envelopes and a transport-free :class:`Delivery`: a Kafka record becomes one where the batch
arrives, and a use case's plan step can be driven with in-memory events, with no broker and no database."""

from __future__ import annotations

from collections.abc import Sequence

from aiokafka import ConsumerRecord
from sqlalchemy.ext.asyncio import AsyncConnection

from infra.db.engine import make_engine
from infra.messaging.consumer import BatchConsumer, InboundEvent, Rejection
from infra.messaging.dead_letters import delivery_of, envelope_of
from infra.messaging.delivery import Delivery
from infra.messaging.envelope import make_envelope
from infra.messaging.metrics import MessagingMetrics
from infra.settings import KafkaSettings
from services.contracts.marketplace import SETTLEMENT_REPORTED
from services.contracts.orders import ORDER_COMPLETED
from services.ledger.app import rejections
from services.ledger.posting_plan import check_arrivals

KEY = "shopee:s1:o1"


def _event(type_name: str, data: dict[str, object], offset: int) -> InboundEvent:
    envelope = make_envelope(type=type_name, source="karya/tests", subject=KEY, data=data)
    delivery = Delivery("marketplace.settlements", 2, offset, KEY.encode(), envelope.to_bytes())
    return InboundEvent(envelope, delivery)


def test_a_kafka_record_becomes_a_delivery_with_everything_dead_lettering_needs() -> None:
    headers = [("karya-event-type", b"t")]
    record = ConsumerRecord("orders.events", 3, 41, 0, 0, b"k", b"v", None, 1, 1, headers)
    delivery = Delivery.of(record)
    assert delivery == Delivery("orders.events", 3, 41, b"k", b"v", (("karya-event-type", b"t"),))
    assert delivery.origin == "orders.events/3/41"
    empty = Delivery.of(ConsumerRecord("t", 0, 0, 0, 0, None, None, None, 0, 0, []))
    assert (empty.key, empty.value, empty.headers) == (None, b"", ())


async def _handler(conn: AsyncConnection, events: Sequence[InboundEvent]) -> None:
    return None


def test_the_consumer_hands_handlers_deliveries_not_kafka_records() -> None:
    consumer = BatchConsumer(
        name="c",
        schema="s",
        engine=make_engine("postgresql+asyncpg://x@127.0.0.1:1/x", pool_size=1),  # never connected
        handler=_handler,
        settings=KafkaSettings(bootstrap_servers="127.0.0.1:1"),
        metrics=MessagingMetrics(),
    )
    envelope = make_envelope(type=ORDER_COMPLETED, source="karya/tests", subject=KEY, data={})
    value = envelope.to_bytes()
    batch = consumer.decode([ConsumerRecord("orders.events", 1, 9, 0, 0, b"k", value, None, 1, len(value), [])])
    (event,) = batch.events
    assert event.envelope == envelope
    assert type(event.delivery) is Delivery
    assert event.delivery == Delivery("orders.events", 1, 9, b"k", value)


def test_the_ledger_checks_settlements_on_arrival_from_in_memory_events() -> None:
    completion = _event(ORDER_COMPLETED, {}, 1)  # completions are validated when posted, not here
    broken = _event(SETTLEMENT_REPORTED, {"order_key": KEY}, 2)
    relevant, refused = check_arrivals([completion.envelope, broken.envelope])
    assert relevant == [completion.envelope]
    rejected = rejections([completion, broken], refused, "marketplace.settlements")
    assert [r.event for r in rejected] == [broken]
    assert isinstance(rejected[0], Rejection) and rejected[0].facts["rule"] == "contract"
    assert rejected[0].event.delivery.origin == "marketplace.settlements/2/2"  # where its dead letter points


def test_a_parked_event_is_dead_lettered_from_where_it_first_arrived() -> None:
    """A refused event parked by an earlier batch has no delivery of this batch: its delivery is rebuilt from the
    stored envelope at its origin (from the inbox), else at the fallback topic with partition and offset -1."""
    envelope = make_envelope(type=SETTLEMENT_REPORTED, source="karya/tests", subject=KEY, data={"order_key": KEY})
    parked = delivery_of(envelope, ("marketplace.settlements", 4, 17), "elsewhere")
    assert (parked.origin, parked.key, envelope_of(parked)) == ("marketplace.settlements/4/17", KEY.encode(), envelope)
    assert delivery_of(envelope, None, "marketplace.settlements").origin == "marketplace.settlements/-1/-1"
