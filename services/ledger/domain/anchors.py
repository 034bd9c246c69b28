"""Anchors: one hash over the heads of every segment's chain, chained anchor to anchor (``ledger.chain_anchors``).

Each segment's chain (:mod:`services.ledger.domain.hashchain`) pins its own entries; nothing in one segment pins
another. An anchor does: it records every segment's head (last sequence and hash) at one moment, their root
(:func:`~services.ledger.domain.hashchain.heads_root`), and the hash of the anchor before it::

    anchor_hash_n = sha256(anchor_hash_{n-1} + "\\n" + canonical_json(
        ["karya-anchor/1", anchor_no, taken_at, reason, heads_root]))

with ``anchor_hash_0 =`` :data:`~services.ledger.domain.hashchain.GENESIS_HASH` and ``taken_at`` a UTC ISO string
with microseconds (:func:`~services.ledger.domain.canonical.utc_iso`). So one anchor hash, kept outside the database,
pins every anchor before it, every head those anchors name and, through each head's chain, every entry up to it.

:func:`plan_anchor` decides the next anchor (none for a periodic one when no head moved since the last);
:func:`check_anchor` finds what is wrong with one anchor given the one before it and the journal's hash at each
head it names.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from services.ledger.domain.canonical import canonical_json, sha256_hex, utc_iso
from services.ledger.domain.hashchain import GENESIS_HASH, SegmentHead, heads_root

__all__ = [
    "ANCHOR_TAG",
    "REASONS",
    "AnchorReason",
    "ChainAnchor",
    "anchor_hash",
    "check_anchor",
    "heads_of_json",
    "heads_to_json",
    "plan_anchor",
]

#: First element of every serialised anchor; bump it if the serialisation ever changes.
ANCHOR_TAG = "karya-anchor/1"
AnchorReason = Literal["interval", "period_close", "manual"]
#: Why an anchor is taken: the ledger process's periodic one, a period close, a person (``karya ledger anchor``).
REASONS: tuple[AnchorReason, ...] = ("interval", "period_close", "manual")


@dataclass(frozen=True, slots=True)
class ChainAnchor:
    """One anchor as stored: its number, when and why it was taken, the heads it commits to (sorted by segment),
    their root, the previous anchor's hash and its own."""

    anchor_no: int
    taken_at: datetime
    reason: str
    heads: tuple[SegmentHead, ...]
    heads_root: str
    prev_hash: str
    anchor_hash: str


def anchor_hash(prev_hash: str, anchor_no: int, taken_at: datetime, reason: str, root: str) -> str:
    """SHA-256 hex of ``prev_hash``, a newline and the canonical JSON of the anchor's fields (module docstring)."""
    body = canonical_json([ANCHOR_TAG, anchor_no, utc_iso(taken_at), reason, root])
    return sha256_hex(prev_hash.encode("ascii") + b"\n" + body)


def heads_to_json(heads: Iterable[SegmentHead]) -> list[list[object]]:
    """The heads as stored (``chain_anchors.heads``): ``[[segment, sequence, hash], ...]`` sorted by segment."""
    return [[h.segment, h.sequence, h.hash] for h in sorted(heads, key=lambda h: h.segment)]


def heads_of_json(stored: object) -> tuple[SegmentHead, ...]:
    """The heads of a stored ``chain_anchors.heads`` value, in their stored order; ``ValueError`` if malformed."""
    if not isinstance(stored, list):
        raise ValueError("heads is not a list")
    heads = []
    for item in stored:
        if not (isinstance(item, list) and len(item) == 3):
            raise ValueError(f"head {item!r} is not [segment, sequence, hash]")
        segment, sequence, hash_ = item
        if not isinstance(segment, str) or isinstance(sequence, bool) or not isinstance(sequence, int):
            raise ValueError(f"head {item!r} is not [segment, sequence, hash]")
        if not isinstance(hash_, str):
            raise ValueError(f"head {item!r} is not [segment, sequence, hash]")
        heads.append(SegmentHead(segment, sequence, hash_))
    return tuple(heads)


def plan_anchor(
    last: ChainAnchor | None, heads: Iterable[SegmentHead], reason: AnchorReason, now: datetime
) -> ChainAnchor | None:
    """The anchor after ``last`` committing to ``heads`` at ``now``; None for an ``interval`` anchor when the heads
    are the last anchor's (nothing was posted since: a periodic anchor would pin nothing new)."""
    if reason not in REASONS:
        raise ValueError(f"an anchor's reason is one of {', '.join(REASONS)}, not {reason!r}")
    ordered = tuple(sorted(heads, key=lambda h: h.segment))
    if reason == "interval" and last is not None and last.heads == ordered:
        return None
    number = 1 if last is None else last.anchor_no + 1
    prev = GENESIS_HASH if last is None else last.anchor_hash
    root = heads_root(ordered)
    return ChainAnchor(number, now, reason, ordered, root, prev, anchor_hash(prev, number, now, reason, root))


def check_anchor(
    anchor: ChainAnchor, previous: ChainAnchor | None, journal: Mapping[int, tuple[str, str]]
) -> str | None:
    """What is wrong with ``anchor`` (None: nothing), ``previous`` the anchor before it (None for the first).

    ``journal`` maps the sequence of every head ``anchor`` names to that entry's (segment, chain hash) today; a
    sequence missing from it is an entry gone. Checked: the numbering, the link to ``previous``, its own hash, the
    root of its heads, that no segment's head went back since ``previous``, and each head against the journal (a
    head at sequence 0 is a segment with no entry yet: the genesis hash)."""
    expected_no = 1 if previous is None else previous.anchor_no + 1
    no = anchor.anchor_no
    if no != expected_no:
        return f"anchor {no} follows anchor {expected_no - 1}: anchors removed or renumbered"
    prev = GENESIS_HASH if previous is None else previous.anchor_hash
    if anchor.prev_hash != prev:
        return f"anchor {no} does not link to anchor {no - 1} (its previous hash is not that anchor's hash)"
    if anchor.heads_root != heads_root(anchor.heads):
        return f"anchor {no}: its heads do not hash to its heads root (a head or the root was altered)"
    if anchor.anchor_hash != anchor_hash(prev, no, anchor.taken_at, anchor.reason, anchor.heads_root):
        return f"anchor {no} does not match its hash (its time, reason, root or hash was altered)"
    before = {h.segment: h.sequence for h in previous.heads} if previous is not None else {}
    for head in anchor.heads:
        if head.sequence < before.get(head.segment, 0):
            return f"anchor {no}: the head of segment {head.segment} went back to entry {head.sequence}"
        problem = _head_problem(head, journal)
        if problem is not None:
            return f"anchor {no}: {problem}"
    return None


def _head_problem(head: SegmentHead, journal: Mapping[int, tuple[str, str]]) -> str | None:
    """What is wrong with one anchored head against the journal today (None: nothing)."""
    seg, seq = head.segment, head.sequence
    if seq == 0:
        return None if head.hash == GENESIS_HASH else f"segment {seg} at no entry has a hash other than the genesis"
    found = journal.get(seq)
    if found is None:
        return f"entry {seq}, the head of segment {seg} it pins, is GONE from the journal"
    segment, stored = found
    if segment != seg:
        return f"entry {seq}, the head of segment {seg} it pins, is in segment {segment} now"
    if stored != head.hash:
        return (
            f"entry {seq}, the head of segment {seg} it pins, DIFFERS from it (anchored hash {head.hash}, the journal "
            f"has {stored}): the entry or one before it in its segment was altered after the anchor"
        )
    return None
