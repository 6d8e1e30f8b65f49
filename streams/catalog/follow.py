"""The catalogue reader's Kafka side: every partition of ``items``, no consumer group.

Started by the worker as a Faust task (:func:`streams.app.create_worker`). Positions come
from the local store (:class:`~streams.catalog.store.CatalogStore`), so a restart resumes
where the worker left off; the end offsets seen at start (exact, from a fetch's high
watermark, see :mod:`streams.kafka.end_offsets`) say when the reader has caught up.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from streams.catalog.reader import CatalogReader
from streams.kafka.compacted import (
    exact_ends,
    fetch,
    keep_running,
    outside_group_consumer,
    wait_for_partitions,
)


async def follow_catalog(
    reader: CatalogReader, bootstrap_servers: Sequence[str],
    client_kwargs: Mapping[str, Any], *, fetch_max_wait_ms: int = 100,
) -> None:
    """Run until cancelled: apply every record of the items topic as it arrives. A failure
    (broker gone, a bug) is logged and the reader starts again from its stored offsets."""
    await reader.open_encoder()
    await reader.embed_missing()
    await keep_running(lambda: _follow(reader, bootstrap_servers, client_kwargs,
                                       fetch_max_wait_ms), "catalogue")


async def _follow(
    reader: CatalogReader, bootstrap_servers: Sequence[str],
    client_kwargs: Mapping[str, Any], fetch_max_wait_ms: int,
) -> None:
    consumer = outside_group_consumer(bootstrap_servers, client_kwargs,
                                      client_id="streamrec-catalog",
                                      fetch_max_wait_ms=fetch_max_wait_ms)
    await consumer.start()
    try:
        partitions = await wait_for_partitions(consumer, reader.topic, "catalogue")
        consumer.assign(partitions)
        for tp in partitions:
            position = reader.positions.get(tp.partition)
            if position is None:
                await consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, position)
        reader.end_at_start = await exact_ends(consumer, partitions, bootstrap_servers,
                                               client_kwargs)
        reader.note_lag(reader.end_at_start)
        while True:
            records = await fetch(consumer, reader.max_batch)
            if records:
                await reader.apply(records)
            reader.note_lag({tp.partition: hw for tp in partitions
                             if (hw := consumer.highwater(tp)) is not None})
    finally:
        await consumer.stop()
