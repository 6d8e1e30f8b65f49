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
    ``user_id`` with Kafka's murmur2 partitioner, as the README recommends (and
    ``streams.client.EventProducer`` does): each lands in the partition that owns its user,
    and the worker applies it without the re-key hop."""
    from confluent_kafka import Producer

    producer = Producer(librdkafka_config(settings, **{"linger.ms": 5,
                                                       "partitioner": "murmur2_random"}))
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
                event["user_id"].encode(), orjson.dumps(event))
        producer.poll(0)
        stats.sent += 1
        if on_progress and time.monotonic() - last_report >= progress_every_s:
            stats.seconds = time.monotonic() - started
            on_progress(stats)
            last_report = time.monotonic()
    producer.flush(30)
    stats.seconds = time.monotonic() - started
    return stats



def replay_in_child(
    events: list[dict[str, Any]],
    settings: Settings,
    *,
    rate_per_s: float,
    on_progress: Callable[[ReplayStats], None] | None = None,
    progress_every_s: float = 2.0,
) -> ReplayStats:
    """:func:`replay` in a process of its own, so the load generator does not share a
    Python interpreter (and its GIL) with whatever reads the output in this one: a reader
    thread starved by the producer loop would add its own delay to the freshness it
    measures. Progress comes back through a queue; returns the final stats."""
    import multiprocessing
    import queue as queue_module

    context = multiprocessing.get_context("spawn")  # no fork of a process with threads
    progress: Any = context.Queue()
    child = context.Process(target=_replay_child, name="demo-replay",
                            args=(events, settings, rate_per_s, progress, progress_every_s))
    child.start()
    final = ReplayStats()
    try:
        while True:
            try:
                kind, sent, seconds = progress.get(timeout=0.5)
            except queue_module.Empty:
                if not child.is_alive():
                    break
                continue
            stats = ReplayStats(sent, seconds)
            if kind == "done":
                final = stats
                break
            if on_progress is not None:
                on_progress(stats)
    finally:
        child.join(timeout=60)
        if child.is_alive():
            child.terminate()
    if child.exitcode not in (0, None):
        raise RuntimeError(f"the replay process exited with {child.exitcode}")
    return final


def _replay_child(events: list[dict[str, Any]], settings: Settings, rate_per_s: float,
                  progress: Any, progress_every_s: float) -> None:
    stats = replay(events, settings, rate_per_s=rate_per_s,
                   on_progress=lambda s: progress.put(("progress", s.sent, s.seconds)),
                   progress_every_s=progress_every_s)
    progress.put(("done", stats.sent, stats.seconds))
