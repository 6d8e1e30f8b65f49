"""Reading a whole compacted topic on every worker, outside any consumer group.

The catalogue (:mod:`streams.catalog.follow`) and the rules (:mod:`streams.rules.follow`)
are needed whole by every worker, so each worker assigns itself every partition instead of
sharing them through a group. What both readers need lives here once: the consumer, waiting
for the topic to exist, exact end offsets (see :mod:`streams.kafka.end_offsets`), one fetch
of records in partition order, and restarting after a failure.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.types import TP

from streams.kafka.end_offsets import exact_end_offsets

log = logging.getLogger(__name__)

POLL_TIMEOUT_MS = 200
METADATA_RETRY_S = 2.0
RESTART_DELAY_S = 5.0


def outside_group_consumer(bootstrap_servers: Sequence[str], client_kwargs: Mapping[str, Any],
                           *, client_id: str, fetch_max_wait_ms: int = 100
                           ) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        bootstrap_servers=list(bootstrap_servers), group_id=None, enable_auto_commit=False,
        auto_offset_reset="earliest", fetch_max_wait_ms=fetch_max_wait_ms,
        client_id=client_id, **dict(client_kwargs))


async def wait_for_partitions(consumer: AIOKafkaConsumer, topic: str, what: str
                              ) -> list[TopicPartition]:
    """The topic's partitions, waiting (and saying so once) while it does not exist yet."""
    warned = False
    while True:
        await consumer._client.force_metadata_update()  # noqa: SLF001
        found = consumer.partitions_for_topic(topic)
        if found:
            return [TopicPartition(topic, p) for p in sorted(found)]
        if not warned:
            log.warning("%s topic %r not found yet; run 'streamrec topics create'", what, topic)
            warned = True
        await asyncio.sleep(METADATA_RETRY_S)


async def exact_ends(consumer: AIOKafkaConsumer, partitions: Sequence[TopicPartition],
                     bootstrap_servers: Sequence[str], client_kwargs: Mapping[str, Any]
                     ) -> dict[int, int]:
    """Partition -> end offset now (the offset the next record will get)."""
    reported = await consumer.end_offsets(list(partitions))
    exact = await exact_end_offsets(
        bootstrap_servers, {TP(tp.topic, tp.partition): end for tp, end in reported.items()},
        client_kwargs)
    return {tp.partition: end for tp, end in exact.items()}


async def reached(consumer: AIOKafkaConsumer, partitions: Sequence[TopicPartition],
                  ends: Mapping[int, int]) -> bool:
    """Whether the consumer's position is at ``ends`` (from :func:`exact_ends`) on every
    partition."""
    for tp in partitions:
        if await consumer.position(tp) < ends[tp.partition]:
            return False
    return True


async def fetch(consumer: AIOKafkaConsumer, max_records: int) -> list[Any]:
    """One fetch's records, partition by partition (each in offset order)."""
    batches = await consumer.getmany(timeout_ms=POLL_TIMEOUT_MS, max_records=max_records)
    return [record for tp in sorted(batches, key=lambda t: t.partition)
            for record in batches[tp]]


async def keep_running(run: Callable[[], Awaitable[None]], what: str) -> None:
    """``run`` until cancelled; a failure (broker gone, a bug) is logged and ``run`` starts
    again after :data:`RESTART_DELAY_S`."""
    while True:
        try:
            await run()
        except asyncio.CancelledError:
            raise
        except Exception:  # the reader must outlive any one failure
            log.exception("%s reader failed; starting again in %.0f s", what,
                          RESTART_DELAY_S)
            await asyncio.sleep(RESTART_DELAY_S)
