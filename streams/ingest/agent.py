"""The ingest agent: one actor per input partition.

Decodes and validates a micro-batch, sends rejected messages to the dead-letter topic with
their reason and source, and forwards valid events (and erasure requests) to the internal
``events-by-user`` topic as one bundle per owning partition.

Events that arrived in the partition that owns their user (their producer keyed them by
``user_id``) skip that hop when this worker owns the partition's state actively: the actor
applies them to the state itself (:class:`DirectPath`, the state agent's own logic under the
partition's lock) and returns — so Faust acks their input offsets — only once the state is
written and its changelog and recommendation records are acknowledged.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import faust
from aiokafka.errors import KafkaError
from faust.types import EventT

from schemas.dead_letters import encode_dead_letter
from schemas.events import DecodeLimits, Event
from streams.clock import now_ms
from streams.ingest.batch import (
    Bundle,
    IngestBatch,
    Pseudonymiser,
    RawMessage,
    encode_bundle,
    ingest,
    take_direct,
)
from streams.kafka.take import Take, take_adaptive
from streams.ops.metrics import Metrics
from streams.ops.stages import StageClock, observe_waits
from streams.settings import Settings

log = logging.getLogger(__name__)

ROUTES = ("direct", "rekeyed")
"""``streamrec_events_routed_total{path}``: how a valid event reached the state."""


@dataclass(frozen=True)
class DirectPath:
    """The state, reached from the ingest agent without the ``events-by-user`` hop."""

    owns: Callable[[int], bool]
    """Whether this worker owns that state partition actively right now."""
    apply: Callable[[int, list[Event]], Awaitable[None]]
    """Applies events to that state partition; returns once state, changelog and
    recommendations are written and acknowledged."""


@dataclass(frozen=True)
class IngestConfig:
    """What the ingest agent needs to know, taken from the settings once."""

    limits: DecodeLimits
    partitions: int
    erasure_topic: str
    items_topic: str
    batch_max_events: int
    batch_max_seconds: float
    pseudonymiser: Pseudonymiser | None
    rules_topic: str | None = None
    control_topic: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> IngestConfig:
        key = settings.pseudonymisation_key
        return cls(
            limits=settings.decode_limits(),
            partitions=settings.topic_partitions,
            erasure_topic=settings.topic_user_erasure,
            items_topic=settings.topic_items,
            batch_max_events=settings.batch_max_events,
            batch_max_seconds=settings.batch_max_seconds,
            pseudonymiser=Pseudonymiser(key.encode("utf-8")) if key else None,
            rules_topic=settings.topic_rules,
            control_topic=settings.topic_control,
        )


@dataclass
class IngestAgent:
    config: IngestConfig
    metrics: Metrics
    by_user_topic: Any
    dead_letter_topic: Any
    direct: DirectPath | None = None
    """None: every event takes the hop (``STREAMREC_SKIP_REKEY_HOP=false``)."""
    take: Take = take_adaptive
    """Micro-batches of the stream (:mod:`streams.kafka.take`)."""

    @property
    def catalogue_topics(self) -> frozenset[str]:
        """Items, rules and control: validated here too, but not events (no wait of theirs
        is an event's: a catalogue published before the worker started would read as
        minutes)."""
        config = self.config
        return frozenset(t for t in (config.items_topic, config.rules_topic,
                                     config.control_topic) if t)

    async def __call__(self, stream: faust.StreamT) -> None:
        config = self.config
        async for events in self.take(stream, config.batch_max_events,
                                      config.batch_max_seconds):
            clock = StageClock()
            raw = [_raw(event) for event in events]
            received_ms = now_ms()
            observe_waits(self.metrics.stage_seconds, "input_wait", received_ms,
                          [message.timestamp_ms for message in raw
                           if message.topic not in self.catalogue_topics])
            batch = ingest(
                raw,
                limits=config.limits,
                partitions=config.partitions,
                now_ms=received_ms,
                pseudonymise=config.pseudonymiser,
                erasure_topic=config.erasure_topic,
                items_topic=config.items_topic,
                rules_topic=config.rules_topic,
                control_topic=config.control_topic,
            )
            direct = self._take_direct(batch, raw)
            await self._send(batch)
            clock.lap("ingest")
            clock.observe(self.metrics.stage_seconds)
            if direct and self.direct is not None:
                await self._apply_direct(self.direct, raw[0].partition, direct)

    async def _apply_direct(self, path: DirectPath, partition: int, events: list[Event]
                            ) -> None:
        """Apply ``events`` to ``partition``'s state here. The state agent retries a
        micro-batch the broker refuses for up to a minute (``RETRY_WINDOW_S``); if it still
        fails, the events take the hop instead, where the state agent's actor retries them
        as its own, rather than crashing this ingest actor (ingest actors that crashed with
        the state actors once spent Faust's restart budget and took the worker down)."""
        try:
            await path.apply(partition, events)
        except KafkaError as exc:
            log.warning("partition %d: applying %d events directly failed (%r); they take "
                        "the events-by-user hop instead (counted as direct)", partition,
                        len(events), exc)
            await self.by_user_topic.send(key=f"p{partition}".encode(),
                                          value=encode_bundle(Bundle(events=events)),
                                          partition=partition)

    def _take_direct(self, batch: IngestBatch, raw: list[RawMessage]) -> list[Event]:
        """The events that skip the hop (taken out of ``batch``); counts both paths. An
        actor's messages all come from one partition (isolated partitions): the check of
        the first and last message only guards that assumption."""
        direct, first, last = self.direct, raw[0], raw[-1]
        events: list[Event] = []
        if (direct is not None and (first.topic, first.partition) == (last.topic, last.partition)
                and direct.owns(first.partition)):
            events = take_direct(batch, first.partition)
        routed = self.metrics.events_routed
        if rekeyed := sum(len(bundle.events) for bundle in batch.bundles.values()):
            routed.labels(path="rekeyed").inc(rekeyed)
        if events:
            routed.labels(path="direct").inc(len(events))
        return events

    async def _send(self, batch: IngestBatch) -> None:
        metrics = self.metrics
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
            rejected = {self.config.items_topic: metrics.items_rejected,
                        self.config.rules_topic: metrics.rules_rejected,
                        self.config.control_topic: metrics.control_rejected,
                        }.get(message.topic, metrics.events_rejected)
            rejected.labels(reason=reason).inc()
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
