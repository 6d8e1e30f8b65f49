"""user_partition: Kafka's default partitioner (Java murmur2) over the UTF-8 user id."""

from __future__ import annotations

import confluent_kafka
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.kafka.partitioning import user_partition

PROFILE = settings(max_examples=200, deadline=None)

# org.apache.kafka.common.utils.UtilsTest#testMurmur2: Utils.murmur2 as Java's signed int.
# The same table is used by other ports of the partitioner (sarama, librdkafka's tests...).
JAVA_MURMUR2 = [
    ("21", -973932308),
    ("foobar", -790332482),
    ("a-little-bit-long-string", -985981536),
    ("a-little-bit-longer-string", -1486304829),
    ("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
    ("abc", 479470107),
]

# User ids come from decoded JSON, which never holds lone surrogates (not encodable).
user_ids = st.text(st.characters(codec="utf-8"), max_size=64)


def java_partition(java_hash: int, partitions: int) -> int:
    """``BuiltInPartitioner.partitionForKey``: ``toPositive(murmur2(key)) % partitions``."""
    return (java_hash & 0x7FFFFFFF) % partitions


@pytest.mark.parametrize(("user_id", "java_hash"), JAVA_MURMUR2)
def test_matches_the_java_clients_murmur2_vectors(user_id: str, java_hash: int) -> None:
    # With 2**31 partitions the modulo is the identity: this sees all 31 bits of the hash.
    assert user_partition(user_id, 2**31) == java_hash & 0x7FFFFFFF
    for partitions in (1, 2, 3, 12, 100, 1009):
        assert user_partition(user_id, partitions) == java_partition(java_hash, partitions)


@PROFILE
@given(user_ids, st.integers(1, 100_000))
def test_agrees_with_librdkafkas_murmur2_partitioner(user_id: str, partitions: int) -> None:
    """confluent-kafka's ``murmur2`` is librdkafka's C partitioner: an independent client."""
    assert user_partition(user_id, partitions) == confluent_kafka.murmur2(
        user_id.encode("utf-8"), partitions
    )


def test_hashes_the_utf8_bytes_of_non_ascii_ids() -> None:
    for user_id in ("ünïcødé-user", "用户-42", "emoji-\U0001f600"):
        assert user_partition(user_id, 2**31 - 1) == confluent_kafka.murmur2(
            user_id.encode("utf-8"), 2**31 - 1
        )


@PROFILE
@given(user_ids, st.integers(1, 10_000))
def test_is_in_range_and_stable(user_id: str, partitions: int) -> None:
    first = user_partition(user_id, partitions)
    assert 0 <= first < partitions
    assert user_partition(user_id, partitions) == first


def test_spreads_users_over_every_partition() -> None:
    counts = [0] * 8
    for n in range(8_000):
        counts[user_partition(f"user-{n}", 8)] += 1
    # 1,000 expected per partition; a broken hash (e.g. sign bit kept) piles them up.
    assert min(counts) > 850 and max(counts) < 1150, counts
