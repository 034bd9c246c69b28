"""BatchGuard commits a batch's offsets while the next batch runs: in batch order, one commit in flight at a time,
never for a batch that was not applied, and nothing left in flight once it is drained."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, cast

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.structs import OffsetAndMetadata

from infra.messaging.broker import BatchGuard
from infra.messaging.metrics import MessagingMetrics
from infra.settings import KafkaSettings

SETTINGS = KafkaSettings(batch_top_up_ms=0)


class FakeConsumer:
    """The part of AIOKafkaConsumer a guard uses; each commit waits until the test lets it finish."""

    def __init__(self) -> None:
        self.started: list[dict[TopicPartition, int]] = []
        self.committed: list[dict[TopicPartition, int]] = []
        self.release = asyncio.Event()
        self.seeks: list[tuple[TopicPartition, int]] = []
        self.fail_next = False

    async def commit(self, offsets: dict[TopicPartition, OffsetAndMetadata]) -> None:
        plain = {tp: o.offset for tp, o in offsets.items()}
        self.started.append(plain)
        await self.release.wait()
        if self.fail_next:
            self.fail_next = False
            raise ConnectionError("broker went away")
        self.committed.append(plain)

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.seeks.append((tp, offset))


def records(partition: int, *offsets: int) -> list[ConsumerRecord[bytes, bytes]]:
    return [ConsumerRecord("t", partition, o, 0, 0, b"k", b"v", None, 0, 1, []) for o in offsets]


async def applied(batch: Sequence[ConsumerRecord[bytes, bytes]]) -> None:
    return None


async def not_applied(batch: Sequence[ConsumerRecord[bytes, bytes]]) -> None:
    raise RuntimeError("the database refused the batch")


async def no_sleep(seconds: float) -> None:
    return None


def guard() -> BatchGuard:
    return BatchGuard("test", SETTINGS, MessagingMetrics(), sleep=no_sleep)


def as_consumer(fake: FakeConsumer) -> AIOKafkaConsumer:
    return cast(AIOKafkaConsumer, cast(Any, fake))


async def settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


async def test_the_next_batch_runs_while_the_last_commit_waits_and_commits_keep_batch_order() -> None:
    fake, g = FakeConsumer(), guard()
    tp0, tp1 = TopicPartition("t", 0), TopicPartition("t", 1)
    assert await g.run(as_consumer(fake), records(0, 5, 6), applied)
    await settle()
    assert fake.started == [{tp0: 7}], "the first batch's commit is under way"
    assert await g.run(as_consumer(fake), records(1, 3), applied), "the second batch did not wait for it"
    await settle()
    assert fake.started == [{tp0: 7}], "one commit in flight at a time"
    fake.release.set()
    await g.drain()
    assert fake.committed == [{tp0: 7}, {tp1: 4}]


async def test_a_batch_not_applied_commits_nothing_and_the_one_before_still_commits() -> None:
    fake, g = FakeConsumer(), guard()
    tp0 = TopicPartition("t", 0)
    assert await g.run(as_consumer(fake), records(0, 1, 2), applied)
    assert not await g.run(as_consumer(fake), records(0, 3, 4), not_applied)
    assert fake.seeks == [(tp0, 3)], "rewound to the failed batch's first record"
    fake.release.set()
    await g.drain()
    assert fake.committed == [{tp0: 3}], "only the applied batch's offsets"


async def test_a_failed_commit_does_not_stop_the_next_one() -> None:
    fake, g = FakeConsumer(), guard()
    tp0 = TopicPartition("t", 0)
    fake.fail_next = True
    assert await g.run(as_consumer(fake), records(0, 1), applied)
    assert await g.run(as_consumer(fake), records(0, 2), applied)
    fake.release.set()
    await g.drain()
    assert fake.committed == [{tp0: 3}], "the failed commit is covered by the next (offsets are cumulative)"


async def test_once_drained_each_batch_waits_for_its_own_commit() -> None:
    fake, g = FakeConsumer(), guard()
    tp0 = TopicPartition("t", 0)
    assert await g.run(as_consumer(fake), records(0, 1), applied)
    fake.release.set()
    await g.drain()
    assert fake.committed == [{tp0: 2}]
    assert await g.run(as_consumer(fake), records(0, 2), applied)
    assert fake.committed == [{tp0: 2}, {tp0: 3}], "committed before run returned"
