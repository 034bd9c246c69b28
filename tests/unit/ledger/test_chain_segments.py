"""Chain segments in the pure domain: which segment an entry is in, the format of a segment's entries, and the root
hash of the heads that anchors commit to."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from infra.messaging.partitioning import partition_for_key
from services.ledger.domain.accounts import Side
from services.ledger.domain.canonical import sha256_hex
from services.ledger.domain.hashchain import (
    GENESIS_HASH,
    LEGACY_SEGMENT,
    SEGMENTS,
    CommittedEntry,
    SegmentHead,
    chain_hash,
    heads_root,
    segment_of,
    serialise_entry,
)
from services.ledger.domain.journal import EntryKind, JournalEntry, Line

RECORDED = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
ENTRY = JournalEntry(
    posting_key="shopee:shop-cpn:1:completed",
    request_hash="ab" * 32,
    kind=EntryKind.SALE_COMPLETED,
    memo="order completed",
    effective_at=datetime(2026, 2, 1, 3, tzinfo=UTC),
    lines=(
        Line("asset:marketplace_receivable:cipinang:shopee", Side.DEBIT, 150_000),
        Line("clearing:undistributed_proceeds:cipinang", Side.CREDIT, 150_000),
    ),
    order_key="shopee:shop-cpn:1",
)


@given(st.text(min_size=1, max_size=60))
def test_an_orders_segment_is_the_partition_its_events_arrive_on(key: str) -> None:
    segment = segment_of(key)
    assert segment == f"s{partition_for_key(key.encode(), SEGMENTS)}"
    assert segment in {f"s{k}" for k in range(SEGMENTS)}


def test_a_segments_entry_names_its_segment_and_a_legacy_entry_keeps_the_first_format() -> None:
    legacy = serialise_entry(CommittedEntry(7, ENTRY, RECORDED, "evt-0"))
    assert legacy.startswith(b'["karya-journal/1",7,"shopee:shop-cpn:1:completed",')
    in_s3 = serialise_entry(CommittedEntry(7, ENTRY, RECORDED, "evt-0", "", "s3"))
    assert in_s3.startswith(b'["karya-journal/2",7,"s3","shopee:shop-cpn:1:completed",')
    assert in_s3.replace(b'"karya-journal/2",7,"s3",', b'"karya-journal/1",7,') == legacy


def test_moving_an_entry_to_another_segment_changes_its_hash() -> None:
    a = CommittedEntry(7, ENTRY, RECORDED, None, "", "s1")
    b = dataclasses.replace(a, segment="s2")
    assert chain_hash(GENESIS_HASH, a) != chain_hash(GENESIS_HASH, b)
    assert chain_hash(GENESIS_HASH, a) != chain_hash(GENESIS_HASH, dataclasses.replace(a, segment=LEGACY_SEGMENT))


def test_the_heads_root_is_pinned_and_ignores_order() -> None:
    heads = [SegmentHead("s1", 12, "b" * 64), SegmentHead("legacy", 0, GENESIS_HASH), SegmentHead("s0", 9, "a" * 64)]
    expected = sha256_hex(
        b"karya-heads/1\nlegacy 0 " + GENESIS_HASH.encode() + b"\ns0 9 " + b"a" * 64 + b"\ns1 12 " + b"b" * 64
    )
    assert heads_root(heads) == expected == heads_root(reversed(heads))


@given(st.dictionaries(st.sampled_from([f"s{k}" for k in range(SEGMENTS)]), st.integers(0, 10**6), min_size=1))
def test_any_head_moving_changes_the_root(sequences: dict[str, int]) -> None:
    heads = [SegmentHead(s, q, sha256_hex(f"{s}:{q}".encode())) for s, q in sequences.items()]
    root = heads_root(heads)
    for i, head in enumerate(heads):
        moved = dataclasses.replace(head, sequence=head.sequence + 1)
        assert heads_root([*heads[:i], moved, *heads[i + 1 :]]) != root
