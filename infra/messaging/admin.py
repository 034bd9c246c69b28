"""Topic administration: production topics are created with explicit partition counts, never implicitly."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from infra.messaging.topics import dead_letter_topic


async def ensure_topics(bootstrap_servers: str, topics: Iterable[str], partitions: int, with_dlq: bool = True) -> None:
    """Create ``topics`` (and their ``.dlq`` twins) if missing; existing topics are left as they are."""
    wanted = set(topics)
    if with_dlq:
        wanted |= {dead_letter_topic(t) for t in wanted if not t.endswith(".dlq")}
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = sorted(wanted - existing)
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):  # a sibling process won the race
                await admin.create_topics(
                    [NewTopic(name=t, num_partitions=partitions, replication_factor=1) for t in missing]
                )
    finally:
        await admin.close()


async def delete_topics_with_prefix(bootstrap_servers: str, prefix: str) -> int:
    """Delete every topic whose name starts with ``prefix`` (a finished bench or demo run's own topics); returns
    how many. Refuses an empty prefix: production topics are never deleted from here."""
    if not prefix:
        raise ValueError("a run prefix is required; production topics are never deleted")
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        doomed = sorted(t for t in await admin.list_topics() if t.startswith(prefix))
        if doomed:
            await admin.delete_topics(doomed)
        return len(doomed)
    finally:
        await admin.close()
