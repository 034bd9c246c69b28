"""A consumer group of the services' kind shares two topics by range: each member takes partition p of both topics
or of neither, whatever the number of members (real Kafka). Round robin, aiokafka's default, does not when the
partitions do not divide evenly among the members: here 6 among 4."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer

from infra.messaging.admin import ensure_topics
from infra.messaging.broker import ASSIGNORS
from tests.naming import session_topic, unique_suffix

pytestmark = pytest.mark.integration


async def _settled(members: list[AIOKafkaConsumer], total: int) -> None:
    """Poll every member until the group's assignment covers ``total`` partitions, each member holding some."""
    for _ in range(300):
        await asyncio.gather(*(m.getmany(timeout_ms=100) for m in members))
        sizes = [len(m.assignment()) for m in members]
        if sum(sizes) == total and all(sizes):
            return
    raise AssertionError(f"the group never settled: {[len(m.assignment()) for m in members]}")


async def test_each_member_takes_the_same_partitions_of_both_topics(kafka_bootstrap: str) -> None:
    orders, settlements = session_topic("test.copart-a"), session_topic("test.copart-b")
    await ensure_topics(kafka_bootstrap, [orders, settlements], partitions=6, with_dlq=False)
    group = f"test-copart-{unique_suffix()}"
    members = [
        AIOKafkaConsumer(
            orders,
            settlements,
            bootstrap_servers=kafka_bootstrap,
            group_id=group,
            enable_auto_commit=False,
            partition_assignment_strategy=ASSIGNORS,
        )
        for _ in range(4)
    ]
    await asyncio.gather(*(m.start() for m in members))
    try:
        await _settled(members, 12)
        held = [
            (
                {tp.partition for tp in m.assignment() if tp.topic == orders},
                {tp.partition for tp in m.assignment() if tp.topic == settlements},
            )
            for m in members
        ]
    finally:
        await asyncio.gather(*(m.stop() for m in members))
    assert all(mine == theirs for mine, theirs in held), held
    assert sorted(p for mine, _ in held for p in mine) == list(range(6))
