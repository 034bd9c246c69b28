"""The replay headers (``infra.messaging.replay``) and dead-letter names (``infra.messaging.dlq_admin``): what a
consumer takes for a replay of its own dead letter, how the count goes on, and what a replayed record carries."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from infra.messaging.dlq_admin import DeadLetterError, parse_ref
from infra.messaging.relay import OUTBOX_HEADER
from infra.messaging.replay import REPLAY_CONSUMER, REPLAY_COUNT, REPLAY_OF, replay_count, replay_headers, replayed_for

ORIGINAL = [("content-type", b"application/json"), ("karya-event-type", b"karya.marketplace.order_status_changed.v1")]
DLQ = [
    (OUTBOX_HEADER, b"gateway:17"),  # the first publication's outbox id: the replay's relay stamps its own
    ("karya-dlq-error", b"rejected: x"),
    ("karya-dlq-attempts", b"1"),
    ("karya-dlq-origin", b"t/0/5"),
]


def test_a_record_never_replayed_counts_zero_and_bad_values_count_zero() -> None:
    assert replay_count(ORIGINAL) == 0
    assert replay_count([(REPLAY_COUNT, b"two")]) == replay_count([(REPLAY_COUNT, b"\xff")]) == 0
    assert replay_count([(REPLAY_COUNT, b"-4")]) == 0
    assert replay_count([(REPLAY_COUNT, b"3")]) == 3


def test_only_the_named_consumer_takes_a_record_for_a_replay() -> None:
    headers = replay_headers(ORIGINAL, count=1, consumer="orders", replay_of="orders:9")
    assert replayed_for(headers, "orders")
    assert not replayed_for(headers, "ledger"), "other consumers of the topic see a plain redelivery"
    assert not replayed_for(ORIGINAL, "orders")
    assert not replayed_for([(REPLAY_CONSUMER, b"orders")], "orders"), "no count: not a replay"
    assert not replayed_for([(REPLAY_CONSUMER, b"orders"), (REPLAY_COUNT, b"0")], "orders")


def test_a_replayed_record_carries_its_original_headers_and_one_set_of_replay_headers() -> None:
    first = replay_headers([*ORIGINAL, *DLQ], count=1, consumer="orders", replay_of="orders:9")
    assert first == [*ORIGINAL, (REPLAY_COUNT, b"1"), (REPLAY_CONSUMER, b"orders"), (REPLAY_OF, b"orders:9")]
    # It dead-letters again (the consumer stores the headers it arrived with, then adds the DLQ ones): the next
    # replay counts on from it and keeps no stale header.
    second = replay_headers([*first, *DLQ], count=replay_count(first) + 1, consumer="orders", replay_of="orders:12")
    assert second == [*ORIGINAL, (REPLAY_COUNT, b"2"), (REPLAY_CONSUMER, b"orders"), (REPLAY_OF, b"orders:12")]


@given(st.integers(min_value=1, max_value=10_000), st.sampled_from(["orders", "ledger", "gateway-normaliser"]))
def test_the_count_written_is_the_count_read(count: int, consumer: str) -> None:
    headers = replay_headers(ORIGINAL, count=count, consumer=consumer, replay_of="x:1")
    assert replay_count(headers) == count and replayed_for(headers, consumer)


def test_dead_letters_are_named_schema_colon_id() -> None:
    schemas = ("orders", "ledger", "gateway")  # as a root's topology names them
    assert parse_ref("orders:42", schemas) == ("orders", 42)
    assert parse_ref("gateway:1", schemas) == ("gateway", 1)
    for bad in ("orders", "orders:", "orders:-1", "public:1", "orders:4x", "ORDERS:1"):
        with pytest.raises(DeadLetterError):
            parse_ref(bad, schemas)
