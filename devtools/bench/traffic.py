"""Load generation and read-back with confluent-kafka, independent of every system under test.

Events are keyed by ``event_id`` by default (every system must re-key by user itself;
``key_by="user"``: by ``user_id`` with Kafka's murmur2 partitioner, as a producer that keys by
user does, see :mod:`streams.kafka.partitioning`) and stamped with the wall clock (ms) when
they are handed to the producer. Freshness is the time from that
stamp to the moment a separate consumer reads back a recommendation whose trigger is that
event.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from devtools.bench import KEY_BY
from devtools.producers import produce
from schemas.timestamps import parse_rfc3339_ms
from streams.kafka.clients import librdkafka_config
from streams.settings import Settings

# Tansu answers a fetch only when its max wait is over if the partition had nothing new at
# request time (measured: p50 133 ms at librdkafka's default 500 ms, 8 ms at 10 ms), so the
# measuring consumer asks with a short wait, adding at most ~10 ms to what it reports.
READER_FETCH_WAIT_MS = 10
PRODUCER_CONFIG = {"linger.ms": 5, "queue.buffering.max.messages": 500_000,
                   "log_level": 3}


# librdkafka's default partitioner is CRC32; Kafka's Java client (and streamrec's own
# partition of a user) use murmur2.
USER_KEYED_CONFIG = {"partitioner": "murmur2_random"}


def producer_config(key_by: str) -> dict[str, Any]:
    """The load generator's librdkafka settings for keying by ``key_by``."""
    if key_by not in KEY_BY:
        raise ValueError(f"key_by must be one of {KEY_BY}, not {key_by!r}")
    return {**PRODUCER_CONFIG, **(USER_KEYED_CONFIG if key_by == "user" else {})}


# Waiting for room in a full producer queue: short, so a burst is not slowed down.
RETRY_POLL_S = 0.01


def _stamped(event: dict[str, Any], event_id: str | None = None, key_by: str = "event"
             ) -> tuple[bytes, bytes]:
    now_ms = time.time_ns() // 1_000_000
    stamped = {**event, "timestamp": now_ms}
    if event_id is not None:
        stamped["event_id"] = event_id
    key = stamped["user_id"] if key_by == "user" else stamped["event_id"]
    return key.encode(), orjson.dumps(stamped)


def send_all(settings: Settings, events: Sequence[dict[str, Any]],
             id_prefix: str | None = None, key_by: str = "event") -> float:
    """Send every event as fast as the producer takes them; flush; return the seconds."""
    from confluent_kafka import Producer

    producer = Producer(librdkafka_config(settings, **producer_config(key_by)))
    started = time.monotonic()
    for i, event in enumerate(events):
        key, value = _stamped(event, f"{id_prefix}{i}" if id_prefix else None, key_by)
        produce(producer, settings.topic_for(event["event_type"]), key, value,
                retry_poll_s=RETRY_POLL_S)
        if i % 1000 == 0:
            producer.poll(0)
    left = producer.flush(60)
    if left:
        raise RuntimeError(f"{left} events were not delivered to the broker")
    return time.monotonic() - started


def cycle_events(pool: Sequence[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    while True:
        yield from pool


def offer(settings: Settings, pool: Sequence[dict[str, Any]], rate_per_s: float,
          seconds: float, id_prefix: str, tick_s: float = 0.005, key_by: str = "event"
          ) -> int:
    """Send events from ``pool`` (cycled) at ``rate_per_s`` for ``seconds``; event ids are
    ``id_prefix + n``. Returns how many were sent."""
    from confluent_kafka import Producer

    producer = Producer(librdkafka_config(settings, **producer_config(key_by)))
    events = cycle_events(pool)
    total = max(1, int(rate_per_s * seconds))
    sent = 0
    started = time.monotonic()
    while sent < total:
        due = min(total, int((time.monotonic() - started) * rate_per_s) + 1)
        while sent < due:
            event = next(events)
            key, value = _stamped(event, f"{id_prefix}{sent}", key_by)
            produce(producer, settings.topic_for(event["event_type"]), key, value,
                    retry_poll_s=RETRY_POLL_S)
            sent += 1
        producer.poll(0)
        time.sleep(tick_s)
    producer.flush(60)
    return sent


@dataclass
class OutputReader:
    """Reads the output topic from its current end in a background thread and records the
    freshness of every recommendation triggered by an event whose id starts with
    ``id_prefix`` (older records, and Tansu's slightly early end offsets, are filtered out
    by that prefix)."""

    settings: Settings
    topic: str
    id_prefix: str
    freshness_s: list[float] = field(default_factory=list)
    received_s: list[float] = field(default_factory=list)  # monotonic, same order
    read: int = 0
    errors: list[str] = field(default_factory=list)  # the first few consumer errors
    start_offsets: list[int] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _positioned: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _error: BaseException | None = None

    def start(self, timeout_s: float = 30.0) -> None:
        self._thread = threading.Thread(target=self._run, name="bench-reader", daemon=True)
        self._thread.start()
        if not self._positioned.wait(timeout_s):
            raise RuntimeError(f"could not position a reader on {self.topic}: {self._error}")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=15)

    @property
    def error(self) -> BaseException | None:
        return self._error

    def matched(self) -> int:
        return len(self.freshness_s)

    def _run(self) -> None:
        from confluent_kafka import Consumer, TopicPartition

        consumer = Consumer(librdkafka_config(
            self.settings, **{"group.id": f"bench-reader-{uuid.uuid4().hex[:8]}",
                              "enable.auto.commit": False, "auto.offset.reset": "earliest",
                              "fetch.wait.max.ms": READER_FETCH_WAIT_MS, "log_level": 3}))
        try:
            metadata = consumer.list_topics(self.topic, timeout=10)
            partitions = sorted(metadata.topics[self.topic].partitions)
            assignment = []
            for p in partitions:
                _low, high = consumer.get_watermark_offsets(
                    TopicPartition(self.topic, p), timeout=10)
                assignment.append(TopicPartition(self.topic, p, max(0, high)))
            consumer.assign(assignment)
            self.start_offsets = [tp.offset for tp in assignment]
            self._positioned.set()
            prefix = self.id_prefix
            while not self._stop.is_set():
                # poll, not consume(n, timeout): consume waits to fill its batch, which
                # would add up to its timeout to the freshness of the first record
                message = consumer.poll(0.05)
                if message is not None and message.error():
                    if len(self.errors) < 5:
                        self.errors.append(str(message.error()))
                    continue
                value = None if message is None else message.value()
                if value is None:
                    continue
                received_ms = time.time_ns() // 1_000_000
                received_s = time.monotonic()
                self.read += 1
                trigger = orjson.loads(value).get("trigger") or {}
                if str(trigger.get("event_id", "")).startswith(prefix):
                    event_ms = parse_rfc3339_ms(trigger["event_time"])
                    self.freshness_s.append((received_ms - event_ms) / 1000.0)
                    self.received_s.append(received_s)
        except BaseException as exc:  # reported by start() or in the results
            self._error = exc
            raise
        finally:
            consumer.close()
