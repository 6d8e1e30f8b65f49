"""The catalogue reader's Kafka side: every partition of ``items``, no consumer group.

Started by the worker as a Faust task (:func:`streams.app.create_worker`). Positions come
from the local store (:class:`~streams.catalog.store.CatalogStore`), so a restart resumes
where the worker left off; the end offsets seen at start (exact, from a fetch's high
watermark, see :mod:`streams.kafka.end_offsets`) say when the reader has caught up.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.types import TP

from streams.catalog.reader import CatalogReader
from streams.kafka.end_offsets import exact_end_offsets

log = logging.getLogger(__name__)

POLL_TIMEOUT_MS = 200
METADATA_RETRY_S = 2.0
RESTART_DELAY_S = 5.0


async def follow_catalog(
    reader: CatalogReader, bootstrap_servers: Sequence[str], client_kwargs: dict[str, Any],
    *, fetch_max_wait_ms: int = 100,
) -> None:
    """Run until cancelled: apply every record of the items topic as it arrives. A failure
    (broker gone, a bug) is logged and the reader starts again from its stored offsets."""
    await reader.open_encoder()
    await reader.embed_missing()
    while True:
        try:
            await _follow(reader, bootstrap_servers, client_kwargs, fetch_max_wait_ms)
        except asyncio.CancelledError:
            raise
        except Exception:  # the catalogue must outlive any one failure
            log.exception("catalogue reader failed; starting again in %.0f s",
                          RESTART_DELAY_S)
            await asyncio.sleep(RESTART_DELAY_S)


async def _follow(
    reader: CatalogReader, bootstrap_servers: Sequence[str], client_kwargs: dict[str, Any],
    fetch_max_wait_ms: int,
) -> None:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=list(bootstrap_servers), group_id=None, enable_auto_commit=False,
        auto_offset_reset="earliest", fetch_max_wait_ms=fetch_max_wait_ms,
        client_id="streamrec-catalog", **client_kwargs)
    await consumer.start()
    try:
        partitions = await _partitions(consumer, reader.topic)
        consumer.assign(partitions)
        for tp in partitions:
            position = reader.positions.get(tp.partition)
            if position is None:
                await consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, position)
        reported = await consumer.end_offsets(partitions)
        exact = await exact_end_offsets(
            bootstrap_servers, {TP(tp.topic, tp.partition): end for tp, end in reported.items()},
            client_kwargs)
        reader.end_at_start = {tp.partition: end for tp, end in exact.items()}
        reader.note_lag(reader.end_at_start)
        while True:
            batches = await consumer.getmany(timeout_ms=POLL_TIMEOUT_MS,
                                             max_records=reader.max_batch)
            records = [record for tp in sorted(batches, key=lambda t: t.partition)
                       for record in batches[tp]]
            if records:
                await reader.apply(records)
            reader.note_lag({tp.partition: hw for tp in partitions
                             if (hw := consumer.highwater(tp)) is not None})
    finally:
        await consumer.stop()


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    """The topic's partitions, waiting (and saying so) while it does not exist yet."""
    warned = False
    while True:
        await consumer._client.force_metadata_update()  # noqa: SLF001
        found = consumer.partitions_for_topic(topic)
        if found:
            return [TopicPartition(topic, p) for p in sorted(found)]
        if not warned:
            log.warning("catalogue topic %r not found yet; run 'streamrec topics create'",
                        topic)
            warned = True
        await asyncio.sleep(METADATA_RETRY_S)
