"""EventProducer against the embedded broker, read back with confluent-kafka (independent).

Every valid event lands on its type's topic, keyed by its user id, in the partition the
worker keeps that user in, byte for byte as validated; an invalid event raises before
anything is sent; erasure requests are what the worker's ingest decodes.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from schemas.events import DecodeLimits, Event, EventType, decode_event
from streams.client import EventProducer
from streams.errors import (
    BrokerUnavailableError,
    DeliveryError,
    InvalidEventError,
    TopicSetupError,
)
from streams.ingest.batch import decode_erasure
from streams.kafka.partitioning import user_partition
from streams.kafka.topics import create_topics
from streams.settings import Settings
from tests.support import TopicReader, isolated_settings, wait_for

PARTITIONS = 4


@pytest.fixture
def settings(broker: Any, tmp_path: Path) -> Settings:
    settings = isolated_settings(broker.url, tmp_path, topic_partitions=PARTITIONS)
    create_topics(settings)
    return settings


@pytest.fixture
def reader(settings: Settings) -> Iterator[TopicReader]:
    reader = TopicReader(settings, [*settings.input_topics, settings.topic_user_erasure])
    yield reader
    reader.close()


def event(n: int, event_type: str, user: str, **extra: Any) -> dict[str, Any]:
    return {"event_id": f"e-{n}", "event_type": event_type, "user_id": user,
            "item_id": f"sku-{n % 7}", "timestamp": int(time.time() * 1000) - 1000 + n,
            **extra}


def read(reader: TopicReader, count: int) -> list[Any]:
    return wait_for(lambda: len(reader.poll()) >= count and reader.messages, 30,
                    f"{count} messages")


def test_events_are_routed_by_type_keyed_by_user_and_partitioned_like_the_worker(
    settings: Settings, reader: TopicReader
) -> None:
    types = ["view", "click", "add_to_cart", "purchase"]
    sent = [event(n, types[n % 4], f"user-{n % 11}", session_id="s-1") for n in range(40)]
    with EventProducer(settings) as producer:
        futures = [producer.send(e) for e in sent]
    metadata = [f.get(timeout=10) for f in futures]
    messages = read(reader, len(sent))

    assert len(messages) == len(sent)
    by_id = {orjson.loads(m.value())["event_id"]: m for m in messages}
    for original, meta in zip(sent, metadata, strict=True):
        message = by_id[original["event_id"]]
        assert message.topic() == settings.topic_for(original["event_type"]) == meta.topic
        assert message.key() == original["user_id"].encode()
        assert message.partition() == user_partition(original["user_id"], PARTITIONS)
        assert orjson.loads(message.value()) == original
        # What the worker's ingest makes of it on that topic: the same event, accepted.
        decoded = decode_event(message.value(), message.topic(), settings.decode_limits())
        assert isinstance(decoded, Event) and decoded.event_id == original["event_id"]
    # One user's events stay in the order they were sent (one partition, one key).
    user_3 = [orjson.loads(m.value())["event_id"] for m in messages
              if m.key() == b"user-3" and m.topic() == settings.topic_views]
    assert user_3 == [e["event_id"] for e in sent
                      if e["user_id"] == "user-3" and e["event_type"] == "view"]


def test_events_as_dataclasses_and_bytes(settings: Settings, reader: TopicReader) -> None:
    now = int(time.time() * 1000)
    as_event = Event("e-dc", EventType.PURCHASE, "u-dc", "sku-1", now)
    as_bytes = orjson.dumps(event(1, "click", "u-bytes"))
    with EventProducer(settings) as producer:
        producer.send(as_event)
        producer.send(as_bytes)
    messages = read(reader, 2)
    assert {(m.topic(), m.key()) for m in messages} == {
        (settings.topic_purchases, b"u-dc"), (settings.topic_clicks, b"u-bytes")}
    assert orjson.loads(next(m.value() for m in messages if m.key() == b"u-dc")) == (
        as_event.to_json_dict())


BAD_EVENTS: list[tuple[Any, str]] = [
    ({"event_type": "view", "user_id": "u", "item_id": "i", "timestamp": 1}, "missing_field"),
    ({"event_id": "e", "event_type": "like", "user_id": "u", "item_id": "i",
      "timestamp": "2026-11-23T18:00:00Z"}, "unknown_event_type"),
    ({"event_id": "e", "event_type": "view", "user_id": "", "item_id": "i",
      "timestamp": "2026-11-23T18:00:00Z"}, "invalid_id"),
    ({"event_id": "e", "event_type": "view", "user_id": "u", "item_id": "i",
      "timestamp": "2026-11-23T18:00:00"}, "invalid_timestamp"),  # no offset
    ({"event_id": "e", "event_type": "view", "user_id": "u", "item_id": "i",
      "timestamp": 4_102_444_800_000}, "timestamp_out_of_range"),  # the year 2100
    ({"event_id": "e", "event_type": "view", "user_id": "u", "item_id": "i",
      "timestamp": object()}, "invalid_json"),
    (["not", "an", "object"], "not_an_object"),
    (b"{not json", "invalid_json"),
]


def test_an_invalid_event_raises_and_nothing_is_sent(
    settings: Settings, reader: TopicReader
) -> None:
    from confluent_kafka import TopicPartition

    with EventProducer(settings) as producer:
        for bad, reason in BAD_EVENTS:
            with pytest.raises(InvalidEventError, match="nothing was sent") as raised:
                producer.send(bad)
            assert raised.value.reason == reason, (bad, raised.value)
        producer.send(event(99, "view", "u-after"))  # the producer is still usable
    assert [m.key() for m in read(reader, 1)] == [b"u-after"]
    # Nothing else was written: the input topics hold one record in all.
    written = sum(
        reader.consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
        for topic in settings.input_topics for p in range(PARTITIONS))
    assert written == 1


def test_an_oversized_event_raises(settings: Settings) -> None:
    small = settings.model_copy(update={"max_payload_bytes": 256})
    with EventProducer(small) as producer, pytest.raises(InvalidEventError) as raised:
        producer.send(event(1, "view", "u", properties={"query": "x" * 300}))
    assert raised.value.reason == "oversized_payload"


def test_erasure_requests_are_what_the_worker_decodes(
    settings: Settings, reader: TopicReader
) -> None:
    with EventProducer(settings) as producer:
        producer.request_erasure("alice.raw.7731")
        with pytest.raises(InvalidEventError):
            producer.request_erasure("")
    (message,) = read(reader, 1)
    assert message.topic() == settings.topic_user_erasure
    assert message.key() == b"alice.raw.7731"
    assert decode_erasure(message.value()) == "alice.raw.7731"


def test_the_client_checks_the_limits_the_worker_applies(settings: Settings) -> None:
    # One source for both: Settings.decode_limits (the worker's ingest calls it too).
    tight = settings.model_copy(update={"max_future_skew_s": 7.0, "add_to_cart_topic": "views"})
    with EventProducer(tight) as producer:
        limits = producer.limits
    assert isinstance(limits, DecodeLimits) and limits == tight.decode_limits()
    assert limits.max_future_skew_s == 7.0
    assert EventType.ADD_TO_CART in limits.topic_event_types[tight.topic_views]


def test_a_missing_topic_is_an_error_not_an_auto_created_topic(settings: Settings) -> None:
    """Brokers that create topics on first use (the embedded one ignores the client's "do not
    create" flag) would give it their default partition count: refuse up front."""
    missing = settings.model_copy(update={"topic_views": f"{settings.topic_views}.typo"})
    with pytest.raises(TopicSetupError, match=r"\.typo do not exist.*streamrec topics create"):
        EventProducer(missing)


def test_no_broker_is_a_broker_unavailable_error(settings: Settings) -> None:
    import socket

    with socket.socket() as unused:  # a port nobody listens on
        unused.bind(("127.0.0.1", 0))
        nowhere = settings.model_copy(
            update={"broker_url": f"kafka://127.0.0.1:{unused.getsockname()[1]}"})
    with pytest.raises(BrokerUnavailableError, match="no Kafka broker answered"):
        EventProducer(nowhere, bootstrap_timeout_ms=500)


class FakeKafkaProducer:
    """Stands in for kafka-python's producer: flush fails every pending send's future (the
    broker refused them or never acknowledged them)."""

    def __init__(self, **config: Any) -> None:
        self.pending: list[Any] = []
        self.closed = False

    def send(self, topic: str, key: bytes, value: bytes) -> Any:
        from kafka.future import Future

        future = Future()
        self.pending.append(future)
        return future

    def flush(self, timeout: float | None = None) -> None:
        from kafka.errors import NotEnoughReplicasError

        for future in self.pending:
            future.failure(NotEnoughReplicasError("in-sync replicas below the minimum"))
        self.pending = []

    def close(self, timeout: float | None = None) -> None:
        self.closed = True


def test_unacknowledged_events_make_flush_raise_once(monkeypatch: pytest.MonkeyPatch) -> None:
    import streams.client.producer as module

    monkeypatch.setattr(module, "KafkaProducer", FakeKafkaProducer)
    producer = EventProducer(Settings(), check_topics=False)
    producer.send(event(1, "view", "u"))
    producer.send(event(2, "click", "u"))
    with pytest.raises(DeliveryError, match=r"2 message\(s\) were not written.*NotEnoughReplicas"):
        producer.flush()
    producer.flush()  # reported once: nothing new failed since
    producer.send(event(3, "view", "u"))
    with pytest.raises(DeliveryError):
        producer.close()
    assert producer._producer.closed  # closed even though the flush failed


def test_the_blocks_own_error_wins_over_a_failed_flush(monkeypatch: pytest.MonkeyPatch) -> None:
    import streams.client.producer as module

    monkeypatch.setattr(module, "KafkaProducer", FakeKafkaProducer)
    producer = EventProducer(Settings(), check_topics=False)
    with pytest.raises(KeyError, match="the caller's bug"), producer:
        producer.send(event(1, "view", "u"))
        raise KeyError("the caller's bug")
    assert producer._producer.closed


def test_the_docstring_examples_run() -> None:
    import doctest

    import streams.client.config

    result = doctest.testmod(streams.client.config)
    assert result.attempted > 0 and result.failed == 0
