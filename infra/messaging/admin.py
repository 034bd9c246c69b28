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
