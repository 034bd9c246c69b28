"""Order events the orders service refuses carry a buyer's name, phone and address; no stored or sent reason does.

One event is invalid (pydantic refuses it and quotes the input it refused), two carry a status that is not a
status code, one a product id that is an address. The dead letters' error texts, the ``karya-dlq-error`` headers
read back from Kafka, the parked orders' reasons and every log line name codes and field paths only.
"""

from __future__ import annotations

import json
from uuid import UUID

import pytest
import structlog
from sqlalchemy import text
from structlog.testing import capture_logs

from infra.db.engine import make_engine
from infra.db.roles import RoleUrls
from infra.messaging.envelope import make_envelope
from infra.messaging.topics import dead_letter_topic
from services.contracts.marketplace import ORDER_STATUS_CHANGED
from tests.integration.messaging_support import read_topic
from tests.integration.orders_support import (
    orders_by_key,
    orders_consumer,
    publish,
    recent,
    status_event,
    uid,
    wait_applied,
)
from tests.naming import topic_prefix

pytestmark = pytest.mark.integration

NAME, PHONE, ADDRESS = "Siti Rahayu", "0812-3456-7890", "Jl. Melati No. 5"
PERSONAL = (NAME, PHONE, ADDRESS)


def _value_free(thing: object) -> None:
    dumped = json.dumps(thing, default=repr)
    found = [p for p in PERSONAL if p in dumped]
    assert not found, (found, dumped[:2000])


async def test_refused_order_events_leave_no_buyer_data_in_reasons_headers_or_logs(
    kafka_bootstrap: str, database: RoleUrls
) -> None:
    u = uid()
    prefix = topic_prefix()
    base = recent()
    valid = status_event(u, "invalid", "READY_TO_SHIP", 0, "shopee", base=base)
    data = {**valid.data, "gross_amount": ADDRESS, "buyer": {"name": NAME, "phone": PHONE}}
    invalid = make_envelope(type=ORDER_STATUS_CHANGED, source="karya/gateway", subject=valid.subject, data=data)
    phone_status = status_event(u, "phone", PHONE, 0, "shopee", base=base)
    name_status = status_event(u, "name", NAME, 0, "tiktok_shop", base=base)
    address_product = status_event(u, "address", "220", 0, "tokopedia", lines=[(ADDRESS, 1)], base=base)
    events = [invalid, phone_status, name_status, address_product]
    engine = make_engine(database.service)
    try:
        with capture_logs(processors=[structlog.processors.format_exc_info]) as logs:
            async with orders_consumer(database, kafka_bootstrap, prefix, relay=True, partitions=1) as consumer:
                await publish(kafka_bootstrap, consumer.topic, events)
                await wait_applied(engine, consumer, len(events))
                dlq = await read_topic(kafka_bootstrap, dead_letter_topic(consumer.topic), expected=len(events))
        async with engine.connect() as conn:
            rows = await conn.execute(
                text("SELECT event_id, error FROM orders.dead_letters WHERE event_id = ANY(:ids)"),
                {"ids": [e.event_id for e in events]},
            )
            stored: dict[UUID, str] = {UUID(str(r[0])): r[1] for r in rows}
        parked = await orders_by_key(engine, [e.subject for e in events[1:]])
    finally:
        await engine.dispose()

    assert set(stored) == {e.event_id for e in events}
    headers = {r.value: dict(r.headers)["karya-dlq-error"].decode() for r in dlq}
    assert {e.to_bytes(): stored[e.event_id] for e in events} == headers  # the same texts on Kafka
    reasons = {key: order["parked_reason"] for key, order in parked.items()}
    _value_free([list(stored.values()), list(headers.values()), reasons, logs])

    assert stored[invalid.event_id] == (
        f"rejected: invalid {ORDER_STATUS_CHANGED}: ValidationError; fields gross_amount (int_parsing), "
        "buyer (extra_forbidden)"
    )
    assert reasons[phone_status.subject] == "unmappable order status (not a code: 14 characters) for channel 'shopee'"
    assert reasons[name_status.subject] == (
        "unmappable order status (not a code: 11 characters) for channel 'tiktok_shop'"
    )
    assert reasons[address_product.subject] == (
        f"unknown listing tokopedia/shop-{u}/(not an id: 16 characters) on line 1"
    )
    assert stored[phone_status.event_id] == f"rejected: {reasons[phone_status.subject]}"
