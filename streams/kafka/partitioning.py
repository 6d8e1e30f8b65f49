"""Which partition owns a user: Kafka's default partitioner over the user id.

Using the Java client's murmur2 means a producer that already keys its events by
``user_id`` with a stock Kafka client lands them exactly where streamrec keeps that user's
state, and Faust's table routing (``/users/{id}`` on another worker) agrees with us.
"""

from __future__ import annotations

from aiokafka.partitioner import murmur2


def user_partition(user_id: str, partitions: int) -> int:
    """Partition of ``user_id`` among ``partitions``, as Kafka's default partitioner picks it.

    >>> user_partition("user-1", 4) == user_partition("user-1", 4)
    True
    >>> 0 <= user_partition("anyone", 7) < 7
    True
    """
    return (murmur2(user_id.encode("utf-8")) & 0x7FFFFFFF) % partitions
