"""Helpers shared by the integration tests: a worker subprocess, Kafka clients, polling.

Starting, stopping and isolating workers, and producing, are the development tools' own
(:mod:`devtools.processes`, :mod:`devtools.isolation`, :mod:`devtools.producers`): the tests
drive workers exactly as the demo and the benchmarks do."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import orjson

from devtools import isolation
from devtools.processes import (
    get_json,
    http_get,
    kill_process_group,
    log_tail,
    start_worker,
    stop_process,
    wait_until_ready,
)
from devtools.producers import produce as produce_one
from devtools.producers import send_raw
from streams.kafka.clients import librdkafka_config
from streams.settings import Settings

T = TypeVar("T")
REPO = Path(__file__).resolve().parents[1]


def wait_for(predicate: Callable[[], T], timeout_s: float, what: str,
             interval_s: float = 0.1) -> T:
    """Poll ``predicate`` until it returns something truthy; fail after the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")
        time.sleep(interval_s)


def isolated_settings(broker_url: str, tmp: Path, **overrides: Any) -> Settings:
    """Settings with a unique app id and topic names, so tests share one broker safely."""
    values: dict[str, Any] = dict(topic_partitions=2, batch_max_seconds=0.05)
    values.update(overrides)
    return isolation.isolated_settings(broker_url, tmp / "state", isolation.new_tag(),
                                       **values)


@dataclass
class WorkerProcess:
    settings: Settings
    log_path: Path
    process: subprocess.Popen[bytes] = field(init=False)

    def start(self) -> WorkerProcess:
        self.process = start_worker(self.settings, self.log_path)
        return self

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.web_port}"

    def get(self, path: str) -> tuple[int, Any]:
        return get_json(self.base_url + path)

    def wait_ready(self, timeout_s: float = 90.0) -> None:
        wait_until_ready(self.process, self.settings, self.log_path, timeout_s=timeout_s,
                         interval_s=0.1, tail_lines=60)

    def log_tail(self, lines: int = 60) -> str:
        return log_tail(self.log_path, lines)

    def kill(self) -> None:
        """SIGKILL: a crash, nothing flushed or committed."""
        kill_process_group(self.process)

    def stop(self, timeout_s: float = 20.0) -> None:
        stop_process(self.process, timeout_s)


def produce(settings: Settings, messages: Iterable[tuple[str, bytes | None, bytes | None]],
            **config: Any) -> int:
    """Publish raw messages with confluent-kafka (an independent client); flush. ``config``
    adds librdkafka settings (e.g. ``partitioner="murmur2_random"``, Kafka's own)."""
    return send_raw(settings, messages, **{"linger.ms": 5, **config})


class TopicReader:
    """Reads whole topics from the beginning with confluent-kafka, without a group."""

    def __init__(self, settings: Settings, topics: list[str]) -> None:
        from confluent_kafka import Consumer

        self.consumer = Consumer(librdkafka_config(
            settings, **{"group.id": f"reader-{uuid.uuid4().hex[:8]}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False,
                         "session.timeout.ms": 6000, "max.poll.interval.ms": 6000,
                         "heartbeat.interval.ms": 1000}))
        self.consumer.subscribe(topics)
        self.messages: list[Any] = []

    def poll(self) -> list[Any]:
        for message in self.consumer.consume(num_messages=1000, timeout=0.2):
            if not message.error():
                self.messages.append(message)
        return self.messages

    def values(self, topic: str) -> list[dict[str, Any]]:
        return [orjson.loads(m.value()) for m in self.messages
                if m.topic() == topic and m.value() is not None]

    def close(self) -> None:
        self.consumer.close()


# --- Added for the reliability tests (issue 5) --------------------------------------------

FAST_GROUP: dict[str, float] = dict(
    broker_session_timeout_s=6.0, broker_rebalance_timeout_s=4.0,
    broker_heartbeat_interval_s=0.5,
)
"""Short group timeouts: Tansu's first group join waits about half the rebalance timeout."""


def produce_with_offsets(
    settings: Settings, messages: Iterable[tuple[str, bytes | None, bytes | None]]
) -> list[tuple[str, int, int]]:
    """Publish raw messages with confluent-kafka; returns each one's (topic, partition,
    offset), in the order given."""
    from confluent_kafka import Producer

    producer = Producer(librdkafka_config(settings, **{"linger.ms": 5}))
    where: list[tuple[str, int, int] | None] = []
    errors: list[str] = []

    def delivered(index: int) -> Callable[[Any, Any], None]:
        def report(error: Any, message: Any) -> None:
            if error is not None:
                errors.append(str(error))
            else:
                where[index] = (message.topic(), message.partition(), message.offset())
        return report

    for topic, key, value in messages:
        where.append(None)
        produce_one(producer, topic, key, value, on_delivery=delivered(len(where) - 1))
        producer.poll(0)
    if producer.flush(30) or errors:
        raise AssertionError(f"not all messages were delivered: {errors[:5]}")
    if any(w is None for w in where):
        raise AssertionError("a delivery report is missing")
    return [w for w in where if w is not None]


def metric_values(base_url: str, name: str, label: str | None = None) -> dict[str, float]:
    """Samples called ``name`` on the worker's /metrics, keyed by the value of ``label``
    (or by all labels when ``label`` is None); {} when the worker does not answer."""
    from prometheus_client.parser import text_string_to_metric_families

    status, body = http_get(base_url + "/metrics", timeout_s=5)
    if status != 200:
        return {}
    text = body.decode()
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                key = sample.labels.get(label, "") if label else repr(sorted(
                    sample.labels.items()))
                values[key] = values.get(key, 0.0) + sample.value
    return values


def offline_states(events: Iterable[dict[str, Any]], settings: Settings) -> dict[str, Any]:
    """Every user's state after applying ``events`` (raw event dicts, in sending order)
    offline through the same pure update functions the worker uses."""
    from schemas.events import DecodeLimits, Event, decode_event
    from streams.app import state_bounds
    from streams.state.user_state import apply_events

    per_user: dict[str, list[Event]] = {}
    for raw in events:
        decoded = decode_event(orjson.dumps(raw), "any", DecodeLimits(topic_event_types={}),
                               now_ms=int(time.time() * 1000))
        if not isinstance(decoded, Event):
            raise AssertionError(f"not a valid event: {raw} ({decoded})")
        per_user.setdefault(decoded.user_id, []).append(decoded)
    bounds = state_bounds(settings)
    return {user: apply_events(None, evs, bounds).state for user, evs in per_user.items()}


def state_matches(doc: dict[str, Any] | None, state: Any) -> bool:
    """Whether a ``/users/{id}`` document shows exactly ``state`` (a UserState)."""
    return (
        doc is not None
        and doc["counts"] == dict(state.counts)
        and doc["events_applied"] == state.events_applied
        and doc["purchased"] == list(state.purchased)
        and doc["session_id"] == state.session_id
        and [(r["item_id"], r["event_type"], r["event_time_ms"]) for r in doc["recent"]]
        == [tuple(i) for i in state.recent]
    )
