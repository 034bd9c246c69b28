"""A delivery the normaliser refuses: the reason (stored with the dead letter) quotes the error in full; the
facts (logged) name the delivery by ids and the error by class and field paths, never the body's values."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from aiokafka import ConsumerRecord

from infra.messaging.consumer import InboundEvent, Rejection
from infra.messaging.envelope import make_envelope
from services.contracts.gateway import DELIVERY_RECEIVED
from services.gateway.normaliser import parse_event

NAME, PHONE = "Siti Rahayu", "+6281234567890"


def _event(type_name: str, data: dict[str, object]) -> InboundEvent:
    envelope = make_envelope(type=type_name, source="karya/tests", subject="tokopedia:1:2", data=data)
    value = envelope.to_bytes()
    record = ConsumerRecord("raw", 0, 7, 0, 0, b"k", value, None, 1, len(value), [])
    return InboundEvent(envelope, record)


def _delivery(body: str) -> dict[str, object]:
    return {
        "delivery_id": 41,
        "channel": "tokopedia",
        "webhook_type": "order_notification",
        "dedupe_key": "d-41",
        "body": body,
        "received_at": datetime(2026, 11, 28, tzinfo=UTC).isoformat(),
    }


def test_an_invalid_body_is_rejected_with_ids_and_field_paths_logged_and_values_stored() -> None:
    body = json.dumps({"order_id": "not-a-number", "recipient": {"name": NAME, "phone": PHONE}})
    rejected = parse_event(_event(DELIVERY_RECEIVED, _delivery(body)))

    assert isinstance(rejected, Rejection)
    assert rejected.reason.startswith("tokopedia order_notification delivery 41: ")
    facts = json.dumps(rejected.facts)
    assert NAME not in facts and PHONE not in facts and "not-a-number" not in facts
    assert rejected.facts["channel"] == "tokopedia" and rejected.facts["delivery_id"] == 41
    assert rejected.facts["webhook_type"] == "order_notification"
    assert isinstance(rejected.facts["error"], str) and rejected.facts["error"]


def test_an_envelope_that_is_not_a_delivery_is_rejected_with_its_type_logged() -> None:
    rejected = parse_event(_event("karya.test.other.v1", {"buyer": NAME}))

    assert isinstance(rejected, Rejection)
    assert rejected.facts == {"detail": "unexpected event type karya.test.other.v1"}


def test_a_delivery_envelope_with_a_bad_payload_logs_field_paths_only() -> None:
    data = _delivery("{}") | {"delivery_id": NAME}
    rejected = parse_event(_event(DELIVERY_RECEIVED, data))

    assert isinstance(rejected, Rejection)
    assert NAME in rejected.reason  # stored in full
    assert NAME not in json.dumps(rejected.facts)
    assert {"loc": "delivery_id", "type": "int_parsing"} in rejected.facts["fields"]  # type: ignore[operator]
