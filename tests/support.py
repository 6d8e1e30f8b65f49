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
from streams.demo.command import settings_env
from streams.demo.live import get_json
from streams.kafka_clients import librdkafka_config
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
        broker_flavour="tansu",
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
        env = {**os.environ, **settings_env(self.settings)}
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
