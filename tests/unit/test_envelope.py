"""The fast envelope encoder writes what the validating model would, with time-ordered UUIDv7 ids."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from infra.messaging.envelope import Envelope, encode_envelope, make_envelope


def test_encoded_envelope_is_the_models_document() -> None:
    at = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)
    data = {"order_key": "shopee:77001:SN1", "amount": 50_000, "lines": [{"sku": "A", "quantity": 2}]}
    cause = make_envelope(type="karya.marketplace.order_status_changed.v1", source="t", subject="s", data={})
    text_id, raw = encode_envelope(
        type="karya.orders.order_shipped.v1", source="karya/orders", subject="s", data=data, causation=cause, time=at
    )
    parsed = Envelope.from_bytes(raw)
    assert str(parsed.event_id) == text_id and parsed.event_id.version == 7
    assert (parsed.correlation_id, parsed.causation_id) == (cause.correlation_id, cause.event_id)
    # The cause's ids are spelled as str() spells a UUID (lower-case, hyphenated), as the model writes them.
    assert f'"correlation_id":"{cause.correlation_id}","causation_id":"{cause.event_id}"'.encode() in raw
    same = make_envelope(
        type="karya.orders.order_shipped.v1",
        source="karya/orders",
        subject="s",
        data=data,
        causation=cause,
        time=at,
        event_id=UUID(text_id),
    )
    # The same document; times may be spelled "+00:00" where the model writes "Z".
    assert parsed == Envelope.from_bytes(same.to_bytes())


def test_ids_are_time_ordered_and_uncaused_events_correlate_to_themselves() -> None:
    ids = []
    for _ in range(500):
        text_id, raw = encode_envelope(type="karya.ledger.entry_posted.v1", source="t", subject="s", data={})
        envelope = Envelope.from_bytes(raw)
        assert envelope.correlation_id == envelope.event_id and envelope.causation_id is None
        ids.append(UUID(text_id))
    assert ids == sorted(ids) and len(set(ids)) == 500
