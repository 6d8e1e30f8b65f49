"""Helpers shared by the integration tests: a worker subprocess, Kafka clients, polling."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import orjson

from streams.broker import free_port
from streams.demo.live import get_json
from streams.kafka.clients import librdkafka_config
from streams.settings import Settings, load_settings

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
    tag = uuid.uuid4().hex[:8]
    values: dict[str, Any] = dict(
        broker_url=broker_url,
        app_id=f"streamrec-{tag}",
        topic_views=f"{tag}.views",
        topic_clicks=f"{tag}.clicks",
        topic_purchases=f"{tag}.purchases",
        topic_recommendations=f"{tag}.recommendations",
        topic_dead_letter=f"{tag}.streamrec.dlq",
        topic_events_by_user=f"{tag}.events-by-user",
        topic_user_erasure=f"{tag}.user_erasure",
        topic_partitions=2,
        data_dir=tmp / "state",
        web_host="127.0.0.1",
        web_port=free_port(),
        batch_max_seconds=0.05,
    )
    values.update(overrides)
    return load_settings(**values)


@dataclass
class WorkerProcess:
    settings: Settings
    log_path: Path
    process: subprocess.Popen[bytes] = field(init=False)

    def start(self) -> WorkerProcess:
        env = {**os.environ, **self.settings.to_env()}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", "worker"], env=env, cwd=REPO,
            stdout=self.log_path.open("ab"), stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.web_port}"

    def get(self, path: str) -> tuple[int, Any]:
        return get_json(self.base_url + path)

    def wait_ready(self, timeout_s: float = 90.0) -> None:
        def ready() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"worker exited with {self.process.returncode}:\n{self.log_tail()}"
                )
            return self.get("/readyz")[0] == 200

        wait_for(ready, timeout_s, "worker /readyz")

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self, timeout_s: float = 20.0) -> None:
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()


def produce(settings: Settings, messages: Iterable[tuple[str, bytes | None, bytes | None]]
            ) -> int:
    """Publish raw messages with confluent-kafka (an independent client); flush."""
    from confluent_kafka import Producer

    producer = Producer(librdkafka_config(settings, **{"linger.ms": 5}))
    count = 0
    for topic, key, value in messages:
        producer.produce(topic, key=key, value=value)
        count += 1
        if count % 1000 == 0:
            producer.poll(0)
    remaining = producer.flush(30)
    if remaining:
        raise AssertionError(f"{remaining} messages were not delivered")
    return count


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
        while True:
            try:
                producer.produce(topic, key=key, value=value,
                                 on_delivery=delivered(len(where) - 1))
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    if producer.flush(30) or errors:
        raise AssertionError(f"not all messages were delivered: {errors[:5]}")
    if any(w is None for w in where):
        raise AssertionError("a delivery report is missing")
    return [w for w in where if w is not None]


def metric_values(base_url: str, name: str, label: str | None = None) -> dict[str, float]:
    """Samples called ``name`` on the worker's /metrics, keyed by the value of ``label``
    (or by all labels when ``label`` is None); {} when the worker does not answer."""
    import urllib.error
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    try:
        with urllib.request.urlopen(base_url + "/metrics", timeout=5) as response:
            text = response.read().decode()
    except (urllib.error.URLError, OSError):
        return {}
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
