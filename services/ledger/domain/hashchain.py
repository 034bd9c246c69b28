"""Tamper evidence: a SHA-256 hash chain over committed journal entries in commit order.

``hash_n = sha256(hash_{n-1} + "\\n" + serialise(entry_n))`` with ``hash_{-1} =`` :data:`GENESIS_HASH`.
Changing, inserting, deleting or reordering any committed entry breaks the chain from that entry on; the head
hash, published outside the database, also pins the last entries.

The serialisation (:func:`serialise_entry`) is canonical JSON (see
:mod:`services.ledger.domain.canonical`) of a *list* in this fixed order::

    ["karya-journal/1", sequence, posting_key, request_hash, kind, effective_at, recorded_at,
     policy_ref, reverses, order_key, batch_id, source_event, memo,
     [[account, side, amount], ...]]

with the lines sorted by (account, side, amount), amounts as JSON integers and times as UTC ISO strings with
microseconds. The stored chain hash itself is not part of the serialisation.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime

from services.ledger.domain.accounts import Side
from services.ledger.domain.canonical import canonical_json, dump_canonical, sha256_hex, utc_iso
from services.ledger.domain.journal import EntryKind, JournalEntry

__all__ = [
    "FORMAT_TAG",
    "GENESIS_HASH",
    "CommittedEntry",
    "chain_hash",
    "seal_chain",
    "serialise_entry",
    "verify_chain",
]

#: The hash before the first entry.
GENESIS_HASH = "0" * 64
#: First element of every serialised entry; bump it if the serialisation ever changes.
FORMAT_TAG = "karya-journal/1"


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
    return [
        FORMAT_TAG,
        committed.sequence,
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
