"""Kafka's default partition of a keyed record, computed the way the Java client (and aiokafka) does.

The outbox relay builds record batches per partition itself, so it needs the partition of every row's key. aiokafka's
``murmur2`` walks the key byte by byte in Python and was 6% of the orders process; this one reads the key four bytes
at a time and gives the same hash (tested against aiokafka's on arbitrary bytes). A bounded cache remembers the
partitions of recent keys: an order's events leave in several relay batches.
"""

from __future__ import annotations

import struct

_M = 0x5BD1E995
_MASK = 0xFFFFFFFF
_WORDS = struct.Struct("<I")


def murmur2(data: bytes) -> int:
    """Kafka's ``Utils.murmur2`` of ``data`` (seed 0x9747b28c), as an unsigned 32-bit int."""
    length = len(data)
    h = 0x9747B28C ^ length
    whole = length & ~3
    for (k,) in _WORDS.iter_unpack(data[:whole]):
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    rest = length & 3
    if rest >= 3:
        h ^= data[whole + 2] << 16
    if rest >= 2:
        h ^= data[whole + 1] << 8
    if rest >= 1:
        h ^= data[whole]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h


def partition_for_key(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner gives ``key`` on a topic of ``partitions`` partitions."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


class PartitionCache:
    """Partitions of recently seen (topic, partition count, key); forgets everything when it reaches ``size``."""

    def __init__(self, size: int = 100_000) -> None:
        self._size = size
        self._known: dict[tuple[str, int, bytes], int] = {}

    def partition(self, topic: str, partitions: int, key: bytes) -> int:
        """The partition of ``key`` on ``topic`` (which has ``partitions`` partitions)."""
        slot = (topic, partitions, key)
        found = self._known.get(slot)
        if found is None:
            if len(self._known) >= self._size:
                self._known.clear()
            found = self._known[slot] = partition_for_key(key, partitions)
        return found
