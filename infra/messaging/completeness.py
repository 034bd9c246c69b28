"""The completeness rule, pure: every consumed record left a trace in the database.

A consumer group's committed offset says "everything before this was applied". The rule checked here: each
record before it is either *skipped* (its type is one the consumer does not act on: no inbox row by design),
*applied* (an inbox row of the consumer holds its event id — a second copy of the same event at a later offset
matches the same row), or *dead-lettered* (its inbox row says so, or a dead letter names its topic, partition and
offset — an undecodable record has no event id). Anything else is a **gap**: a record the group committed past
without applying it, i.e. lost.

The Kafka and database reading lives in :mod:`infra.messaging.completeness_audit`; this module only compares.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from uuid import UUID

RecordKind = Literal["act", "skip", "undecodable"]
"""What the consumer does with a record: acts on it (inbox row expected), skips it, or dead-letters it."""

MAX_LISTED_GAPS = 1000
"""Gap offsets listed per partition in a report (all of them are counted)."""


@dataclass(frozen=True, slots=True)
class RecordFacts:
    """What the audit needs of one record: its offset, what the consumer does with it, and its event id."""

    offset: int
    kind: RecordKind
    event_id: UUID | None = None


@dataclass(frozen=True, slots=True)
class Origin:
    """One partition of one consumer group's topics."""

    group: str
    topic: str
    partition: int


@dataclass
class PartitionAudit:
    """The audit of one partition for one group: ``[start, end)`` is the range checked, ``end`` the committed
    offset (None: the group has committed nothing here, so nothing is claimed applied).

    ``read_to`` is the offset after the last record read (equal to ``end`` unless the read was cut short by a
    bound or a stalled fetch: then ``truncated``). Records before ``start`` that were gaps in an earlier run (a
    checkpoint) are checked again and counted with this run's records.
    """

    origin: Origin
    start: int
    end: int | None
    read_to: int = 0
    records: int = 0
    applied: int = 0
    skipped: int = 0
    dead_lettered: int = 0
    gap_count: int = 0
    gaps: list[RecordFacts] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.read_to = max(self.read_to, self.start)

    @property
    def truncated(self) -> bool:
        """True when records of ``[start, end)`` were left unread."""
        return self.end is not None and self.read_to < self.end

    def add(self, facts: Iterable[RecordFacts], inbox: Mapping[UUID, str], dead_offsets: Container[int]) -> None:
        """Classify records against the consumer's inbox (event id → status) and dead-letter offsets."""
        for f in facts:
            self.records += 1
            if f.offset >= self.start:
                self.read_to = max(self.read_to, f.offset + 1)
            outcome = outcome_of(f, inbox, dead_offsets)
            if outcome == "skipped":
                self.skipped += 1
            elif outcome == "applied":
                self.applied += 1
            elif outcome == "dead_lettered":
                self.dead_lettered += 1
            else:
                self.gap_count += 1
                self.gaps.append(f)

    def gap_offsets(self, limit: int = MAX_LISTED_GAPS) -> list[int]:
        """The first ``limit`` gap offsets, ascending."""
        return sorted(g.offset for g in self.gaps)[:limit]

    def as_dict(self, limit: int = MAX_LISTED_GAPS) -> dict[str, Any]:
        """A JSON-able row: the table's columns plus the (bounded) gap offsets."""
        return {
            "group": self.origin.group,
            "topic": self.origin.topic,
            "partition": self.origin.partition,
            "start": self.start,
            "end": self.end,
            "read_to": self.read_to,
            "truncated": self.truncated,
            "records": self.records,
            "applied": self.applied,
            "skipped": self.skipped,
            "dead_lettered": self.dead_lettered,
            "gaps": self.gap_count,
            "gap_offsets": self.gap_offsets(limit),
        }


Outcome = Literal["skipped", "applied", "dead_lettered", "gap"]


def outcome_of(f: RecordFacts, inbox: Mapping[UUID, str], dead_offsets: Container[int]) -> Outcome:
    """The fate of one record by the completeness rule (see the module docstring)."""
    if f.kind == "skip":
        return "skipped"
    if f.kind == "act" and f.event_id is not None and f.event_id in inbox:
        return "dead_lettered" if inbox[f.event_id] == "dead_lettered" else "applied"
    if f.offset in dead_offsets:
        return "dead_lettered"
    return "gap"


@dataclass
class Checkpoint:
    """Where the next audit of each partition starts, and the gaps still open before that point.

    Everything before ``verified_to`` was read and is complete except the records in ``open_gaps``, which are
    checked again (against the database only) by every later run until they are applied or dead-lettered.
    """

    verified_to: dict[Origin, int] = field(default_factory=dict)
    open_gaps: dict[Origin, list[RecordFacts]] = field(default_factory=dict)

    def advance(self, audits: Iterable[PartitionAudit]) -> None:
        """Record what ``audits`` verified."""
        for a in audits:
            self.verified_to[a.origin] = max(self.verified_to.get(a.origin, 0), a.read_to)
            self.open_gaps[a.origin] = sorted(a.gaps, key=lambda g: g.offset)

    def to_json(self) -> dict[str, Any]:
        """JSON-able form (for a checkpoint file)."""
        return {
            "partitions": [
                {
                    "group": o.group,
                    "topic": o.topic,
                    "partition": o.partition,
                    "verified_to": to,
                    "open_gaps": [
                        [g.offset, g.kind, None if g.event_id is None else str(g.event_id)]
                        for g in self.open_gaps.get(o, [])
                    ],
                }
                for o, to in sorted(
                    self.verified_to.items(), key=lambda kv: (kv[0].group, kv[0].topic, kv[0].partition)
                )
            ]
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Checkpoint:
        """Inverse of :meth:`to_json`."""
        cp = cls()
        for p in doc.get("partitions", []):
            origin = Origin(str(p["group"]), str(p["topic"]), int(p["partition"]))
            cp.verified_to[origin] = int(p["verified_to"])
            cp.open_gaps[origin] = [
                RecordFacts(int(off), kind, None if eid is None else UUID(eid)) for off, kind, eid in p["open_gaps"]
            ]
        return cp


def _order(o: Origin) -> tuple[str, str, int]:
    return (o.group, o.topic, o.partition)


def gaps_by_group_topic(audits: Sequence[PartitionAudit]) -> dict[tuple[str, str], int]:
    """Gap counts summed over partitions, per (group, topic) — the labels of ``karya_completeness_gaps``."""
    totals: Counter[tuple[str, str]] = Counter()
    for a in audits:
        totals[(a.origin.group, a.origin.topic)] += a.gap_count
    return dict(totals)


def total_gaps(audits: Sequence[PartitionAudit]) -> int:
    """Every gap found."""
    return sum(a.gap_count for a in audits)
