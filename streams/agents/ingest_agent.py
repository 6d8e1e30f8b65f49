"""The ingest agent: one actor per input partition.

Decodes and validates a micro-batch, sends rejected messages to the dead-letter topic with
their reason and source, and forwards valid events (and erasure requests) to the internal
``events-by-user`` topic as one bundle per owning partition.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import faust
from faust.types import EventT

from schemas.codecs import encode_dead_letter
from streams.clock import now_ms
from streams.ingest import IngestBatch, Pseudonymiser, RawMessage, encode_bundle, ingest

if TYPE_CHECKING:
    from streams.app import Worker

log = logging.getLogger(__name__)


@dataclass
class IngestAgent:
    worker: Worker
    by_user_topic: Any
    dead_letter_topic: Any

    async def __call__(self, stream: faust.StreamT) -> None:
        settings = self.worker.settings
        pseudonymise = (
            Pseudonymiser(settings.pseudonymisation_key.encode("utf-8"))
            if settings.pseudonymisation_key else None
        )
        async for events in stream.take_events(  # type: ignore[attr-defined]  # on faust.Stream, not StreamT
            settings.batch_max_events, settings.batch_max_seconds
        ):
            batch = ingest(
                (_raw(event) for event in events),
                limits=self.worker.decode_limits,
                partitions=settings.topic_partitions,
                now_ms=now_ms(),
                pseudonymise=pseudonymise,
                erasure_topic=settings.topic_user_erasure,
            )
            await self._send(batch)

    async def _send(self, batch: IngestBatch) -> None:
        metrics = self.worker.metrics
        log.debug("ingest batch: %d messages, %d dead-lettered, %d bundles",
                  sum(batch.consumed.values()), len(batch.dead_letters), len(batch.bundles))
        for dead in batch.dead_letters:
            reason = dead.rejection.reason.value
            message = dead.message
            log.warning(
                "dead-lettered message from %s[%d]@%d: reason=%s event_id=%s",
                message.topic, message.partition, message.offset, reason,
                dead.rejection.event_id,
                extra={"reason": reason, "event_id": dead.rejection.event_id,
                       "topic": message.topic, "partition": message.partition,
                       "offset": message.offset},
            )
            # The detail may quote the offending value (e.g. a malformed user_id): DEBUG
            # only; the dead letter itself keeps it.
            log.debug("dead-letter detail for %s[%d]@%d: %s", message.topic,
                      message.partition, message.offset, dead.rejection.detail)
            await self.dead_letter_topic.send(
                key=message.key,
                value=encode_dead_letter(
                    dead.rejection,
                    raw_key=message.key,
                    raw_value=message.value,
                    topic=message.topic,
                    partition=message.partition,
                    offset=message.offset,
                    timestamp_ms=message.timestamp_ms,
                    received_at_ms=now_ms(),
                ),
            )
            metrics.events_rejected.labels(reason=reason).inc()
            metrics.dead_letters.labels(reason=reason).inc()
        for (topic, event_type), count in batch.consumed.items():
            metrics.events_consumed.labels(topic=topic, event_type=event_type).inc(count)
        for partition, bundle in batch.bundles.items():
            await self.by_user_topic.send(
                key=f"p{partition}".encode(), value=encode_bundle(bundle), partition=partition
            )


def _raw(event: EventT) -> RawMessage:
    message = event.message
    timestamp = message.timestamp
    return RawMessage(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        timestamp_ms=int(timestamp * 1000) if timestamp else None,
        key=message.key,
        value=message.value,
    )
