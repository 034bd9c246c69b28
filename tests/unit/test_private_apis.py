"""What production code relies on beyond the public, documented APIs of aiokafka, FastStream and uvicorn.

Each test names the place that relies on it. The versions are pinned in constraints.txt (``make install`` uses
it); an upgrade that removes one of these or changes its meaning fails here, before it fails in production.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Sequence

import h11
import uvicorn
from aiokafka import AIOKafkaConsumer
from aiokafka.client import AIOKafkaClient
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.message import KafkaMessage
from faststream.kafka.subscriber.usecase import BatchSubscriber
from sqlalchemy.ext.asyncio import AsyncConnection
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState

from infra.messaging.broker import register_batch_consumer
from infra.messaging.consumer import BatchConsumer, InboundEvent
from infra.messaging.metrics import MessagingMetrics
from infra.settings import KafkaSettings

_NOWHERE = "127.0.0.1:1"  # nothing is started or connected


async def test_a_consumers_client_refreshes_its_metadata_on_request() -> None:
    """infra.messaging.admin.partitions_of: ``consumer._client.force_metadata_update()`` (no public way makes a
    standalone consumer learn a topic created after it started) returns an awaitable, and the consumer answers
    ``partitions_for_topic`` from that client's cluster metadata."""
    consumer = AIOKafkaConsumer(bootstrap_servers=_NOWHERE)
    client = consumer._client
    assert isinstance(client, AIOKafkaClient)
    assert list(inspect.signature(client.force_metadata_update).parameters) == []
    assert "self._client.cluster.partitions_for_topic" in inspect.getsource(AIOKafkaConsumer.partitions_for_topic)
    assert "asyncio.shield" in inspect.getsource(AIOKafkaClient.force_metadata_update)


async def _nothing(conn: AsyncConnection, events: Sequence[InboundEvent]) -> None:  # pragma: no cover - not run
    raise AssertionError


def _subscriber() -> BatchSubscriber:
    settings = KafkaSettings(bootstrap_servers=_NOWHERE)
    broker = KafkaBroker(_NOWHERE, logger=None)
    consumer = BatchConsumer(
        name="private-apis",
        schema="nowhere",
        engine=None,  # type: ignore[arg-type]  # never used: nothing is consumed
        handler=_nothing,
        settings=settings,
        metrics=MessagingMetrics(),
    )
    return register_batch_consumer(
        broker, consumer, topics=["t"], group_id="g", settings=settings, description="private API check"
    )


def test_a_batch_subscriber_is_the_usecase_class_and_has_no_consumer_before_start() -> None:
    """infra.runtime: readiness and the lag loop read ``subscriber.consumer`` (None until the broker starts, then
    the AIOKafkaConsumer whose ``assignment()`` says whether partitions are assigned); the type is imported from
    ``faststream.kafka.subscriber.usecase``, which ``faststream.kafka`` does not export."""
    subscriber = _subscriber()
    assert isinstance(subscriber, BatchSubscriber)
    assert subscriber.consumer is None


def test_manual_acks_turn_the_consumers_auto_commit_off() -> None:
    """infra.messaging.broker: offsets are committed only after the database commit, so FastStream must not let
    aiokafka auto-commit: with ``AckPolicy.MANUAL`` it passes ``enable_auto_commit=False`` to the consumer it
    builds (its private ``_connection_args``)."""
    subscriber = _subscriber()
    assert subscriber.ack_policy is AckPolicy.MANUAL
    assert subscriber._connection_args["enable_auto_commit"] is False


def test_a_kafka_message_carries_the_consumer_that_fetched_it() -> None:
    """infra.messaging.broker: the batch handler tops up, commits and rewinds through ``message.consumer``."""
    assert "consumer" in inspect.signature(KafkaMessage.__init__).parameters
    assert "self.consumer = consumer" in inspect.getsource(KafkaMessage.__init__)


def test_uvicorns_h11_protocol_has_what_the_header_deadline_uses() -> None:
    """services.gateway.edge.HeaderDeadlineProtocol subclasses uvicorn's (undocumented) ``H11Protocol``: it uses
    ``self.conn`` (the h11 connection, whose ``their_state`` is IDLE until a request's headers are complete),
    ``self.loop``, ``self.transport`` (set in ``connection_made``) and the hooks ``connection_made``,
    ``data_received``, ``connection_lost`` and ``on_response_complete`` (called when a response completes)."""
    loop = asyncio.new_event_loop()
    try:
        config = uvicorn.Config(lambda *_: None)
        protocol = H11Protocol(config, ServerState(), app_state={}, _loop=loop)
    finally:
        loop.close()
    assert isinstance(protocol.conn, h11.Connection) and protocol.conn.their_state is h11.IDLE
    assert protocol.loop is loop
    assert "self.transport = transport" in inspect.getsource(H11Protocol.connection_made)
    assert "on_response=self.on_response_complete" in inspect.getsource(H11Protocol.handle_events)
    for hook in ("connection_made", "data_received", "connection_lost", "on_response_complete"):
        assert hook in vars(H11Protocol), hook
