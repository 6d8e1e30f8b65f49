"""Keep a worker's view of the control topic current: which version is promoted, which
experiment runs.

Started by the worker as a task, like the rules reader (:mod:`streams.rules.follow`), with
the same structure: no consumer group (every worker needs the whole topic), the topic read
from the beginning at every (re)start up to its exact end offsets, and a failure (broker
gone, a bug) logged and followed by a fresh read (:func:`streams.kafka.compacted.keep_running`).
The topic is tiny — one promotion and one record per experiment after compaction — so a
fresh read costs milliseconds and cannot disagree with the topic.

``on_snapshot`` is called with the whole :class:`~streams.control.topic.ControlSnapshot`:
once after the initial read (also when the topic is empty, so the worker knows it has heard
from the topic), then after every fetch that changed it. It runs on the event loop, so it
must be quick (hand loading a model to a thread). A record that breaks
``control.schema.json`` is logged and skipped here; the ingest agent, which reads the topic
in the worker group, dead-letters it once (``streamrec_control_rejected_total``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from streams.control.topic import (
    MAX_RECORDS,
    ControlSnapshot,
    apply_records,
    read_to_end,
)
from streams.kafka.compacted import (
    exact_ends,
    fetch,
    keep_running,
    outside_group_consumer,
    wait_for_partitions,
)

log = logging.getLogger(__name__)


async def follow_control(
    on_snapshot: Callable[[ControlSnapshot], None], bootstrap_servers: Sequence[str],
    client_kwargs: Mapping[str, Any], *, topic: str, fetch_max_wait_ms: int = 100,
) -> None:
    """Run until cancelled, calling ``on_snapshot`` with the topic's state as it changes. A
    failure is logged and the topic is read again from the start (``on_snapshot`` then
    receives the fresh read, whether or not it differs)."""
    await keep_running(lambda: _follow(on_snapshot, topic, bootstrap_servers, client_kwargs,
                                       fetch_max_wait_ms), "control")


async def _follow(on_snapshot: Callable[[ControlSnapshot], None], topic: str,
                  bootstrap_servers: Sequence[str], client_kwargs: Mapping[str, Any],
                  fetch_max_wait_ms: int) -> None:
    consumer = outside_group_consumer(bootstrap_servers, client_kwargs,
                                      client_id="streamrec-control",
                                      fetch_max_wait_ms=fetch_max_wait_ms)
    await consumer.start()
    try:
        partitions = await wait_for_partitions(consumer, topic, "control")
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await exact_ends(consumer, partitions, bootstrap_servers, client_kwargs)
        snapshot = await read_to_end(consumer, partitions, ends)
        log.info("control topic read: promoted %s, running experiment %s",
                 snapshot.promotion.version if snapshot.promotion else "nothing",
                 running.name if (running := snapshot.running()) else "none")
        on_snapshot(snapshot)
        while True:
            changed = apply_records(snapshot, await fetch(consumer, MAX_RECORDS))
            if changed != snapshot:
                snapshot = changed
                on_snapshot(snapshot)
    finally:
        await consumer.stop()
