"""Exact end offsets on the embedded development broker (``STREAMREC_BROKER_FLAVOUR=tansu``).

Tansu 0.6 answers ListOffsets(latest) with *the base offset of the last record batch + 1*
instead of the last offset + 1 (measured here: five records produced in one batch, offsets
0-4, are reported as end offset 1). Faust takes its table-recovery high-water marks from
ListOffsets, so on Tansu a restarted worker either stops restoring a changelog short of its
tail — silently losing state — or refuses to start (``ConsistencyError: persisted offset is
higher than highwater``).

Fetch responses do carry the right high watermark. This transport therefore asks ListOffsets
first and, for every partition that is not empty, fetches once from the start of its last
batch (``reported_end - 1``) with a throw-away consumer outside the group, and uses the
high watermark of that fetch. Cost: one extra fetch per changelog partition per recovery;
nothing on the hot path. Apache Kafka needs none of this and never gets it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any, cast

import aiokafka
from aiokafka import TopicPartition
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

from streams.transport import StreamrecConsumer, StreamrecConsumerThread, StreamrecTransport

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


class ExactEndOffsetsConsumerThread(StreamrecConsumerThread):
    """Faust's aiokafka consumer thread with exact end offsets (see module docstring)."""

    async def _highwaters(self, partitions: list[TP]) -> Mapping[TP, int]:
        reported = await super()._highwaters(partitions)
        if self.consumer.in_transaction:
            return reported
        transport = cast(faust_aiokafka.Transport, self.transport)
        servers = faust_aiokafka.server_list(transport.url, transport.default_port)
        auth = faust_aiokafka.credentials_to_aiokafka_auth(
            self.app.conf.broker_credentials, self.app.conf.ssl_context
        )
        return await asyncio.wait_for(
            exact_end_offsets(servers, reported, auth), PROBE_TIMEOUT_S * 2
        )


class ExactEndOffsetsConsumer(StreamrecConsumer):
    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return ExactEndOffsetsConsumerThread(self, loop=self.loop, beacon=self.beacon)


class TansuTransport(StreamrecTransport):
    """Streamrec's transport with :class:`ExactEndOffsetsConsumer`."""

    Consumer = ExactEndOffsetsConsumer
