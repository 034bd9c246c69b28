"""The committed schemas match the code, and they really constrain what is published."""

from __future__ import annotations

import jsonschema
import pytest

from infra.messaging.envelope import make_envelope
from karya.schemas_cli import drift
from services.contracts.registry import EVENT_TYPES
from tests.contract_validation import validate_published


def test_committed_schemas_and_asyncapi_match_the_code() -> None:
    assert drift() == [], "run `make schemas` and commit schemas/"


def test_every_event_type_has_a_committed_schema() -> None:
    for type_name in EVENT_TYPES:
        envelope = make_envelope(type=type_name, source="karya/tests", subject="shopee:1:2", data={})
        with pytest.raises(jsonschema.ValidationError):
            validate_published(envelope.to_bytes())  # empty data never satisfies a real event schema


def test_valid_order_event_passes_and_float_money_fails() -> None:
    data = {
        "order_key": "shopee:77:2411ABC",
        "channel": "shopee",
        "shop_id": "77",
        "order_id": "2411ABC",
        "raw_status": "READY_TO_SHIP",
        "update_time": "2026-11-01T08:00:00Z",
        "lines": [{"channel_product_id": "123", "quantity": 2, "unit_price": 25000}],
    }
    ok = make_envelope(
        type="karya.marketplace.order_status_changed.v1", source="karya/gateway", subject="shopee:77:2411ABC", data=data
    )
    assert validate_published(ok.to_bytes())["data"]["lines"][0]["unit_price"] == 25000
    bad = {**data, "lines": [{"channel_product_id": "123", "quantity": 2, "unit_price": 25000.5}]}
    with pytest.raises(jsonschema.ValidationError):
        validate_published(ok.model_copy(update={"data": bad}).to_bytes())
