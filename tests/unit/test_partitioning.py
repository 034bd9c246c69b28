"""The relay's partitioner gives every key the partition Kafka's default partitioner (aiokafka's) gives it."""

from __future__ import annotations

from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as reference_murmur2
from hypothesis import given
from hypothesis import strategies as st

from infra.messaging.partitioning import PartitionCache, murmur2, partition_for_key


@given(st.binary(max_size=200))
def test_murmur2_matches_aiokafka(data: bytes) -> None:
    assert murmur2(data) == reference_murmur2(data)


@given(st.binary(min_size=1, max_size=80), st.integers(min_value=1, max_value=64))
def test_partition_matches_the_default_partitioner(key: bytes, partitions: int) -> None:
    every = list(range(partitions))
    assert partition_for_key(key, partitions) == DefaultPartitioner()(key, every, every)


def test_known_values_from_the_java_client() -> None:
    # org.apache.kafka.common.utils.UtilsTest#testMurmur2 (as signed ints there)
    cases = {b"21": -973932308, b"foobar": -790332482, b"a-little-bit-long-string": -985981536}
    for data, signed in cases.items():
        assert murmur2(data) == signed & 0xFFFFFFFF


def test_cache_answers_like_the_function_and_stays_bounded() -> None:
    cache = PartitionCache(size=3)
    keys = [f"shopee:77001:{n}".encode() for n in range(10)]
    for key in keys * 2:
        assert cache.partition("orders.events", 6, key) == partition_for_key(key, 6)
    assert cache.partition("orders.events", 12, keys[0]) == partition_for_key(keys[0], 12)
    assert len(cache._known) <= 3
