"""The completeness rule without a broker or a database: what counts as applied, skipped, dead-lettered or lost,
how the consumer's own filter classifies records, checkpoints, the report shapes and the gauge."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence

import pytest
from aiokafka import ConsumerRecord
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncConnection

from infra.db.engine import make_engine
from infra.messaging.completeness import (
    Checkpoint,
    Origin,
    PartitionAudit,
    RecordFacts,
    gaps_by_group_topic,
    outcome_of,
    total_gaps,
)
from infra.messaging.completeness_audit import classify_record, completeness_gauge, publish_gaps
from infra.messaging.consumer import BatchConsumer, InboundEvent
from infra.messaging.envelope import make_envelope
from infra.messaging.metrics import MessagingMetrics
from infra.runtime import ServiceRuntime
from infra.settings import KafkaSettings
from karya.audit_cli import render_table, report_json
from karya.services import wired_consumers
from services.ledger.app import CONSUMED_TYPES as LEDGER_CONSUMED_TYPES
from services.ledger.posting import POSTED_EVENT_TYPES

ORIGIN = Origin("karya-ledger", "orders.events", 2)
A, B, C = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()


def test_each_record_has_one_fate() -> None:
    inbox = {A: "applied", B: "dead_lettered"}
    dead = {7, 8}
    assert outcome_of(RecordFacts(1, "skip"), inbox, dead) == "skipped"
    assert outcome_of(RecordFacts(2, "act", A), inbox, dead) == "applied"
    assert outcome_of(RecordFacts(3, "act", B), inbox, dead) == "dead_lettered"
    assert outcome_of(RecordFacts(4, "act", C), inbox, dead) == "gap"  # committed past, never claimed: lost
    assert outcome_of(RecordFacts(7, "undecodable"), inbox, dead) == "dead_lettered"  # by topic/partition/offset
    assert outcome_of(RecordFacts(5, "undecodable"), inbox, dead) == "gap"
    assert outcome_of(RecordFacts(8, "act", C), inbox, dead) == "dead_lettered"  # a dead letter without inbox row


def test_partition_audit_counts_and_lists_gaps_in_offset_order() -> None:
    audit = PartitionAudit(ORIGIN, start=10, end=20)
    facts = [
        RecordFacts(10, "act", A),
        RecordFacts(11, "skip"),
        RecordFacts(12, "act", A),  # the same event again: its one inbox row covers both copies
        RecordFacts(15, "act", C),
        RecordFacts(13, "undecodable"),
        RecordFacts(14, "act", B),
    ]
    audit.add(facts, {A: "applied", B: "dead_lettered"}, {13})
    assert (audit.records, audit.applied, audit.skipped, audit.dead_lettered, audit.gap_count) == (6, 2, 1, 2, 1)
    assert audit.gap_offsets() == [15]
    assert audit.read_to == 16 and audit.truncated  # 16..19 unread (e.g. a bound): not verified, not gaps
    row = audit.as_dict()
    assert row["gaps"] == 1 and row["gap_offsets"] == [15] and row["truncated"] is True
    assert (row["group"], row["topic"], row["partition"], row["start"], row["end"]) == (
        "karya-ledger",
        "orders.events",
        2,
        10,
        20,
    )


def test_gap_list_is_bounded_but_every_gap_is_counted() -> None:
    audit = PartitionAudit(ORIGIN, start=0, end=5000)
    audit.add((RecordFacts(o, "act", uuid.uuid4()) for o in range(5000)), {}, set())
    assert audit.gap_count == 5000
    assert audit.gap_offsets(limit=3) == [0, 1, 2]
    assert len(audit.as_dict(limit=100)["gap_offsets"]) == 100


def test_no_commit_claims_nothing() -> None:
    audit = PartitionAudit(ORIGIN, start=4, end=None)
    assert not audit.truncated and audit.read_to == 4 and audit.records == 0


def test_checkpoint_carries_open_gaps_until_they_close() -> None:
    first = PartitionAudit(ORIGIN, start=0, end=3)
    first.add(
        [RecordFacts(0, "act", A), RecordFacts(1, "act", B), RecordFacts(2, "undecodable")], {A: "applied"}, set()
    )
    cp = Checkpoint()
    cp.advance([first])
    assert cp.verified_to[ORIGIN] == 3
    assert [g.offset for g in cp.open_gaps[ORIGIN]] == [1, 2]
    restored = Checkpoint.from_json(json.loads(json.dumps(cp.to_json())))
    assert restored == cp

    # The next run starts at 3; the open gaps are checked again: B was applied since (e.g. replayed), 2 is not.
    second = PartitionAudit(ORIGIN, start=restored.verified_to[ORIGIN], end=4)
    second.add(restored.open_gaps[ORIGIN], {B: "applied"}, set())
    second.add([RecordFacts(3, "skip")], {}, set())
    assert second.gap_offsets() == [2] and second.read_to == 4 and not second.truncated
    restored.advance([second])
    assert restored.verified_to[ORIGIN] == 4 and [g.offset for g in restored.open_gaps[ORIGIN]] == [2]


def test_gauge_values_sum_partitions_per_group_and_topic() -> None:
    audits = [PartitionAudit(Origin("g", "t", p), 0, 2) for p in range(3)] + [PartitionAudit(Origin("g", "u", 0), 0, 1)]
    audits[0].add([RecordFacts(0, "act", A)], {}, set())
    audits[2].add([RecordFacts(0, "act", B), RecordFacts(1, "act", C)], {}, set())
    assert gaps_by_group_topic(audits) == {("g", "t"): 3, ("g", "u"): 0}
    assert total_gaps(audits) == 3
    registry = CollectorRegistry()
    publish_gaps(completeness_gauge(registry), audits)
    assert registry.get_sample_value("karya_completeness_gaps", {"group": "g", "topic": "t"}) == 3
    assert registry.get_sample_value("karya_completeness_gaps", {"group": "g", "topic": "u"}) == 0


async def _handler(conn: AsyncConnection, events: Sequence[InboundEvent]) -> None:
    return None


def _consumer(event_types: frozenset[str] | None, known_types: frozenset[str] | None = None) -> BatchConsumer:
    return BatchConsumer(
        name="c",
        schema="s",
        engine=make_engine("postgresql+asyncpg://x@127.0.0.1:1/x", pool_size=1),  # never connected
        handler=_handler,
        settings=KafkaSettings(bootstrap_servers="127.0.0.1:1"),
        metrics=MessagingMetrics(),
        event_types=event_types,
        known_types=known_types,
    )


def _record(offset: int, value: bytes, type_header: str | None = None) -> ConsumerRecord[bytes, bytes]:
    headers = [] if type_header is None else [("karya-event-type", type_header.encode())]
    return ConsumerRecord("orders.events", 0, offset, 0, 0, b"k", value, None, 1, len(value), headers)


def _bytes(type_name: str) -> tuple[uuid.UUID, bytes]:
    envelope = make_envelope(type=type_name, source="karya/tests", subject="tokopedia:1:2", data={})
    return envelope.event_id, envelope.to_bytes()


def test_records_are_classified_by_the_consumers_own_filter() -> None:
    posted = sorted(POSTED_EVENT_TYPES)[0]
    other = "karya.orders.reservation_confirmed.v1"
    ledger = _consumer(POSTED_EVENT_TYPES)
    acted_id, acted = _bytes(posted)
    _, ignored = _bytes(other)
    assert classify_record(ledger, _record(1, acted, posted)) == RecordFacts(1, "act", acted_id)
    assert classify_record(ledger, _record(2, ignored, other)).kind == "skip"  # by its header
    assert classify_record(ledger, _record(3, ignored)).kind == "skip"  # no header: by the envelope's type
    assert classify_record(ledger, _record(4, b"\x00not json")) == RecordFacts(4, "undecodable")
    assert classify_record(ledger, _record(5, b"\x00not json", other)).kind == "skip"  # header says skip: unread
    everything = _consumer(None)
    assert classify_record(everything, _record(6, ignored, other)).kind == "act"


def test_unknown_types_are_acted_on_when_the_consumer_knows_every_type() -> None:
    posted = sorted(POSTED_EVENT_TYPES)[0]
    consumer = _consumer(POSTED_EVENT_TYPES, known_types=POSTED_EVENT_TYPES | {"karya.orders.order_shipped.v1"})
    event_id, unknown = _bytes("karya.nobody.defines_this.v1")
    # Dead-lettered at arrival with an inbox row: the audit expects that row.
    assert classify_record(consumer, _record(1, unknown, "karya.nobody.defines_this.v1")) == RecordFacts(
        1, "act", event_id
    )
    _, shipped = _bytes("karya.orders.order_shipped.v1")
    assert classify_record(consumer, _record(2, shipped)).kind == "skip"
    assert classify_record(consumer, _record(3, _bytes(posted)[1])).kind == "act"


def test_wired_consumers_follow_the_services_wiring() -> None:
    wired = {c.group_id: c for c in wired_consumers("")}
    assert set(wired) == {"karya-orders", "karya-ledger", "karya-gateway-normaliser"}
    orders = wired["karya-orders"]
    assert (orders.schema, set(orders.topics)) == ("orders", {"marketplace.order-events", "ledger.order-events"})
    ledger = wired["karya-ledger"]
    assert (ledger.schema, ledger.name) == ("ledger", "ledger")
    assert set(ledger.topics) == {"orders.events", "marketplace.settlements"}
    assert ledger.consumer._type_names == LEDGER_CONSUMED_TYPES
    assert wired["karya-gateway-normaliser"].schema == "gateway"


@pytest.mark.parametrize(("interval_s", "audits"), [(300.0, True), (0.0, False)])
def test_a_runtime_audits_its_own_consumers_unless_switched_off(interval_s: float, audits: bool) -> None:
    kafka = KafkaSettings(bootstrap_servers="127.0.0.1:1", completeness_audit_interval_s=interval_s)
    runtime = ServiceRuntime(
        name="t", schema="orders", engine=make_engine("postgresql+asyncpg://x@127.0.0.1:1/x"), kafka=kafka
    )
    consumer = runtime.add_consumer(name="t", topics=["a", "b"], handler=_no_handler, description="test")
    assert [(a.group_id, a.topics, a.consumer) for a in runtime.audited] == [("karya-t", ("a", "b"), consumer)]
    assert ("completeness" in runtime.supervisor.names) is audits


async def _no_handler(conn: AsyncConnection, events: Sequence[InboundEvent]) -> None:
    return None


def test_reports_table_and_json() -> None:
    clean = PartitionAudit(Origin("karya-orders", "marketplace.order-events", 0), 0, 2)
    clean.add([RecordFacts(0, "act", A), RecordFacts(1, "skip")], {A: "applied"}, set())
    lossy = PartitionAudit(Origin("karya-orders", "marketplace.order-events", 1), 5, 8)
    lossy.add([RecordFacts(5, "act", B), RecordFacts(6, "act", C), RecordFacts(7, "act", A)], {A: "applied"}, set())
    idle = PartitionAudit(Origin("karya-orders", "marketplace.order-events", 2), 0, None)
    table = render_table([clean, lossy, idle])
    assert "gaps in karya-orders marketplace.order-events/1 at offsets [5, 6]" in table
    assert "5..8" in table and "no commit" in table
    assert table.splitlines()[-1] == "2 gap(s) in 1 partition(s)"
    doc = report_json([clean, lossy, idle])
    assert doc["gaps"] == 2
    assert [p["gap_offsets"] for p in doc["partitions"]] == [[], [5, 6], []]
    assert render_table([clean]).splitlines()[-1] == "no gaps"
