"""Publish events to the input topics at a steady rate with an independent Kafka client."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from devtools.producers import produce
from streams.kafka.clients import librdkafka_config
from streams.settings import Settings


@dataclass
class ReplayStats:
    sent: int = 0
    seconds: float = 0.0


def replay(
    events: Iterable[dict[str, Any]],
    settings: Settings,
    *,
    rate_per_s: float,
    restamp: bool = True,
    on_progress: Callable[[ReplayStats], None] | None = None,
    progress_every_s: float = 2.0,
) -> ReplayStats:
    """Send ``events`` at ``rate_per_s``; with ``restamp`` their timestamps become "now"
    (keeping their order), so freshness is measured against real time. Events are keyed by
    ``event_id`` on purpose: the pipeline must re-key by user itself."""
    from confluent_kafka import Producer

    producer = Producer(librdkafka_config(settings, **{"linger.ms": 5}))
    stats = ReplayStats()
    started = last_report = time.monotonic()
    for event in events:
        due = started + stats.sent / rate_per_s
        now = time.monotonic()
        if due > now:
            time.sleep(due - now)
        if restamp:
            event = {**event, "timestamp": time.time_ns() // 1_000_000}
        produce(producer, settings.topic_for(event["event_type"]),
                event["event_id"].encode(), orjson.dumps(event))
        producer.poll(0)
        stats.sent += 1
        if on_progress and time.monotonic() - last_report >= progress_every_s:
            stats.seconds = time.monotonic() - started
            on_progress(stats)
            last_report = time.monotonic()
    producer.flush(30)
    stats.seconds = time.monotonic() - started
    return stats

