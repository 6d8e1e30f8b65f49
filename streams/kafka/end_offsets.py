"""Exact changelog end offsets for table recovery, on every broker.

Tansu 0.6 (the embedded development broker) answers ListOffsets(latest) with *the base
offset of the last record batch + 1* instead of the last offset + 1 (measured here: five
records produced in one batch, offsets 0-4, are reported as end offset 1). Faust takes its
table-recovery high-water marks from ListOffsets, so on Tansu a restarted worker either
stops restoring a changelog short of its tail — silently losing state — or refuses to start
(``ConsistencyError: persisted offset is higher than highwater``).

Fetch responses do carry the right high watermark. streamrec's consumer
(:mod:`streams.kafka.transport`) therefore asks ListOffsets first and, for every partition
that is not empty, fetches once from the start of its last batch (``reported_end - 1``) with
a throw-away consumer outside the group, and uses the high watermark of that fetch. It does
so on every broker, with no switch to forget: on Apache Kafka the fetch agrees with
ListOffsets, and the cost is one fetch per non-empty changelog partition per recovery,
nothing on the hot path."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

import aiokafka
from aiokafka import TopicPartition
from faust.types import TP

log = logging.getLogger(__name__)

PROBE_TIMEOUT_S = 10.0


async def exact_end_offsets(
    bootstrap_servers: Sequence[str],
    reported: Mapping[TP, int],
    client_kwargs: Mapping[str, Any] | None = None,
    timeout_s: float = PROBE_TIMEOUT_S,
) -> dict[TP, int]:
    """Correct ListOffsets answers with the high watermark of one fetch per partition."""
    exact = dict(reported)
    to_probe = {tp: end for tp, end in reported.items() if end and end > 0}
    if not to_probe:
        return exact
    probe = aiokafka.AIOKafkaConsumer(
        bootstrap_servers=list(bootstrap_servers), enable_auto_commit=False,
        group_id=None, **dict(client_kwargs or {}),
    )
    await probe.start()
    try:
        partitions = [TopicPartition(tp.topic, tp.partition) for tp in to_probe]
        probe.assign(partitions)
        for tp, end in to_probe.items():
            probe.seek(TopicPartition(tp.topic, tp.partition), end - 1)
        pending = set(partitions)
        deadline = time.monotonic() + timeout_s
        while pending and time.monotonic() < deadline:
            await probe.getmany(*pending, timeout_ms=200)
            for tp in list(pending):
                highwater = probe.highwater(tp)
                if highwater is not None:
                    exact[TP(tp.topic, tp.partition)] = max(highwater, reported[
                        TP(tp.topic, tp.partition)])
                    pending.discard(tp)
        if pending:
            log.warning("no high watermark within %.0fs for %s; using ListOffsets",
                        timeout_s, sorted(pending))
    finally:
        await probe.stop()
    return exact
