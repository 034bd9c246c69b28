"""Anchors over the segment heads (services/ledger/domain/anchors.py): the hash is the documented one, a periodic
anchor with nothing new is skipped, and every alteration of an anchor or of a head it pins is named."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.ledger.domain.anchors import (
    REASONS,
    ChainAnchor,
    anchor_hash,
    check_anchor,
    heads_of_json,
    heads_to_json,
    plan_anchor,
)
from services.ledger.domain.hashchain import GENESIS_HASH, SegmentHead, heads_root

T = datetime(2026, 12, 3, 7, 0, 0, 123456, tzinfo=UTC)
HEADS = (SegmentHead("s1", 7, "b" * 64), SegmentHead("legacy", 3, "a" * 64), SegmentHead("s0", 0, GENESIS_HASH))
JOURNAL = {3: ("legacy", "a" * 64), 7: ("s1", "b" * 64), 9: ("s1", "c" * 64)}


def test_the_anchor_hash_is_the_documented_serialisation() -> None:
    root = heads_root(HEADS)
    body = json.dumps(["karya-anchor/1", 4, "2026-12-03T07:00:00.123456+00:00", "manual", root], separators=(",", ":"))
    expected = hashlib.sha256(("e" * 64 + "\n" + body).encode()).hexdigest()
    assert anchor_hash("e" * 64, 4, T, "manual", root) == expected
    assert anchor_hash("e" * 64, 4, T.astimezone(), "manual", root) == expected, "the time is taken in UTC"


def test_anchors_chain_and_sort_their_heads() -> None:
    first = plan_anchor(None, HEADS, "interval", T)
    assert first is not None
    assert (first.anchor_no, first.prev_hash, first.heads_root) == (1, GENESIS_HASH, heads_root(HEADS))
    assert [h.segment for h in first.heads] == ["legacy", "s0", "s1"]
    assert heads_to_json(first.heads) == [["legacy", 3, "a" * 64], ["s0", 0, GENESIS_HASH], ["s1", 7, "b" * 64]]
    assert heads_of_json(heads_to_json(HEADS)) == first.heads
    second = plan_anchor(first, [*HEADS[:1], SegmentHead("s1", 9, "c" * 64)], "period_close", T)
    assert second is not None and (second.anchor_no, second.prev_hash) == (2, first.anchor_hash)
    assert check_anchor(first, None, JOURNAL) is None
    assert check_anchor(second, first, JOURNAL) is None


def test_a_periodic_anchor_with_no_head_moved_is_skipped_but_not_a_requested_one() -> None:
    first = plan_anchor(None, HEADS, "interval", T)
    assert first is not None
    later = T + timedelta(minutes=1)
    assert plan_anchor(first, reversed(HEADS), "interval", later) is None
    for reason in REASONS[1:]:
        again = plan_anchor(first, HEADS, reason, later)
        assert again is not None and again.anchor_no == 2 and again.heads_root == first.heads_root
    with pytest.raises(ValueError, match="reason"):
        plan_anchor(first, HEADS, "whenever", later)  # type: ignore[arg-type]


def _chain() -> list[ChainAnchor]:
    first = plan_anchor(None, HEADS, "interval", T)
    assert first is not None
    second = plan_anchor(first, [SegmentHead("s1", 9, "c" * 64), *HEADS[1:]], "manual", T + timedelta(seconds=60))
    assert second is not None
    return [first, second]


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"anchor_no": 3}, "anchor 3 follows anchor 1: anchors removed"),
        ({"prev_hash": "d" * 64}, "anchor 2 does not link to anchor 1"),
        ({"reason": "interval"}, "anchor 2 does not match its hash"),
        ({"taken_at": T}, "anchor 2 does not match its hash"),
        ({"heads_root": "d" * 64}, "anchor 2: its heads do not hash to its heads root"),
        ({"heads": (SegmentHead("legacy", 3, "a" * 64),)}, "anchor 2: its heads do not hash to its heads root"),
    ],
)
def test_an_altered_anchor_is_named(change: dict[str, Any], problem: str) -> None:
    first, second = _chain()
    assert str(check_anchor(dataclasses.replace(second, **change), first, JOURNAL)).startswith(problem)


def _resealed(anchor: ChainAnchor, heads: tuple[SegmentHead, ...]) -> ChainAnchor:
    """``anchor`` with ``heads``, its root and hash recomputed (what someone with the formula would write)."""
    root = heads_root(heads)
    sealed = anchor_hash(anchor.prev_hash, anchor.anchor_no, anchor.taken_at, anchor.reason, root)
    return dataclasses.replace(anchor, heads=heads, heads_root=root, anchor_hash=sealed)


def test_a_head_the_journal_no_longer_has_is_named() -> None:
    first, second = _chain()
    assert "entry 9, the head of segment s1 it pins, is GONE" in str(check_anchor(second, first, {3: JOURNAL[3]}))
    altered = {**JOURNAL, 9: ("s1", "f" * 64)}
    assert "entry 9, the head of segment s1 it pins, DIFFERS" in str(check_anchor(second, first, altered))
    moved = {**JOURNAL, 9: ("s2", "c" * 64)}
    assert "is in segment s2 now" in str(check_anchor(second, first, moved))
    back = _resealed(second, (HEADS[1], HEADS[2], SegmentHead("s1", 3, "a" * 64)))
    assert "the head of segment s1 went back to entry 3" in str(check_anchor(back, first, JOURNAL))
    not_genesis = _resealed(first, (HEADS[1], SegmentHead("s0", 0, "f" * 64), HEADS[0]))
    assert "segment s0 at no entry has a hash other than the genesis" in str(check_anchor(not_genesis, None, JOURNAL))


def test_malformed_stored_heads_are_refused() -> None:
    for stored in ({"s0": 1}, [["s0", 1]], [["s0", True, "x"]], [[1, 1, "x"]], [["s0", 1, 2]]):
        with pytest.raises(ValueError):
            heads_of_json(stored)
