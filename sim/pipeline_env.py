"""A pipeline to drive with the seeded load: a fresh database and topics of its own, and that load encoded for them.

The benchmark (``bench``) and the fault experiments (``faults``) both run the real orders and ledger services
against such an environment; each starts and watches the service processes in its own way. Neither owns this
module, so neither tool depends on the other.
"""

from __future__ import annotations

import os
from array import array
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from itertools import accumulate, islice
from typing import overload

import yaml

from infra.db.engine import make_engine
from infra.db.migrate import upgrade_to_head_async
from infra.db.roles import bootstrap_database, drop_database, passwords_from_env, role_urls
from infra.db.unit_of_work import UnitOfWork
from infra.environment import ROOT
from infra.messaging.admin import delete_topics_with_prefix, ensure_topics
from infra.messaging.topics import BASE_NAMES, topic_name
from services.ledger.adapters.policy_repo import store_policies
from services.ledger.app import SCHEMA as LEDGER_SCHEMA
from services.ledger.domain.policy_file import parse_policies
from services.orders.adapters.catalogue_repo import load_catalogue as load_catalogue_db
from services.orders.app import SCHEMA as ORDERS_SCHEMA
from services.orders.catalogue import Catalogue, load_catalogue
from sim.loadgen import Message, interleave, lifecycles

CATALOGUE = ROOT / "deploy" / "demo" / "catalogue.yaml"
POLICIES = ROOT / "deploy" / "demo" / "policies.yaml"
PARTITIONS = 6
"""Partitions of every topic of a run."""


def scaled_catalogue(orders: int) -> Catalogue:
    """The demo catalogue with batches large enough that stock never runs out during a run of ``orders``."""
    base = load_catalogue(CATALOGUE)
    scale = max(1, (orders * 3) // 300 + 1)
    return replace(base, batches=tuple(replace(b, produced_qty=b.produced_qty * scale) for b in base.batches))


@dataclass
class PipelineEnv:
    """One run's database and topic prefix on the PostgreSQL and Kafka of the environment
    (``KARYA_DB_ADMIN_URL``, ``KAFKA_BOOTSTRAP_SERVERS``)."""

    database: str
    prefix: str
    service_url: str = ""
    gateway_url: str = ""

    async def setup(self, orders: int) -> None:
        """Fresh database with roles, migrations, catalogue and policies; the run's topics."""
        admin = os.environ["KARYA_DB_ADMIN_URL"]
        await drop_database(admin, self.database)
        passwords = passwords_from_env()
        await bootstrap_database(admin, passwords, self.database)
        urls = role_urls(admin, passwords, self.database)
        await upgrade_to_head_async(urls.migrator)
        self.service_url = urls.service
        self.gateway_url = urls.gateway
        engine = make_engine(self.service_url, pool_size=1)
        try:
            async with engine.begin() as c:
                await load_catalogue_db(UnitOfWork(c, ORDERS_SCHEMA), scaled_catalogue(orders), "seeded-load")
                await store_policies(
                    UnitOfWork(c, LEDGER_SCHEMA), parse_policies(yaml.safe_load(POLICIES.read_text()), str(POLICIES))
                )
        finally:
            await engine.dispose()
        topics = [topic_name(b, self.prefix) for b in BASE_NAMES]
        await ensure_topics(os.environ["KAFKA_BOOTSTRAP_SERVERS"], topics, PARTITIONS)

    async def delete_topics(self) -> None:
        """Delete the run's topics: a broker that keeps every past run's partitions spends CPU on them later."""
        await delete_topics_with_prefix(os.environ["KAFKA_BOOTSTRAP_SERVERS"], self.prefix)


def messages_for(orders: int, seed: int, run_id: str) -> list[Message]:
    """The run's messages in publish order."""
    return interleave(list(lifecycles(load_catalogue(CATALOGUE), orders, seed=seed, run_id=run_id)))


@dataclass(frozen=True, slots=True)
class Wire:
    """One event as the marketplace side would hand it to Kafka: topic, key and the encoded envelope."""

    topic: str
    key: bytes
    value: bytes
    event_id: str


def encode_all(prefix: str, messages: list[Message]) -> list[Wire]:
    """Serialise the run's events before the clock starts: encoding them is the producer's work, not the
    pipeline's, and doing it inside a timed loop took CPU from the services on a 2-core machine."""
    return [
        Wire(topic_name(m.topic, prefix), m.envelope.subject.encode(), m.envelope.to_bytes(), str(m.envelope.event_id))
        for m in messages
    ]


class PackedWires(Sequence[Wire]):
    """Encoded events packed a chunk at a time into one ``bytes`` per field (and their offsets); each
    :class:`Wire` is made when it is read.

    Kept as a list, a run's ``Wire`` objects took ~4.5 KB of memory per event, four times the ~1 KB they hold
    (20,000 orders, 92,746 events: 523 MB resident): their small strings and bytes, made among the encoder's
    short-lived objects, pinned the allocator's arenas, so a million orders needed more than this machine's 23 GB."""

    def __init__(self) -> None:
        self._chunks: list[_Chunk] = []
        self._ends: list[int] = []  # the index after each chunk's last wire

    def extend(self, wires: Sequence[Wire]) -> None:
        """Append ``wires`` as one packed chunk."""
        if wires:
            self._chunks.append(_Chunk.pack(wires))
            self._ends.append(len(self) + len(wires))

    def __len__(self) -> int:
        return self._ends[-1] if self._ends else 0

    @overload
    def __getitem__(self, index: int) -> Wire: ...

    @overload
    def __getitem__(self, index: slice) -> list[Wire]: ...

    def __getitem__(self, index: int | slice) -> Wire | list[Wire]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        size = len(self)
        if index < 0:
            index += size
        if not 0 <= index < size:
            raise IndexError(index)
        chunk = bisect_right(self._ends, index)
        return self._chunks[chunk].wire(index - (self._ends[chunk - 1] if chunk else 0))

    def __iter__(self) -> Iterator[Wire]:
        for chunk in self._chunks:
            yield from (chunk.wire(i) for i in range(len(chunk.topic_of)))


@dataclass(frozen=True, slots=True)
class _Column:
    """Byte strings stored end to end: ``blob`` and the offset where each one ends."""

    blob: bytes
    ends: array[int]

    @classmethod
    def pack(cls, items: Sequence[bytes]) -> _Column:
        return cls(b"".join(items), array("Q", accumulate(map(len, items))))

    def __getitem__(self, i: int) -> bytes:
        return self.blob[self.ends[i - 1] if i else 0 : self.ends[i]]


@dataclass(frozen=True, slots=True)
class _Chunk:
    topics: tuple[str, ...]
    topic_of: bytes  # per wire, its topic's index in ``topics``
    keys: _Column
    values: _Column
    event_ids: _Column

    @classmethod
    def pack(cls, wires: Sequence[Wire]) -> _Chunk:
        topics = tuple(dict.fromkeys(w.topic for w in wires))
        if len(topics) > 255:
            raise ValueError(f"{len(topics)} topics in one chunk: at most 255")
        index = {t: i for i, t in enumerate(topics)}
        return cls(
            topics,
            bytes(index[w.topic] for w in wires),
            _Column.pack([w.key for w in wires]),
            _Column.pack([w.value for w in wires]),
            _Column.pack([w.event_id.encode() for w in wires]),
        )

    def wire(self, i: int) -> Wire:
        return Wire(self.topics[self.topic_of[i]], self.keys[i], self.values[i], self.event_ids[i].decode())


@dataclass(frozen=True, slots=True)
class EncodedRun:
    """A run's events encoded, in publish order, and how many of them are marketplace order events."""

    wires: PackedWires
    order_events: int


def encoded_run(orders: int, seed: int, run_id: str, prefix: str, chunk: int = 10_000) -> EncodedRun:
    """:func:`encode_all` of :func:`messages_for`, built ``chunk`` orders at a time and kept packed
    (:class:`PackedWires`): the message objects of a million orders (4.6 million events) took more than the 23 GB
    of this machine and the benchmark was killed before it published anything. Same events, same order (``chunk``
    is a multiple of the interleaving window)."""
    window = 50
    chunk = max(window, chunk - chunk % window)
    per_order = lifecycles(load_catalogue(CATALOGUE), orders, seed=seed, run_id=run_id)
    wires = PackedWires()
    order_events = 0
    while group := list(islice(per_order, chunk)):
        messages = interleave(group, window)
        order_events += sum(1 for m in messages if m.topic == "marketplace.order-events")
        wires.extend(encode_all(prefix, messages))
    return EncodedRun(wires, order_events)
