"""A delivery the normaliser refuses: the reason (stored with the dead letter, sent in the DLQ header) and the
facts (logged) name the delivery by ids and the error by class, field paths and codes, never the body's values."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from infra.messaging.envelope import make_envelope
from services.contracts.gateway import DELIVERY_RECEIVED
from services.gateway.normaliser import Refused, parse
from services.gateway.parking import Arrival, Origin

NAME, PHONE, ADDRESS = "Siti Rahayu", "0812-3456-7890", "Jl. Melati No. 5"
PERSONAL = (NAME, PHONE, ADDRESS)


def _event(type_name: str, data: dict[str, object]) -> Arrival:
    envelope = make_envelope(type=type_name, source="karya/tests", subject="tokopedia:1:2", data=data)
    return Arrival(envelope, Origin("raw", 0, 7, b"k", envelope.to_bytes()))


def _delivery(body: str, webhook_type: str = "order_notification") -> dict[str, object]:
    return {
        "delivery_id": 41,
        "channel": "tokopedia",
        "webhook_type": webhook_type,
        "dedupe_key": "d-41",
        "body": body,
        "received_at": datetime(2026, 11, 28, tzinfo=UTC).isoformat(),
    }


def _value_free(rejected: Refused) -> None:
    for text in (rejected.reason, json.dumps(rejected.facts)):
        assert not any(p in text for p in PERSONAL), text


def test_an_invalid_body_is_rejected_with_ids_and_field_paths_only() -> None:
    body = json.dumps({"order_id": "not-a-number", "recipient": {"name": NAME, "phone": PHONE}})
    rejected = parse(_event(DELIVERY_RECEIVED, _delivery(body)))

    assert isinstance(rejected, Refused)
    assert rejected.reason == "tokopedia order_notification delivery 41: unparseable: ParseError: missing field shop_id"
    _value_free(rejected)
    facts = json.dumps(rejected.facts)
    assert NAME not in facts and PHONE not in facts and "not-a-number" not in facts
    assert rejected.facts["channel"] == "tokopedia" and rejected.facts["delivery_id"] == 41
    assert rejected.facts["webhook_type"] == "order_notification"
    assert isinstance(rejected.facts["error"], str) and rejected.facts["error"]


def test_an_envelope_that_is_not_a_delivery_is_rejected_with_its_type_logged() -> None:
    rejected = parse(_event("karya.test.other.v1", {"buyer": NAME}))

    assert isinstance(rejected, Refused)
    assert rejected.facts == {"detail": "unexpected event type 'karya.test.other.v1'"}


def test_a_personal_value_where_a_code_belongs_is_not_quoted() -> None:
    for field, bad in [
        ("order_id", f"{NAME}:{PHONE}"),
        ("shop_id", [PHONE]),
        ("order_status", NAME),
        ("order_status", {"to": ADDRESS}),
        ("update_time", ADDRESS),
    ]:
        doc = {"fs_id": 1, "order_id": 5, "shop_id": 7, "order_status": 400, "update_time": 1_790_000_000}
        rejected = parse(_event(DELIVERY_RECEIVED, _delivery(json.dumps(doc | {field: bad}), "order_status")))
        assert isinstance(rejected, Refused), field
        _value_free(rejected)
    status = {"fs_id": 1, "order_id": 5, "shop_id": 7, "order_status": PHONE, "update_time": 1_790_000_000}
    rejected = parse(_event(DELIVERY_RECEIVED, _delivery(json.dumps(status), "order_status")))
    assert isinstance(rejected, Refused)
    assert "unmappable order status (not a code: 14 characters) for channel 'tokopedia'" in rejected.reason
    _value_free(rejected)
    amounts = _delivery(
        json.dumps(status | {"order_status": 220, "products": [{"id": 1, "quantity": 1, "price": 1.5}]})
    )
    rejected = parse(_event(DELIVERY_RECEIVED, amounts))
    assert isinstance(rejected, Refused)
    assert rejected.reason.endswith(
        "non-integral amount: NonIntegralAmount: products[0].price: not a whole number of rupiah"
    )


def test_a_delivery_envelope_with_a_bad_payload_logs_field_paths_only() -> None:
    data = _delivery("{}") | {"delivery_id": NAME}
    rejected = parse(_event(DELIVERY_RECEIVED, data))

    assert isinstance(rejected, Refused)
    assert rejected.reason == f"invalid {DELIVERY_RECEIVED}: ValidationError; fields delivery_id (int_parsing)"
    _value_free(rejected)
    assert {"loc": "delivery_id", "type": "int_parsing"} in rejected.facts["fields"]  # type: ignore[operator]
