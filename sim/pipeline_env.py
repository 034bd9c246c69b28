"""A pipeline to drive with the seeded load: a fresh database and topics of its own, and that load encoded for them.

The benchmark (``bench``) and the fault experiments (``faults``) both run the real orders and ledger services
against such an environment; each starts and watches the service processes in its own way. Neither owns this
module, so neither tool depends on the other.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from itertools import islice

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


@dataclass(frozen=True, slots=True)
class EncodedRun:
    """A run's events encoded, in publish order, and how many of them are marketplace order events."""

    wires: list[Wire]
    order_events: int


def encoded_run(orders: int, seed: int, run_id: str, prefix: str, chunk: int = 10_000) -> EncodedRun:
    """:func:`encode_all` of :func:`messages_for`, built ``chunk`` orders at a time and keeping only the encoded
    bytes: the message objects of a million orders (4.6 million events) took more than the 23 GB of this machine
    and the benchmark was killed before it published anything. Same events, same order (``chunk`` is a multiple of
    the interleaving window)."""
    window = 50
    chunk = max(window, chunk - chunk % window)
    per_order = lifecycles(load_catalogue(CATALOGUE), orders, seed=seed, run_id=run_id)
    wires: list[Wire] = []
    order_events = 0
    while group := list(islice(per_order, chunk)):
        messages = interleave(group, window)
        order_events += sum(1 for m in messages if m.topic == "marketplace.order-events")
        wires += encode_all(prefix, messages)
    return EncodedRun(wires, order_events)
