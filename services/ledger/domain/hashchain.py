"""Tamper evidence: SHA-256 hash chains over committed journal entries, one chain per *segment*, in commit order.

Within a segment, ``hash_n = sha256(hash_{n-1} + "\\n" + serialise(entry_n))`` with ``hash_{-1} =``
:data:`GENESIS_HASH`. Changing, inserting, deleting or reordering any committed entry breaks its segment's chain from
that entry on. Segments exist so that postings of different segments never wait on each other (one head row per
segment, ``ledger.chain_segments``); an entry's segment follows from its order key (:func:`segment_of`), so all the
entries of one order are in one chain, and the segment is the Kafka partition the order's events arrive on.
Entries posted before segments existed form the segment :data:`LEGACY_SEGMENT`, in the format ``karya-journal/1``.

The heads of all segments are pinned together by **anchors** (:func:`heads_root`, ``ledger.chain_anchors``): a hash
over every segment's (last sequence, last hash), itself chained anchor to anchor. An anchor's hash, published outside
the database, pins every entry of every segment up to the heads it names.

The serialisation (:func:`serialise_entry`) is canonical JSON (see
:mod:`services.ledger.domain.canonical`) of a *list* in this fixed order::

    ["karya-journal/2", sequence, segment, posting_key, request_hash, kind, effective_at, recorded_at,
     policy_ref, reverses, order_key, batch_id, source_event, memo,
     [[account, side, amount], ...]]

(``karya-journal/1``, the legacy segment's, has no ``segment``) with the lines sorted by (account, side, amount),
amounts as JSON integers and times as UTC ISO strings with microseconds. The stored chain hash itself is not part of
the serialisation. ``sequence`` is unique over the whole journal and increases along each segment's chain (it is
drawn while the segment's head is locked), but it is not commit order across segments.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from functools import lru_cache

from infra.messaging.partitioning import partition_for_key
from services.ledger.domain.accounts import Side
from services.ledger.domain.canonical import canonical_json, dump_canonical, sha256_hex, utc_iso
from services.ledger.domain.journal import EntryKind, JournalEntry

__all__ = [
    "FORMAT_TAG",
    "GENESIS_HASH",
    "LEGACY_FORMAT_TAG",
    "LEGACY_SEGMENT",
    "SEGMENTS",
    "CommittedEntry",
    "SegmentHead",
    "chain_hash",
    "heads_root",
    "seal_chain",
    "segment_of",
    "serialise_entry",
    "verify_chain",
]

#: The hash before the first entry.
GENESIS_HASH = "0" * 64
#: First element of every serialised entry of a segment; bump it if the serialisation ever changes.
FORMAT_TAG = "karya-journal/2"
#: First element of a serialised entry of :data:`LEGACY_SEGMENT` (no segment in it).
LEGACY_FORMAT_TAG = "karya-journal/1"
#: The segment of every entry posted before the journal had segments (migration ``ledger_0014``).
LEGACY_SEGMENT = "legacy"
#: How many segments new entries are spread over: the default partition count of the ledger's input topics
#: (``KARYA_KAFKA_PARTITIONS``), so an order's segment is the partition its events arrive on and two ledger processes
#: (which own disjoint partitions) post to disjoint segments. Changing it is safe — a segment is a label, any entry
#: may be in any segment — it only changes which postings can wait on each other.
SEGMENTS = 6
#: First element of the serialised heads an anchor commits to (:func:`heads_root`).
HEADS_TAG = "karya-heads/1"


@lru_cache(maxsize=1 << 16)  # an order's entries are posted in several batches; murmur2 in Python is ~4 µs a key
def segment_of(key: str, segments: int = SEGMENTS) -> str:
    """The segment of an entry whose order key (else posting key) is ``key``: ``s<k>``, ``k`` the partition Kafka's
    default partitioner gives ``key`` among ``segments`` (the order's events are keyed by the order key)."""
    return f"s{partition_for_key(key.encode(), segments)}"


@dataclass(frozen=True, slots=True)
class SegmentHead:
    """The last entry of one segment's chain (sequence 0 and :data:`GENESIS_HASH` before its first)."""

    segment: str
    sequence: int
    hash: str


def heads_root(heads: Iterable[SegmentHead]) -> str:
    """SHA-256 hex of the heads of every segment, sorted by segment: ``"karya-heads/1"`` then one line
    ``"<segment> <sequence> <hash>"`` per segment, joined by newlines (the view ``ledger.chain_head`` computes the
    same in SQL)."""
    lines = [HEADS_TAG, *(f"{h.segment} {h.sequence} {h.hash}" for h in sorted(heads, key=lambda h: h.segment))]
    return sha256_hex("\n".join(lines).encode("utf-8"))


@dataclass(frozen=True, slots=True)
class CommittedEntry:
    """A journal entry as committed: its position in the chain, when it was recorded, its source event.

    ``chain_hash`` is the stored hash (empty until sealed); it is not part of the serialisation.
    """

    sequence: int
    entry: JournalEntry
    recorded_at: datetime
    source_event: str | None = None
    chain_hash: str = ""
    segment: str = LEGACY_SEGMENT


def serialise_entry(committed: CommittedEntry) -> bytes:
    """The canonical bytes of a committed entry (fixed field order, lines sorted)."""
    entry = committed.entry
    lines: list[list[object]] = []
    for line in entry.lines:
        account, side, amount = line.account, line.side, line.amount
        if type(account) is not str or type(side) is not Side or type(amount) is not int:
            return _serialise_converting(committed)
        lines.append([account, _SIDE_VALUE[side], amount])
    lines.sort()  # lists compare as the reference's (account, side, amount) tuples
    kind = entry.kind
    if type(kind) is not EntryKind or type(committed.sequence) is not int:
        return _serialise_converting(committed)
    for value in (
        entry.posting_key,
        entry.request_hash,
        entry.memo,
        entry.policy_ref,
        entry.reverses,
        entry.order_key,
        entry.batch_id,
        committed.source_event,
    ):
        if value is not None and type(value) is not str:
            return _serialise_converting(committed)
    # Every value is plain JSON data (str, int, None) already: to_canonical would return it unchanged.
    return dump_canonical(_entry_fields(committed, _KIND_VALUE[kind], lines))


_SIDE_VALUE = {side: side.value for side in Side}
_KIND_VALUE = {kind: kind.value for kind in EntryKind}


def _serialise_converting(committed: CommittedEntry) -> bytes:
    """:func:`serialise_entry` through :func:`canonical_json` (for values of unusual types: str or int subclasses)."""
    entry = committed.entry
    lines = sorted((line.account, line.side.value, line.amount) for line in entry.lines)
    return canonical_json(_entry_fields(committed, entry.kind.value, [list(line) for line in lines]))


def _entry_fields(committed: CommittedEntry, kind: object, lines: object) -> list[object]:
    """The serialised fields in their fixed order (see the module docstring)."""
    entry = committed.entry
    head: list[object] = (
        [LEGACY_FORMAT_TAG, committed.sequence]
        if committed.segment == LEGACY_SEGMENT
        else [FORMAT_TAG, committed.sequence, committed.segment]
    )
    return [
        *head,
        entry.posting_key,
        entry.request_hash,
        kind,
        utc_iso(entry.effective_at),
        utc_iso(committed.recorded_at),
        entry.policy_ref,
        entry.reverses,
        entry.order_key,
        entry.batch_id,
        committed.source_event,
        entry.memo,
        lines,
    ]


def chain_hash(prev_hash: str, committed: CommittedEntry) -> str:
    """SHA-256 hex of ``prev_hash``, a newline and :func:`serialise_entry` of ``committed``."""
    return sha256_hex(prev_hash.encode("ascii") + b"\n" + serialise_entry(committed))


def verify_chain(entries: Iterable[CommittedEntry], start_hash: str = GENESIS_HASH) -> int | None:
    """Recompute the chain over ``entries`` (in commit order); the index of the first broken link, or None.

    A link is broken when the recomputed hash differs from the stored ``chain_hash`` (the entry or an earlier
    one was changed, inserted, deleted or reordered). ``start_hash`` lets a verifier resume from an anchored
    hash instead of the genesis.
    """
    previous = start_hash
    for index, committed in enumerate(entries):
        expected = chain_hash(previous, committed)
        if expected != committed.chain_hash:
            return index
        previous = expected
    return None


def seal_chain(entries: Iterable[CommittedEntry], start_hash: str = GENESIS_HASH) -> list[CommittedEntry]:
    """Copies of ``entries`` with ``chain_hash`` set, chained from ``start_hash``; the last is the head."""
    sealed: list[CommittedEntry] = []
    previous = start_hash
    for committed in entries:
        previous = chain_hash(previous, committed)
        sealed.append(replace(committed, chain_hash=previous))
    return sealed
