"""Where a consumed event came from, free of any Kafka client's types.

The batch consumer turns each fetched record into a :class:`Delivery` as the batch arrives
(:meth:`Delivery.of`), so handlers and use cases see envelopes and their origin, never aiokafka. Dead-lettering
needs exactly these fields: the original key, bytes and headers go to ``<topic>.dlq``, the topic, partition and
offset are recorded with the dead letter.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


class KafkaRecord(Protocol):
    """The fields of a fetched Kafka record that a delivery keeps (aiokafka's ``ConsumerRecord`` has them)."""

    @property
    def topic(self) -> str: ...

    @property
    def partition(self) -> int: ...

    @property
    def offset(self) -> int: ...

    @property
    def key(self) -> bytes | None: ...

    @property
    def value(self) -> bytes | None: ...

    @property
    def headers(self) -> Sequence[tuple[str, bytes]]: ...


@dataclass(frozen=True, slots=True)
class Delivery:
    """One consumed record: where it arrived (topic, partition, offset) and what it carried (key, bytes, headers)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()

    @classmethod
    def of(cls, record: KafkaRecord) -> Delivery:
        """The delivery of a fetched record (the one place a Kafka record becomes a delivery)."""
        return cls(
            record.topic, record.partition, record.offset, record.key, record.value or b"", tuple(record.headers or ())
        )

    @property
    def origin(self) -> str:
        """``topic/partition/offset``: where the record is (the ``karya-dlq-origin`` header)."""
        return f"{self.topic}/{self.partition}/{self.offset}"
