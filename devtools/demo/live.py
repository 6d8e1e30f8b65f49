"""Watch the output side during the demo: recommendations and dead letters, read back by an
independent consumer, plus the worker's HTTP endpoints."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import orjson

from schemas.timestamps import parse_rfc3339_ms
from streams.clock import now_ms
from streams.kafka.clients import librdkafka_config
from streams.settings import Settings


@dataclass
class OutputWatcher:
    """Consumes ``recommendations`` and the dead-letter topic in a background thread."""

    settings: Settings
    recommendations: int = 0
    dead_letters: int = 0
    fallbacks: int = 0
    dead_letter_reasons: dict[str, int] = field(default_factory=dict)
    latest: dict[str, dict[str, Any]] = field(default_factory=dict)
    freshness_s: list[float] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="output-watcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=10)

    def latest_values(self) -> list[dict[str, Any]]:
        """Each user's newest recommendation read so far."""
        with self._lock:
            return list(self.latest.values())

    def snapshot(self) -> tuple[int, int, int]:
        with self._lock:
            return self.recommendations, self.dead_letters, self.fallbacks

    def _run(self) -> None:
        from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

        # Assigned, not subscribed: a group join on the embedded broker takes seconds, and
        # every recommendation made meanwhile would be read late — the reader's delay, not
        # the pipeline's. Fetches wait at most 10 ms (librdkafka's default is 500 ms, and
        # the embedded broker holds a fetch that found nothing for its whole wait); poll,
        # not consume(n, timeout), which would wait to fill its batch.
        consumer = Consumer(librdkafka_config(
            self.settings,
            **{"group.id": "streamrec-demo-watcher", "enable.auto.commit": False,
               "fetch.wait.max.ms": 10, "log_level": 3},
        ))
        topics = [self.settings.topic_recommendations, self.settings.topic_dead_letter]
        try:
            metadata = consumer.list_topics(timeout=10)
            consumer.assign([TopicPartition(topic, partition, OFFSET_BEGINNING)
                             for topic in topics
                             for partition in sorted(metadata.topics[topic].partitions)])
            while not self._stop.is_set():
                message = consumer.poll(0.05)
                if message is None or message.error():
                    continue
                topic, value = message.topic(), message.value()
                if topic is None or value is None:
                    continue
                self._record(topic, value)
        finally:
            consumer.close()

    def _record(self, topic: str, value: bytes) -> None:
        document = orjson.loads(value)
        with self._lock:
            if topic == self.settings.topic_dead_letter:
                self.dead_letters += 1
                reason = document.get("reason", "?")
                self.dead_letter_reasons[reason] = self.dead_letter_reasons.get(reason, 0) + 1
            else:
                self.recommendations += 1
                self.fallbacks += 1 if document.get("fallback") else 0
                self.latest[document["user_id"]] = document
                event_ms = parse_rfc3339_ms(document["trigger"]["event_time"])
                self.freshness_s.append(max(0.0, (now_ms() - event_ms) / 1000.0))

    def freshness_quantiles(self) -> dict[str, float]:
        """Event time of the trigger -> recommendation read back here, in seconds."""
        with self._lock:
            values = sorted(self.freshness_s)
        if not values:
            return {}
        return {f"p{q}": values[min(len(values) - 1, int(len(values) * q / 100))]
                for q in (50, 95, 99)}

